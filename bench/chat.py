"""Many customers at once: scripted conversations through the emulator against the whole stack, next to bare Rasa.

Run with `make bench-chat [N=50] [SWEEP=1]` (or `python -m bench.chat -n 50 --runs 3`). N customers (concurrent) each
hold a short conversation: a greeting, two or three questions from the held-out FAQ phrasings, and for every other
customer a complaint begun and dropped ("never mind"). The latency of a message runs from the moment the emulator
accepted it to the message that answers it (bench/answers.py: the FAQ answer for a question, never an
acknowledgement, a typing action or "anything else?"), both on the emulator's clock; the bot's first new message is
reported apart. The same conversations then go to Rasa's REST channel with distinct sender ids at the same
concurrency, its answer checked against the same expected answer. A customer handed to a person because Rasa did not
answer in time is a failure, counted in each run. Telegram's flood limits stay on; the 429s the emulator answered are
counted. Each process's CPU time is measured apart (the emulator is Telegram: in production not on these cores).
Each configuration runs `--runs` times (default 3) on one stack, new customers each time; the medians, and the goals
(ratios to bare Rasa in the same run), are reported. With SWEEP=1, N = 10, 25, 50, 100, 200, ... until p95 reaches
1 s (or the time budget runs out). With WEBHOOK=1 (--webhook) the app runs in webhook mode: the emulator posts
each update to it, and the long poll is gone. Prints tables and writes var/bench/chat.json (chat-webhook.json).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import aiohttp

from bench._common import cpu_used, measure_on_stack, memory_table, ratio, settle, stack_cpu, table
from bench.chat_runs import goal_table, goals, median_of_runs
from bench.customers import (
    START_SPREAD,
    CallLog,
    Phrases,
    Tally,
    frontline_customer,
    heldout_phrases,
    new_customer,
    rasa_customer,
    scripts,
    understood_phrases,
)
from bench.hops import hops, rasa_own, rasa_turns
from bot.emulator.client import EmulatorClient
from devstack.stack import Stack

SWEEP_SIZES = (10, 25, 50, 100, 200, 400, 800)
P95_TARGET_MS = 1000.0


def _delays(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0, START_SPREAD) for _ in range(count)]


async def run_frontline(
    stack: Stack, conversations: list[list[str]], *, think: float, timeout: float
) -> dict[str, Any]:
    """All conversations at once through the emulator and the app; latency, throughput, errors, 429s."""
    tally = Tally()
    async with EmulatorClient(stack.emulator_url) as emulator:
        calls = CallLog(emulator)
        await calls.skip()
        users = [await new_customer(emulator, f"Bench{index}") for index in range(len(conversations))]
        cpu_before, started = stack_cpu(stack), time.monotonic()
        await asyncio.gather(
            *(
                frontline_customer(emulator, user, script, tally, think=think, timeout=timeout, delay=delay)
                for user, script, delay in zip(users, conversations, _delays(len(users), 1))
            )
        )
        result = tally.report(len(users), time.monotonic() - started)
        result["cpu"] = cpu_used(cpu_before, stack_cpu(stack), tally.messages)
        result["flood"] = await calls.statuses()
        turns = await _turns(stack, {user: f"tg-{user}" for user in users})
        result["hops"] = hops(tally.steps, calls.last, turns)
    return result


async def _turns(stack: Stack, senders: dict[int, str]) -> dict[int, list[tuple[float, float]]]:
    """Each conversation's turns in Rasa's tracker (bench/hops.py), read after the run."""
    turns = {}
    async with aiohttp.ClientSession() as http:
        for key, sender in senders.items():
            async with http.get(stack.rasa_api(f"/conversations/{sender}/tracker")) as response:
                events = (await response.json()).get("events") or [] if response.status == 200 else []
            turns[key] = rasa_turns(events)
    return turns


async def run_rasa(
    stack: Stack, conversations: list[list[str]], *, think: float, timeout: float, tag: str
) -> dict[str, Any]:
    """All conversations at once straight to Rasa's REST channel."""
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=stack.rasa_headers) as http:
        cpu_before, started = stack_cpu(stack), time.monotonic()
        await asyncio.gather(
            *(
                rasa_customer(
                    http,
                    stack.rasa_url,
                    f"bench-{tag}-{index}",
                    script,
                    tally,
                    think=think,
                    timeout=timeout,
                    delay=delay,
                )
                for index, (script, delay) in enumerate(zip(conversations, _delays(len(conversations), 1)))
            )
        )
        result = tally.report(len(conversations), time.monotonic() - started)
        result["cpu"] = cpu_used(cpu_before, stack_cpu(stack), tally.messages)
    senders = {index: f"bench-{tag}-{index}" for index in range(len(conversations))}
    result["rasa_own"] = rasa_own([turn for each in (await _turns(stack, senders)).values() for turn in each])
    return result


async def _measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        phrases = await understood_phrases(http, stack.rasa_url, heldout_phrases(), stack.rasa_token)
    conversations = scripts(args.n, phrases)
    settings = {
        "think_seconds": args.think,
        "timeout_seconds": args.timeout,
        "start_spread_seconds": START_SPREAD,
        "phrasings": {
            "greetings": len(phrases.greetings),
            "questions": len(phrases.questions),
            "complaints": len(phrases.complaints),
            "drops": len(phrases.drops),
        },
    }
    settings["settled_seconds"] = await settle(stack)  # the stack's start-up work done before the first run
    runs = []
    for run in range(args.runs):
        frontline = await run_frontline(stack, conversations, think=args.think, timeout=args.timeout)
        rasa = await run_rasa(stack, conversations, think=args.think, timeout=args.timeout, tag=f"run{run}")
        runs.append(
            {
                "frontline_via_emulator": frontline,
                "bare_rasa_rest": rasa,
                "overhead": {
                    "p50": ratio(frontline["latency"]["p50_ms"], rasa["latency"]["p50_ms"]),
                    "p95": ratio(frontline["latency"]["p95_ms"], rasa["latency"]["p95_ms"]),
                    "throughput": ratio(frontline["answers_per_second"], rasa["answers_per_second"]),
                },
            }
        )
        print(f"  run {run + 1}/{args.runs}: {_line(runs[-1])}", flush=True)
    middle = median_of_runs(runs)
    result: dict[str, Any] = {
        "settings": {**settings, "customers": args.n, "runs": args.runs},
        "runs": runs,
        "median": middle,
        "goals": goals(args.n, middle),
    }
    if args.sweep:
        result["sweep"] = await _sweep(stack, phrases, args)
    return result


def next_sweep_size(best: int | None, failed: int | None, sizes: tuple[int, ...] = SWEEP_SIZES) -> int | None:
    """The next N to try: up the list until one fails, then halving the gap to the last good one (steps of 5)."""
    if failed is None:
        return next((size for size in sizes if best is None or size > best), None)
    low = best or 0
    middle = (low + failed) // 2 // 5 * 5
    return middle if low < middle < failed else None


async def _sweep(stack: Stack, phrases: Phrases, args: argparse.Namespace) -> dict[str, Any]:
    """Growing N through the emulator until p95 reaches 1 s or an error shows, then narrowing; within a time budget."""
    steps, best, failed, started = [], None, None, time.monotonic()
    while (size := next_sweep_size(best, failed)) is not None:
        if time.monotonic() - started > args.sweep_budget:
            steps.append({"customers": size, "skipped": "time budget spent"})
            break
        step = await run_frontline(stack, scripts(size, phrases, seed=size), think=args.think, timeout=args.timeout)
        steps.append(step)
        print(
            f"  sweep N={size}: p95 {step['latency']['p95_ms']} ms, {step['messages_per_second']} msg/s, "
            f"errors {sum(step['errors'].values())}, 429s {step['flood']['429']}",
            flush=True,
        )
        if (
            step["latency"]["p95_ms"] is None
            or step["latency"]["p95_ms"] >= P95_TARGET_MS
            or step["errors"]
            or step["handoffs"]
        ):
            failed = size
        else:
            best = size
    return {"sizes_tried": [step["customers"] for step in steps], "largest_n_p95_under_1s": best, "steps": steps}


def _line(run: dict[str, Any]) -> str:
    frontline, rasa = run["frontline_via_emulator"], run["bare_rasa_rest"]
    return (
        f"Frontline p50 {frontline['latency']['p50_ms']} / p95 {frontline['latency']['p95_ms']} ms, "
        f"{frontline['answers_per_second']} answers/s, handoffs {frontline['handoffs']}, "
        f"429s {frontline['flood']['429']}; bare Rasa p50 {rasa['latency']['p50_ms']} / p95 "
        f"{rasa['latency']['p95_ms']} ms, {rasa['answers_per_second']} answers/s"
    )


def _row(name: str, phase: dict[str, Any]) -> list[Any]:
    latency, first = phase["latency"], phase["first_message_latency"]
    return [
        name,
        phase["messages"],
        phase["answers_per_second"],
        latency["p50_ms"],
        latency["p95_ms"],
        latency["p99_ms"],
        latency["max_ms"],
        first["p50_ms"],
        first["p95_ms"],
        phase["handoffs"],
        sum(phase["errors"].values()),
    ]


def print_report(result: dict[str, Any]) -> None:
    """The tables of a run: each run, the medians, CPU by process, the goals."""
    header = ["run", "messages", "answers/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "1st p50", "1st p95"]
    rows = []
    for number, run in enumerate(result["runs"], 1):
        rows.append(_row(f"{number} Frontline via emulator", run["frontline_via_emulator"]))
        rows.append(_row(f"{number} bare Rasa REST webhook", run["bare_rasa_rest"]))
    print(f"{result['settings']['customers']} customers, {result['settings']['runs']} runs")
    print(table([*header, "handoffs", "errors"], rows))
    print("(latency to the expected answer; 1st: to the bot's first new message, the old yardstick)")
    for number, run in enumerate(result["runs"], 1):
        flood = run["frontline_via_emulator"]["flood"]
        print(
            f"run {number}: Bot API sends {flood['sends']}: 429 {flood['429']} (private chats {flood['429_private']}, "
            f"groups {flood['429_group']}, retry_after {flood['retry_after_s']} s; a refused message held p50 "
            f"{flood['held_by_429']['p50_ms']} / max {flood['held_by_429']['max_ms']} ms); most in a second: "
            f"{flood['peak_sends_per_second']} messages, {flood['peak_calls_per_second']} calls to chats; "
            f"calls {flood['methods']}"
        )
        way = run["frontline_via_emulator"]["hops"]
        print(
            f"  where a step's time goes (p50 / p95 ms): intake {way['intake']['p50_ms']} / {way['intake']['p95_ms']}"
            f", app and Rasa {way['app_and_rasa']['p50_ms']} / {way['app_and_rasa']['p95_ms']}, send "
            f"{way['send']['p50_ms']} / {way['send']['p95_ms']}; bare Rasa {run['bare_rasa_rest']['latency']['p50_ms']}"
            f" / {run['bare_rasa_rest']['latency']['p95_ms']}; typing on the way in {way['with_typing']} of "
            f"{way['steps']} steps"
        )
        if "rasa" in way:
            print(
                f"    of app and Rasa (p50 / p95 ms): to Rasa {way['to_rasa']['p50_ms']} / {way['to_rasa']['p95_ms']}, "
                f"Rasa's own {way['rasa']['p50_ms']} / {way['rasa']['p95_ms']}, after Rasa "
                f"{way['after_rasa']['p50_ms']} / {way['after_rasa']['p95_ms']}; bare Rasa's own "
                f"{run['bare_rasa_rest']['rasa_own']['p50_ms']} / {run['bare_rasa_rest']['rasa_own']['p95_ms']}"
            )
        for name in ("frontline_via_emulator", "bare_rasa_rest"):
            if run[name]["errors"]:
                print(f"  errors ({name}): {run[name]['errors']}")
    middle = result["median"]
    cpu_names = sorted(middle["frontline_cpu_ms_per_message"])
    print(
        "\n"
        + table(
            ["CPU ms per message (median)", *cpu_names],
            [
                ["during Frontline's phase", *(middle["frontline_cpu_ms_per_message"][n] for n in cpu_names)],
                ["during bare Rasa's phase", *(middle["rasa_cpu_ms_per_message"].get(n) for n in cpu_names)],
            ],
        )
    )
    print("\n" + goal_table(result["goals"]))
    print("\n" + memory_table(result["memory"]))
    if "sweep" in result:
        sweep = result["sweep"]
        rows = [
            [
                step["customers"],
                step.get("messages_per_second"),
                step.get("latency", {}).get("p50_ms"),
                step.get("latency", {}).get("p95_ms"),
                step.get("latency", {}).get("p99_ms"),
                sum(step.get("errors", {}).values()),
                step.get("flood", {}).get("429"),
                step.get("skipped", ""),
            ]
            for step in sweep["steps"]
        ]
        print("\n" + table(["N", "msg/s", "p50 ms", "p95 ms", "p99 ms", "errors", "429s", ""], rows))
        print(f"largest N with p95 under 1 s: {sweep['largest_n_p95_under_1s']}")


def main() -> None:
    """Start the stack, run the conversations both ways (and the sweep), report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=50, help="concurrent customers (default 50)")
    parser.add_argument("--think", type=float, default=1.0, help="seconds a customer waits after a reply (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply (default 30)")
    parser.add_argument(
        "--database", help="an empty PostgreSQL database's URL: the stack on it instead of SQLite files"
    )
    parser.add_argument("--webhook", action="store_true", help="the app in webhook mode (WEBHOOK_URL), not polling")
    parser.add_argument("--runs", type=int, default=3, help="runs of each configuration, medians reported (default 3)")
    parser.add_argument("--sweep", action="store_true", help="also find the largest N with p95 under 1 s")
    parser.add_argument("--sweep-budget", type=float, default=240.0, help="no new sweep step after this many seconds")
    args = parser.parse_args()
    name = "chat-webhook" if args.webhook else "chat"
    measure = lambda stack: _measure(stack, args)
    measure_on_stack(name, measure, print_report, database=args.database, webhook=args.webhook)


if __name__ == "__main__":
    main()
