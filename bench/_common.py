"""What the stack benchmarks share: the held-out phrasings, the running stack, percentiles, peak memory, output."""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from devstack.stack import PROCESSES as STACK_PROCESSES
from devstack.stack import ROOT, Stack, running_stack

SENDING = ("send", "copy", "forward")  # Bot API methods that put a new message in a chat (not edits)
NOT_MESSAGES = ("sendchataction",)  # … except these: "typing…" is no message (and Telegram does not pace it)


@cache
def heldout() -> dict[str, list[str]]:
    """The held-out phrasings of tests/data/heldout.yml by intent (none of them is in the training data)."""
    data = yaml.safe_load((ROOT / "tests" / "data" / "heldout.yml").read_text())
    return {
        block["intent"]: [line[2:].strip() for line in block["examples"].splitlines() if line.startswith("- ")]
        for block in data["nlu"]
    }


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear between the closest ranks (numpy's default); NaN without samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50/p95/p99 and max of latencies in seconds, as milliseconds (None without samples)."""

    def ms(value: float) -> float | None:
        return None if math.isnan(value) else round(value * 1000, 1)

    return {
        "n": len(samples),
        "p50_ms": ms(percentile(samples, 50)),
        "p95_ms": ms(percentile(samples, 95)),
        "p99_ms": ms(percentile(samples, 99)),
        "max_ms": ms(max(samples)) if samples else None,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator rounded to two places, None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def vm_hwm_kib(status: str) -> int | None:
    """The peak resident set size (VmHWM, in KiB) from the text of /proc/<pid>/status; None if absent."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "VmHWM":
            return int(value.split()[0])
    return None


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            children = [int(child) for child in task.read_text().split()]
            found += children
            todo += children
    return found


def peak_memory_mib(pid: int) -> dict[str, float | None]:
    """VmHWM of a process and, summed, of its descendants, in MiB (Linux only; None where /proc says nothing)."""

    def read(one: int) -> int | None:
        try:
            return vm_hwm_kib(Path(f"/proc/{one}/status").read_text())
        except OSError:
            return None

    own = read(pid)
    children = [kib for kib in map(read, _descendants(pid)) if kib is not None]
    return {
        "vm_hwm_mib": round(own / 1024, 1) if own is not None else None,
        "children_vm_hwm_mib": round(sum(children) / 1024, 1) if children else None,
    }


TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from the text of /proc/<pid>/stat (utime and stime, fields 14 and 15)."""
    fields = stat.rsplit(")", 1)[1].split()  # the command name, in parentheses, may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants so far (0 for one that is gone)."""
    total = 0.0
    for one in (pid, *_descendants(pid)):
        try:
            total += stat_cpu_seconds(Path(f"/proc/{one}/stat").read_text())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def stack_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of each process of a running stack (each its own process: the emulator apart)."""
    return {name: cpu_seconds(process.pid) for name, process in stack.processes.items()}


def cpu_used(before: dict[str, float], after: dict[str, float], messages: int) -> dict[str, dict[str, float | None]]:
    """CPU seconds each process used between two readings, and per message in milliseconds."""
    return {
        name: {
            "seconds": round(after[name] - before[name], 2),
            "ms_per_message": round(1000 * (after[name] - before[name]) / messages, 1) if messages else None,
        }
        for name in before
        if name in after
    }


async def settle(stack: Stack, *, quiet: float = 0.25, longest: float = 120.0) -> float:
    """Wait until the stack's processes together use less than `quiet` of a core for a second (the action server
    builds its help-center index after it starts: a run measured meanwhile shares the cores with that), for at most
    `longest` seconds; the seconds waited."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < longest:
        before = sum(stack_cpu(stack).values())
        await asyncio.sleep(1.0)
        if sum(stack_cpu(stack).values()) - before < quiet:
            break
    return round(loop.time() - started, 1)


def median(values: Sequence[float | int | None]) -> float | None:
    """The median of the figures that are there (None when none is)."""
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 2) if present else None


def stack_memory(stack: Stack) -> dict[str, dict[str, float | None]]:
    """Peak memory of each process of a running stack."""
    return {name: peak_memory_mib(stack.processes[name].pid) for name in STACK_PROCESSES if name in stack.processes}


def is_new_message(entry: dict[str, Any]) -> bool:
    """Whether a sent-log entry is a new message from the bot (not an edit of an earlier one)."""
    method = entry["method"].lower()
    return method.startswith(SENDING) and method not in NOT_MESSAGES


def held_by_flood(calls: Sequence[dict[str, Any]]) -> list[float]:
    """For each message Telegram refused at first (429) and took later, the seconds from its first attempt to the
    one accepted: how long flood limits held it back (a message is its chat and its text; calls in log order)."""
    first_refused: dict[tuple[Any, Any], float] = {}
    held = []
    for call in calls:
        if not is_new_message(call):
            continue
        key = (call["params"].get("chat_id"), call["params"].get("text") or call["params"].get("caption"))
        if call["status"] == 429:
            first_refused.setdefault(key, call["time"])
        elif call["status"] == 200 and key in first_refused:
            held.append(call["time"] - first_refused.pop(key))
    return held


def peak_in_window(moments: Sequence[float], window: float = 1.0) -> int:
    """The most moments in any `window` seconds (Telegram's overall limit counts messages in a rolling second)."""
    ordered, peak, low = sorted(moments), 0, 0
    for high, moment in enumerate(ordered):
        while moment - ordered[low] >= window:
            low += 1
        peak = max(peak, high - low + 1)
    return peak


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, the first column left-aligned, the others right-aligned."""
    cells = [[str(cell) if cell is not None else "-" for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        lines.append(
            "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        )
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write var/bench/<name>.json and return its path."""
    out = ROOT / "var" / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return out


def memory_table(memory: dict[str, dict[str, float | None]]) -> str:
    """Peak memory by process, as a table."""
    return table(
        ["process", "peak RSS MiB (VmHWM)", "children MiB"],
        [[name, row["vm_hwm_mib"], row["children_vm_hwm_mib"]] for name, row in memory.items()],
    )


def measure_on_stack(
    name: str,
    measure: Callable[[Stack], Awaitable[dict[str, Any]]],
    report: Callable[[dict[str, Any]], None],
    database: str | None = None,
    webhook: bool = False,
) -> None:
    """Start the stack (on SQLite files, or on the PostgreSQL `database`; the app long polling, or in webhook mode),
    measure, add each process's peak memory, report and write var/bench/<name>.json."""
    with running_stack(database=database, webhook=webhook) as stack:
        result = asyncio.run(measure(stack))
        result["memory"] = stack_memory(stack)
    report(result)
    print(f"written to {write_result(name, result).relative_to(ROOT)}")
