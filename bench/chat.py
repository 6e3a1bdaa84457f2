"""Many customers at once: scripted conversations through the emulator against the whole stack, next to bare Rasa.

Run with `make bench-chat [N=50] [SWEEP=1]`. N customers (concurrent) each hold a short conversation: a greeting, two
or three questions from the held-out FAQ phrasings, and for every other customer a complaint begun and dropped
("never mind"). The latency of a message runs from the moment the emulator accepted it to the bot's first new
message in that chat (both on the emulator's clock). The same conversations then go to Rasa's REST channel with
distinct sender ids at the same concurrency. Telegram's flood limits stay on; the 429s the emulator answered are
counted. With SWEEP=1, N = 10, 25, 50, 100, 200, ... until p95 reaches 1 s (or the time budget runs out).
Prints tables and writes var/bench/chat.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench._common import heldout, is_new_message, measure_on_stack, memory_table, ratio, summary, table
from bot.emulator.client import EmulatorClient, EmulatorClientError
from bot.replies import HANDOFF_BOT_DOWN
from devstack.stack import Stack

SWEEP_SIZES = (10, 25, 50, 100, 200, 400, 800)
P95_TARGET_MS = 1000.0
START_SPREAD = 2.0  # customers start within this many seconds of each other, not all in the same millisecond
_user_ids = itertools.count(910_001)


@dataclass(frozen=True)
class Phrases:
    """What scripted customers say, by role in the conversation."""

    greetings: list[str]
    questions: list[str]
    complaints: list[str]
    drops: list[str]


def heldout_phrases() -> Phrases:
    """All held-out phrasings of the intents the scripts use."""
    data = heldout()
    return Phrases(
        greetings=data["greet"],
        questions=[text for intent, texts in data.items() if intent.startswith("faq/") for text in texts],
        complaints=data["complain"],
        drops=data["stop"],
    )


def scripts(count: int, phrases: Phrases, seed: int = 5) -> list[list[str]]:
    """`count` conversations: greeting, 2–3 questions, and for every other one a complaint begun and dropped."""
    rng = random.Random(seed)
    conversations = []
    for index in range(count):
        turns = [rng.choice(phrases.greetings), *rng.sample(phrases.questions, rng.choice((2, 3)))]
        if index % 2 and phrases.complaints and phrases.drops:
            turns += [rng.choice(phrases.complaints), rng.choice(phrases.drops)]
        conversations.append(turns)
    return conversations


async def understood_phrases(http: aiohttp.ClientSession, rasa_url: str, phrases: Phrases, token: str) -> Phrases:
    """Only the phrasings the trained model puts in their intent, so that no script drifts into a handoff
    (`token`: RASA_TOKEN, which Rasa's HTTP API reads from the query string)."""
    groups = {
        "greet": phrases.greetings,
        "faq": phrases.questions,
        "complain": phrases.complaints,
        "stop": phrases.drops,
    }
    kept: dict[str, list[str]] = {}
    for intent, texts in groups.items():
        kept[intent] = []
        for text in texts:
            async with http.post(f"{rasa_url}/model/parse", json={"text": text}, params={"token": token}) as response:
                name = ((await response.json()).get("intent") or {}).get("name") or ""
            if name.split("/")[0] == intent:
                kept[intent].append(text)
    return Phrases(kept["greet"], kept["faq"], kept["complain"], kept["stop"])


@dataclass
class Tally:
    """What one phase measured."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    messages: int = 0

    def report(self, customers: int, seconds: float) -> dict[str, Any]:
        return {
            "customers": customers,
            "messages": self.messages,
            "seconds": round(seconds, 2),
            "messages_per_second": round(self.messages / seconds, 2) if seconds else None,
            "latency": summary(self.latencies),
            "errors": dict(self.errors),
        }


async def _first_reply(emulator: EmulatorClient, chat_id: int, after: int, timeout: float) -> dict | None:
    """The bot's first new message in a chat after a seq, or None within the timeout."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        batch = await emulator.sent(chat_id, after, wait=remaining)
        for entry in batch.messages:
            if is_new_message(entry):
                return entry
        after = batch.last
    return None


async def frontline_customer(
    emulator: EmulatorClient,
    user_id: int,
    script: list[str],
    tally: Tally,
    *,
    think: float,
    timeout: float,
    delay: float = 0.0,
    stop: asyncio.Event | None = None,
) -> None:
    """One customer through the emulator: each message waits for the bot's first reply, then `think` seconds."""
    await asyncio.sleep(delay)
    for text in script:
        if stop is not None and stop.is_set():
            return
        after = (await emulator.sent(user_id)).last
        try:
            await emulator.send_text(user_id, text)
        except (EmulatorClientError, aiohttp.ClientError) as exc:
            tally.errors[f"send failed: {exc}"[:80]] += 1
            continue
        accepted = time.time()
        tally.messages += 1
        reply = await _first_reply(emulator, user_id, after, timeout)
        if reply is None:
            tally.errors[f"no reply within {timeout:.0f} s"] += 1
        else:
            tally.latencies.append(max(0.0, reply["time"] - accepted))
            if (reply.get("text") or "").startswith(HANDOFF_BOT_DOWN):
                # Rasa did not answer within RASA_TIMEOUT: the app handed the customer to a person, so the bot
                # stays silent for the rest of the script.
                tally.errors["Rasa too slow: handed to a person"] += 1
                return
        await asyncio.sleep(think)


async def rasa_customer(
    http: aiohttp.ClientSession,
    rasa_url: str,
    sender: str,
    script: list[str],
    tally: Tally,
    *,
    think: float,
    timeout: float,
    delay: float = 0.0,
) -> None:
    """The same conversation straight to Rasa's REST channel: each message waits for Rasa's answer."""
    await asyncio.sleep(delay)
    for text in script:
        started = time.perf_counter()
        tally.messages += 1
        try:
            async with http.post(
                f"{rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": text},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                answer = await response.json(content_type=None) if response.status == 200 else None
                if response.status != 200:
                    tally.errors[f"HTTP {response.status}"] += 1
                elif not answer:
                    tally.errors["empty answer"] += 1
                else:
                    tally.latencies.append(time.perf_counter() - started)
        except TimeoutError:
            tally.errors[f"no answer within {timeout:.0f} s"] += 1
        except aiohttp.ClientError as exc:
            tally.errors[f"request failed: {type(exc).__name__}"] += 1
        await asyncio.sleep(think)


async def background_load(
    emulator: EmulatorClient,
    phrases: Phrases,
    customers: int,
    stop: asyncio.Event,
    tally: Tally,
    *,
    think: float,
    timeout: float,
) -> None:
    """`customers` customers holding one scripted conversation after another until `stop` is set."""

    async def customer(index: int) -> None:
        for script in scripts(100, phrases, seed=index):  # one new customer after another in this slot
            if stop.is_set():
                return
            user = (
                await emulator.add_user(
                    f"Load{index}", last_name="Customer", language_code="en", user_id=next(_user_ids)
                )
            )["id"]
            await frontline_customer(
                emulator,
                user,
                script,
                tally,
                think=think,
                timeout=timeout,
                delay=random.Random(index).uniform(0, START_SPREAD),
                stop=stop,
            )

    await asyncio.gather(*(customer(index) for index in range(customers)))


class CallLog:
    """Follows the emulator's Bot API call log, to count what it answered to the bot's sends."""

    def __init__(self, emulator: EmulatorClient) -> None:
        self._emulator = emulator
        self._after = 0

    async def skip(self) -> None:
        """Start counting from now."""
        calls = await self._emulator.calls(after=self._after)
        self._after = calls[-1]["seq"] if calls else self._after

    async def statuses(self) -> dict[str, Any]:
        """HTTP statuses of the sending calls since the last call, with the 429s by kind of chat."""
        await asyncio.sleep(0.5)  # let calls in flight be answered
        calls = await self._emulator.calls(after=self._after)
        self._after = calls[-1]["seq"] if calls else self._after
        sends = [call for call in calls if is_new_message(call)]
        refused = [call for call in sends if call["status"] == 429]
        return {
            "sends": len(sends),
            "statuses": dict(Counter(str(call["status"]) for call in sends)),
            "429": len(refused),
            "429_private": sum(1 for call in refused if int(call["params"].get("chat_id", 0)) > 0),
            "429_group": sum(1 for call in refused if int(call["params"].get("chat_id", 0)) < 0),
        }


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
        users = [
            (
                await emulator.add_user(
                    f"Bench{index}", last_name="Customer", language_code="en", user_id=next(_user_ids)
                )
            )["id"]
            for index in range(len(conversations))
        ]
        started = time.monotonic()
        await asyncio.gather(
            *(
                frontline_customer(emulator, user, script, tally, think=think, timeout=timeout, delay=delay)
                for user, script, delay in zip(users, conversations, _delays(len(users), 1))
            )
        )
        result = tally.report(len(users), time.monotonic() - started)
        result["flood"] = await calls.statuses()
    return result


async def run_rasa(
    stack: Stack, conversations: list[list[str]], *, think: float, timeout: float, tag: str
) -> dict[str, Any]:
    """All conversations at once straight to Rasa's REST channel."""
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=stack.rasa_headers) as http:
        started = time.monotonic()
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
        return tally.report(len(conversations), time.monotonic() - started)


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
    frontline = await run_frontline(stack, conversations, think=args.think, timeout=args.timeout)
    rasa = await run_rasa(stack, conversations, think=args.think, timeout=args.timeout, tag="main")
    result: dict[str, Any] = {
        "settings": settings,
        "frontline_via_emulator": frontline,
        "bare_rasa_rest": rasa,
        "overhead": {
            "p50": ratio(frontline["latency"]["p50_ms"], rasa["latency"]["p50_ms"]),
            "p95": ratio(frontline["latency"]["p95_ms"], rasa["latency"]["p95_ms"]),
        },
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
        if step["latency"]["p95_ms"] is None or step["latency"]["p95_ms"] >= P95_TARGET_MS or step["errors"]:
            failed = size
        else:
            best = size
    return {"sizes_tried": [step["customers"] for step in steps], "largest_n_p95_under_1s": best, "steps": steps}


def _row(name: str, phase: dict[str, Any]) -> list[Any]:
    latency = phase["latency"]
    return [
        name,
        phase["customers"],
        phase["messages"],
        phase["messages_per_second"],
        latency["p50_ms"],
        latency["p95_ms"],
        latency["p99_ms"],
        latency["max_ms"],
        sum(phase["errors"].values()),
    ]


def print_report(result: dict[str, Any]) -> None:
    """The tables of a run."""
    header = ["path", "customers", "messages", "msg/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"]
    print(
        table(
            header,
            [
                _row("Frontline via emulator", result["frontline_via_emulator"]),
                _row("bare Rasa REST webhook", result["bare_rasa_rest"]),
            ],
        )
    )
    overhead, flood = result["overhead"], result["frontline_via_emulator"]["flood"]
    print(f"\nFrontline overhead: p50 x{overhead['p50']}, p95 x{overhead['p95']} (Frontline / bare Rasa)")
    print(
        f"Bot API sends {flood['sends']}: 429 (flood limit) {flood['429']} "
        f"(private chats {flood['429_private']}, groups {flood['429_group']}); statuses {flood['statuses']}"
    )
    for name in ("frontline_via_emulator", "bare_rasa_rest"):
        if result[name]["errors"]:
            print(f"errors ({name}): {result[name]['errors']}")
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
    parser.add_argument("--sweep", action="store_true", help="also find the largest N with p95 under 1 s")
    parser.add_argument("--sweep-budget", type=float, default=240.0, help="no new sweep step after this many seconds")
    args = parser.parse_args()
    measure_on_stack("chat", lambda stack: _measure(stack, args), print_report)


if __name__ == "__main__":
    main()
