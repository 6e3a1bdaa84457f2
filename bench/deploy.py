"""Edit-to-live times, and what customers notice while the live model changes.

    make bench-deploy [RATE=4]

On the full stack (emulator, actions, app, Rasa pulling its model from the app), customers keep asking
questions at a steady rate (RATE messages a second in all) while an admin, through the same code the console
calls:
1. edits a response: the time until a customer gets the new text (no training: the NLG endpoint);
2. adds a new question (a FAQ with examples and an answer), trains it (export, `rasa train`, held-out
   evaluation afterwards) and puts it live: the time until a customer asking it gets its answer, split into
   training and the pull (Rasa's next poll plus loading the model);
3. puts the earlier version back live (rollback): the time until the new question is no longer answered.
Around each model change: the messages of the steady stream that failed (no reply, or a handoff because
Rasa was too slow) and their worst latency. Everything is put back as it was at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from bench._common import SENDING, measure_on_stack, summary, table
from bot import replies
from bot.config import load_settings
from bot.content import current, edits, versions
from bot.content.deploy import Trainer
from bot.emulator.client import EmulatorClient
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import ModelStatus, ModelVersion
from devstack.stack import Stack

QUESTIONS = [
    "what are your opening hours",
    "how long does delivery take",
    "how do i return an item",
    "can i pay with paypal",
    "how much is delivery",
]
NEW_FAQ = "faq/bench_gift_wrap"
NEW_EXAMPLES = [
    "do you gift wrap",
    "can you gift wrap my order",
    "is gift wrapping available",
    "can i get it wrapped as a present",
    "do you offer gift wrapping",
    "gift wrap please",
    "can you wrap it as a gift",
    "is there a gift wrap option",
]
NEW_ANSWER = "Yes: tick 'Gift wrap' at checkout and we wrap it for £2.50 (benchmark answer)."
EDITED = "utter_faq/opening_hours"
EDITED_TEXT = "We're open Mon–Fri 8–20, Sat 9–17 (benchmark edit)."


@dataclass
class Stream:
    """Steady questions from a few customers; each message's latency, and failures, with their time."""

    emulator: EmulatorClient
    users: list[int]
    rate: float
    samples: list[tuple[float, float]] = field(default_factory=list)  # (sent at, latency)
    failures: list[tuple[float, str]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        interval = len(self.users) / self.rate
        await asyncio.gather(
            *(
                self._customer(user, index * interval / len(self.users), interval)
                for index, user in enumerate(self.users)
            )
        )

    async def _customer(self, user: int, delay: float, interval: float) -> None:
        await asyncio.sleep(delay)
        for question in itertools.cycle(QUESTIONS):
            if self.stop.is_set():
                return
            started = time.monotonic()
            after = (await self.emulator.sent(user)).last
            await self.emulator.send_text(user, question)
            reply = await _first_message(self.emulator, user, after, timeout=30)
            latency = time.monotonic() - started
            if reply is None:
                self.failures.append((started, "no reply within 30 s"))
            elif (reply.get("text") or "").startswith(replies.HANDOFF_BOT_DOWN):
                self.failures.append((started, "handed to a person: Rasa did not answer"))
                await _leave_queue(self.emulator, user)
            else:
                self.samples.append((started, latency))
            await asyncio.sleep(max(0.0, interval - latency))

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Latencies and failures of the messages sent between two moments."""
        inside = [latency for at, latency in self.samples if start <= at <= end]
        return {**summary(inside), "failures": [why for at, why in self.failures if start <= at <= end]}


async def _first_message(emulator: EmulatorClient, chat_id: int, after: int, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        batch = await emulator.sent(chat_id, after, wait=remaining)
        for entry in batch.messages:
            if entry["method"].startswith(SENDING):
                return entry
        after = batch.last
    return None


async def _leave_queue(emulator: EmulatorClient, user: int) -> None:
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "/cancel")
    await _first_message(emulator, user, after, timeout=10)


async def _until_answered(
    emulator: EmulatorClient,
    user: int,
    question: str,
    wanted: str | None,
    *,
    unwanted: str | None = None,
    timeout: float = 300,
) -> float:
    """Ask `question` again and again until the reply contains `wanted` (or no longer contains `unwanted`);
    returns when that first happened (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = (await emulator.sent(user)).last
        await emulator.send_text(user, question)
        reply = await _first_message(emulator, user, after, timeout=30)
        text = (reply or {}).get("text") or ""
        if text.startswith(replies.HANDOFF_BOT_DOWN):
            await _leave_queue(emulator, user)
        elif (wanted and wanted in text) or (unwanted and text and unwanted not in text):
            return time.monotonic()
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{question!r} not answered as expected within {timeout} s")


async def _measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(stack.env())
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    trainer = Trainer(settings, sessions)
    async with EmulatorClient(stack.emulator_url) as emulator:
        users = [
            (await emulator.add_user(f"Steady{i}", last_name="Customer", language_code="en"))["id"] for i in range(4)
        ]
        asker = (await emulator.add_user("Admin", last_name="Checking", language_code="en"))["id"]
        stream = Stream(emulator, users, args.rate)
        running = asyncio.create_task(stream.run())
        async with sessions() as session:
            original = await session.run_sync(versions.live_version)
            before = (await session.run_sync(current.load)).responses[EDITED].variations
        assert original is not None, "no live model"
        result: dict[str, Any] = {"rate": args.rate}
        try:
            await asyncio.sleep(5)  # a baseline
            baseline_end = time.monotonic()
            result["baseline"] = stream.window(0, baseline_end)

            edited = time.monotonic()
            async with sessions.begin() as session:
                await session.run_sync(edits.set_response, EDITED, [{"text": EDITED_TEXT}], "bench")
            seen = await _until_answered(emulator, asker, QUESTIONS[0], EDITED_TEXT, timeout=30)
            result["response_edit_to_live_s"] = round(seen - edited, 2)

            added = time.monotonic()
            async with sessions.begin() as session:  # (an example of its own each run: a model trained, not reused)
                await session.run_sync(
                    edits.add_intent,
                    NEW_FAQ,
                    [*NEW_EXAMPLES, f"gift wrap for order bench{int(time.time())}"],
                    "bench",
                    answer=NEW_ANSWER,
                )
            version_id = await trainer.start("bench", "benchmark: a new question")
            trained_at = await _until_ready(sessions, version_id)
            result["train_s"] = round(trained_at - added, 2)
            live_at = time.monotonic()
            await trainer.put_live(version_id, "bench")
            answered = await _until_answered(emulator, asker, NEW_EXAMPLES[0], NEW_ANSWER)
            result["pull_and_load_s"] = round(answered - live_at, 2)
            result["new_question_to_live_s"] = round(answered - added, 2)
            await asyncio.sleep(3)
            result["while_changing_model"] = stream.window(live_at - 1, time.monotonic())

            rolled = time.monotonic()
            await trainer.put_live(original.id, "bench")
            gone = await _until_answered(emulator, asker, NEW_EXAMPLES[0], None, unwanted=NEW_ANSWER)
            result["rollback_to_live_s"] = round(gone - rolled, 2)
            await asyncio.sleep(3)
            result["while_rolling_back"] = stream.window(rolled - 1, time.monotonic())
            await trainer.wait()  # the evaluation
            async with sessions() as session:
                version = await session.get(ModelVersion, version_id)
                result["evaluation"] = {k: v for k, v in (version.metrics or {}).items() if k != "intents"}
                result["new_question_accuracy"] = ((version.metrics or {}).get("intents") or {}).get(NEW_FAQ)
        finally:
            stream.stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running, 60)
            async with sessions.begin() as session:
                await session.run_sync(versions.put_version_live, original.id, "bench")
                await session.run_sync(edits.set_response, EDITED, before, "bench")
                with contextlib.suppress(Exception):
                    await session.run_sync(edits.delete_intent, NEW_FAQ, "bench")
            await trainer.close()
            await engine.dispose()
        result["whole_run"] = stream.window(0, time.monotonic())
    return result


async def _until_ready(sessions, version_id: int, timeout: float = 900) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with sessions() as session:
            version = await session.get(ModelVersion, version_id)
            if version.status == ModelStatus.READY:
                return time.monotonic()
            if version.status == ModelStatus.FAILED:
                raise RuntimeError(f"training failed: {version.error}")
        await asyncio.sleep(0.5)
    raise TimeoutError("training took too long")


def print_report(result: dict[str, Any]) -> None:
    print(
        table(
            ["edit → live", "seconds"],
            [
                ["response edited → customer sees it", result.get("response_edit_to_live_s")],
                ["new question: training (export + rasa train)", result.get("train_s")],
                ["new question: put live → answered (pull + load)", result.get("pull_and_load_s")],
                ["new question: added → answered", result.get("new_question_to_live_s")],
                ["rollback: put back → old model answering", result.get("rollback_to_live_s")],
            ],
        )
    )
    rows = []
    for name in ("baseline", "while_changing_model", "while_rolling_back", "whole_run"):
        window = result.get(name) or {}
        rows.append(
            [
                name,
                window.get("n"),
                window.get("p50_ms"),
                window.get("p95_ms"),
                window.get("max_ms"),
                len(window.get("failures") or []),
            ]
        )
    print(table(["steady stream", "messages", "p50 ms", "p95 ms", "max ms", "failed"], rows))
    print(
        f"evaluation of the new model: {result.get('evaluation')}; the new question: {result.get('new_question_accuracy')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rate", type=float, default=4.0, help="messages a second from the steady customers (default 4)"
    )
    args = parser.parse_args()
    measure_on_stack("deploy", lambda stack: _measure(stack, args), print_report)


if __name__ == "__main__":
    main()
