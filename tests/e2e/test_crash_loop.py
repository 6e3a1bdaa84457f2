"""A crash loop: the app killed (SIGKILL) again and again at times drawn from a seed while customers ask FAQ
questions, and in each run a second instance started by mistake beside it, which must refuse to poll.

After recovery every question is answered exactly once. The one copy allowed is of a reply that Telegram already had
while the app's database still held it as not sent, at the moment of a kill: the app sends it again after the
restart. The test counts those replies at each kill and the copies, asserts that a reply has at most as many copies
as kills that found it in flight, and prints both counts."""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
from collections import Counter
from dataclasses import dataclass, field

import pytest

from bot.emulator.client import EmulatorClient
from bot.storage import transcript
from bot.storage.models import DeliveryStatus, Direction
from devstack.stack import VENV_BIN, Stack, free_port
from tests.e2e.helpers import variations

SEEDS = (11, 12, 13)
KILLS = 4  # a seed's kills, each 1.5–4 s after the app was back
CUSTOMERS = 6  # a seed's customers, all asking at once
QUESTIONS = {
    "how long does delivery take": "utter_faq/delivery_time",
    "what are your opening hours": "utter_faq/opening_hours",
    "how do i return something": "utter_faq/returns_policy",
    "can i pay with paypal": "utter_faq/payment_methods",
}
ANSWERS = {text: question for question, response in QUESTIONS.items() for text in variations(response)}
RECOVERY = 90.0  # seconds for every answer to arrive once the app is left alone
REFUSED = "another instance is already polling this Telegram bot with this database"


@dataclass
class Ledger:
    """What the test saw while the app was dead after each kill."""

    kills: int = 0
    # (chat, reply text): how many kills found it sent to Telegram but not yet marked sent in the database.
    in_flight: Counter[tuple[int, str]] = field(default_factory=Counter)


async def _customer(emulator: EmulatorClient, user_id: int, rng: random.Random) -> None:
    """Ask every question, waiting for an answer a few seconds at most (the app may be dead) and thinking a bit."""
    for question in rng.sample(list(QUESTIONS), len(QUESTIONS)):
        after = (await emulator.sent(user_id)).last
        await emulator.send_text(user_id, question)
        with contextlib.suppress(TimeoutError):
            await emulator.wait_for_text(user_id, after, timeout=5)
        await asyncio.sleep(rng.uniform(0.1, 1.0))


async def _note_in_flight(emulator: EmulatorClient, db, users: list[int], ledger: Ledger) -> None:
    """With the app dead: the replies its database holds as not sent that Telegram already has (a restart sends them
    again: the duplicates the design allows)."""
    for user in users:
        async with db() as session:
            stored = await session.run_sync(transcript.messages, user)
        unsent = {m.text for m in stored if m.direction is Direction.OUT and m.status is DeliveryStatus.PENDING}
        delivered = {m.get("text") for m in (await emulator.sent(user)).messages if m["method"] == "sendMessage"}
        for text in unsent & delivered:
            ledger.in_flight[(user, text)] += 1


def _start_by_mistake(stack: Stack) -> subprocess.Popen:
    """A second app on the same bot and database (its own port, as if started from another shell)."""
    return stack._spawn("app-by-mistake", [str(VENV_BIN / "frontline"), "app"], APP_PORT=str(free_port()))


async def _second_instance_refuses(stack: Stack, emulator: EmulatorClient) -> None:
    polls_before = (await emulator.calls("getUpdates"))[-1]["seq"]
    second = await asyncio.to_thread(_start_by_mistake, stack)
    try:
        code = await asyncio.to_thread(second.wait, 60)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        if second.poll() is None:
            await asyncio.to_thread(stack.kill, "app-by-mistake")
        stack.processes.pop("app-by-mistake", None)
    assert code is not None, f"the second instance kept running beside the first:\n{stack.log('app-by-mistake')}"
    assert code == 3, f"exit status {code}:\n{stack.log('app-by-mistake')}"
    assert REFUSED in stack.log("app-by-mistake")
    conflicts = [c for c in await emulator.calls("getUpdates", after=polls_before) if c["status"] == 409]
    assert conflicts == [], "the second instance never polled (a poll of its own would have ended the first's)"
    assert stack.processes["app"].poll() is None, "the first instance still runs"


async def _kill_loop(stack: Stack, emulator: EmulatorClient, db, users: list[int], rng: random.Random) -> Ledger:
    ledger = Ledger()
    mistake = rng.randrange(KILLS)  # after which restart a second instance is started by mistake
    for kill in range(KILLS):
        await asyncio.sleep(rng.uniform(1.5, 4.0))
        await asyncio.to_thread(stack.kill, "app")
        ledger.kills += 1
        await _note_in_flight(emulator, db, users, ledger)
        await asyncio.to_thread(stack.start_app)
        if kill == mistake:
            await _second_instance_refuses(stack, emulator)
    return ledger


async def _answers(emulator: EmulatorClient, user: int) -> list[str]:
    return [m.get("text") or "" for m in (await emulator.sent(user)).messages if m["method"] == "sendMessage"]


async def _wait_for_every_answer(emulator: EmulatorClient, users: list[int]) -> None:
    deadline = asyncio.get_running_loop().time() + RECOVERY
    while asyncio.get_running_loop().time() < deadline:
        answered = [set(await _answers(emulator, user)) for user in users]
        if all(len(texts & set(ANSWERS)) == len(QUESTIONS) for texts in answered):
            return
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("seed", SEEDS)
async def test_killed_again_and_again_the_app_answers_every_question_once(
    stack: Stack, emulator: EmulatorClient, db, seed: int
) -> None:
    rng = random.Random(seed)
    users = [
        (await emulator.add_user(f"Crash{seed}-{n}", user_id=760_000 + seed * 100 + n, language_code="en"))["id"]
        for n in range(CUSTOMERS)
    ]
    customers = [asyncio.create_task(_customer(emulator, user, random.Random(rng.random()))) for user in users]
    ledger = await _kill_loop(stack, emulator, db, users, rng)
    await asyncio.gather(*customers)
    await _wait_for_every_answer(emulator, users)
    await asyncio.sleep(3)  # left alone: room for a late copy to show up, if there were one

    duplicates = 0
    for user in users:
        counts = Counter(await _answers(emulator, user))
        assert {ANSWERS.get(text, text) for text in counts} == set(QUESTIONS), (
            f"customer {user}: every question answered, nothing else said"
        )
        for text, count in counts.items():
            allowed = ledger.in_flight[(user, text)]
            assert count - 1 <= allowed, (
                f"customer {user}: {ANSWERS[text]!r} answered {count} times; in flight at {allowed} kills"
            )
            duplicates += count - 1
    print(
        f"seed {seed}: {ledger.kills} kills, {len(users) * len(QUESTIONS)} questions, "
        f"{sum(ledger.in_flight.values())} replies in flight at a kill, {duplicates} duplicates"
    )
