"""Where the CPU goes per message: each process's CPU time (user + system, its children included) per message.

    make bench-profile [N=100]

One customer asks N held-out FAQ questions through the emulator, one after another, on the full stack; the CPU
time each process used meanwhile, divided by N, shows how Frontline's own work (app, actions, emulator) compares
with Rasa's. With `--customers C`, C scripted customers talk at once instead (bench/chat.py's load: the app
saturated), and the figures are per message of theirs. With py-spy installed (`pip install py-spy`), `--py-spy` also samples the app and prints its busiest
functions. `--database postgresql+asyncpg://…` (an empty database) runs the stack on PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import cpu_seconds, heldout, measure_on_stack, table
from bench.chat import run_frontline
from bench.customers import heldout_phrases, scripts, understood_phrases
from bot.emulator.client import EmulatorClient
from devstack.stack import Stack

GENERIC = (
    "asyncio/",
    "threading.py",
    "concurrent/futures",
    "bot/cli.py",
    "run (bot/app.py",
    "selectors.py",
)  # every stack
IDLE = (
    "EpollSelector.select",
    "run (uvloop/",
    "Runner.run (asyncio/runners.py",
    "_worker (concurrent/futures/thread.py",
    "_connection_worker_thread (aiosqlite/core.py:59)",
)


def busiest(raw_profile: str, top: int = 12) -> list[tuple[str, float]]:
    """From py-spy's raw (collapsed) output: the functions most often on the stack while the app was busy."""
    counts: Counter[str] = Counter()
    busy = 0
    for line in raw_profile.splitlines():
        stack, _, number = line.rstrip().rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = stack.split(";")
        if frames[-1].startswith(IDLE):
            continue
        busy += int(number)
        for frame in {f for f in frames[1:] if not any(part in f for part in GENERIC)}:
            counts[frame] += int(number)
    return [(frame, round(100 * n / busy, 1)) for frame, n in counts.most_common(top)] if busy else []


async def _ask(emulator: EmulatorClient, user: int, text: str) -> None:
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, text)
    await emulator.wait_for_text(user, after, timeout=30)


async def _load(stack: Stack, customers: int) -> dict[str, Any]:
    """`customers` scripted customers at once (bench/chat.py's conversations): the app saturated."""
    async with aiohttp.ClientSession() as http:
        phrases = await understood_phrases(http, stack.rasa_url, heldout_phrases(), stack.rasa_token)
    return await run_frontline(stack, scripts(customers, phrases), think=1.0, timeout=30.0)


async def _measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    questions = [p for intent, phrases in heldout().items() if intent.startswith("faq/") for p in phrases]
    questions = (questions * (args.n // max(len(questions), 1) + 1))[: args.n]
    spy = None
    async with EmulatorClient(stack.emulator_url) as emulator:
        user = (await emulator.add_user("Profile", last_name="Customer", language_code="en"))["id"]
        for text in questions[:5]:  # warm-up
            await _ask(emulator, user, text)
        # The background (the desk's round every 2 s, Rasa pulling the model, polling) costs CPU with no message
        # at all: measured first over IDLE_SECONDS, and taken off the per-message figures.
        idle_start = {name: cpu_seconds(process.pid) for name, process in stack.processes.items()}
        await asyncio.sleep(args.idle)
        idle_rate = {
            name: (cpu_seconds(process.pid) - idle_start[name]) / args.idle for name, process in stack.processes.items()
        }
        before = {name: cpu_seconds(process.pid) for name, process in stack.processes.items()}
        out = Path(tempfile.mkdtemp(prefix="frontline-profile-")) / "app.txt"
        if args.py_spy:
            spy = await asyncio.create_subprocess_exec(
                args.py_spy,
                "record",
                "--nonblocking",
                "--rate",
                str(args.rate),
                "-p",
                str(stack.processes["app"].pid),
                "-f",
                "raw",
                "-o",
                str(out),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        started = time.monotonic()
        if args.customers:
            load = await _load(stack, args.customers)
            messages = load["messages"]
        else:
            for text in questions:
                await _ask(emulator, user, text)
            messages = len(questions)
        wall = time.monotonic() - started
        after = {name: cpu_seconds(process.pid) for name, process in stack.processes.items()}
    result: dict[str, Any] = {
        "messages": messages,
        "customers": args.customers or 1,
        "wall_s": round(wall, 1),
        "cpu_ms_per_message": {name: round(1000 * (after[name] - before[name]) / messages, 1) for name in before},
        "idle_cpu_ms_per_second": {name: round(1000 * rate, 1) for name, rate in idle_rate.items()},
        "cpu_ms_per_message_less_idle": {
            name: round(1000 * (after[name] - before[name] - idle_rate[name] * wall) / messages, 1) for name in before
        },
    }
    if args.customers:
        result["load"] = load
    if spy is not None:
        spy.send_signal(2)  # py-spy writes its profile on SIGINT
        await asyncio.wait_for(spy.wait(), 60)
        result["app_busiest"] = busiest(out.read_text()) if out.exists() else []
    return result


def print_report(result: dict[str, Any]) -> None:
    cpu, less, idle = (
        result["cpu_ms_per_message"],
        result["cpu_ms_per_message_less_idle"],
        result["idle_cpu_ms_per_second"],
    )
    rasa = less.get("rasa") or 0
    print(
        table(
            ["process", "CPU ms per message", "idle CPU ms per s", "per message less idle", "of Rasa's"],
            [
                [name, cpu[name], idle[name], less[name], f"{100 * less[name] / rasa:.0f} %" if rasa else "-"]
                for name in cpu
            ],
        )
    )
    if "load" in result:
        load = result["load"]
        print(
            f"{result['customers']} customers at once: {result['messages']} messages in {result['wall_s']} s, "
            f"latency to the answer p50 {load['latency']['p50_ms']} / p95 {load['latency']['p95_ms']} ms, "
            f"handoffs {load['handoffs']}, 429s {load['flood']['429']}"
        )
    else:
        print(
            f"{result['messages']} messages in {result['wall_s']} s "
            "(Telegram's one message a second per chat paces them)"
        )
    if result.get("app_busiest"):
        print(table(["the app's busiest functions (py-spy)", "% of busy samples"], result["app_busiest"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100, help="messages (default 100)")
    parser.add_argument(
        "--idle", type=float, default=20.0, help="seconds of background CPU measured first (default 20)"
    )
    parser.add_argument(
        "--py-spy", default=shutil.which("py-spy"), help="py-spy to sample the app with (default: on PATH)"
    )
    parser.add_argument(
        "--customers", type=int, default=0, help="instead: this many scripted customers at once (the app saturated)"
    )
    parser.add_argument("--rate", type=int, default=100, help="py-spy's samples per second (default 100)")
    parser.add_argument(
        "--database", help="an empty PostgreSQL database's URL: the stack on it instead of SQLite files"
    )
    args = parser.parse_args()
    measure_on_stack("profile", lambda stack: _measure(stack, args), print_report, database=args.database)


if __name__ == "__main__":
    main()
