"""Telegram answering 429 and 502 at random: every reply is delivered, in order, and every retry_after is honoured."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from telegram import Bot

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.storage import inbox, transcript
from bot.storage.db import create_engine, create_sessionmaker, migrate
from bot.storage.models import DeliveryStatus, Direction
from bot.telegram import outbox as outbox_module
from bot.telegram import typing_action
from bot.telegram.outbox import Outbox
from tests.unit.chat_harness import TOKEN, Harness, eventually, running_harness

CUSTOMERS = (4242, 6101, 6102, 6103)
MESSAGES = 6  # per customer, sent all at once
SEED = int(os.environ.get("FRONTLINE_FAULT_SEED", "20261125"))  # set it to replay another run's faults
RETRY_AFTER = 2


def two_replies(body: dict) -> list[dict]:
    """Each message gets two replies, so order within one answer counts too."""
    return [{"text": f"{body['message']} (1/2)"}, {"text": f"{body['message']} (2/2)"}]


def expected_replies(customer: int) -> list[str]:
    return [f"{customer} #{number} ({part}/2)" for number in range(1, MESSAGES + 1) for part in (1, 2)]


def chat_of(call: dict) -> str | None:
    chat_id = call["params"].get("chat_id")
    return None if chat_id is None else str(chat_id)


def calls_too_soon(calls: list[dict]) -> list[tuple[dict, dict]]:
    """Pairs (429, later call to the same chat that arrived before the 429's retry_after had passed since its answer).

    A call that arrived before the 429 was answered was already on its way, and is not counted.
    """
    by_chat: dict[str, list[dict]] = defaultdict(list)
    for call in calls:
        if chat_of(call) is not None:
            by_chat[chat_of(call)].append(call)
    early = []
    for chat_calls in by_chat.values():
        for refused in (call for call in chat_calls if call["status"] == 429):
            answered = refused["time"] + refused["duration"]
            until = answered + refused["retry_after"]
            early += [
                (refused, call) for call in chat_calls if answered <= call["time"] < until and call is not refused
            ]
    return early


def test_calls_too_soon_sees_a_call_inside_a_retry_after_and_nothing_else() -> None:
    refused = {"params": {"chat_id": 1}, "status": 429, "time": 10.0, "duration": 0.5, "retry_after": 2}
    in_flight = {"params": {"chat_id": 1}, "status": 200, "time": 10.2, "duration": 0.1, "retry_after": None}
    too_soon = {"params": {"chat_id": "1"}, "status": 200, "time": 12.4, "duration": 0.1, "retry_after": None}
    other_chat = {"params": {"chat_id": 2}, "status": 200, "time": 11.0, "duration": 0.1, "retry_after": None}
    in_time = {"params": {"chat_id": 1}, "status": 200, "time": 12.5, "duration": 0.1, "retry_after": None}
    no_chat = {"params": {}, "status": 200, "time": 11.0, "duration": 0.1, "retry_after": None}
    assert calls_too_soon([refused, in_flight, too_soon, other_chat, in_time, no_chat]) == [(refused, too_soon)]


async def _sent_texts(harness: Harness, customer: int) -> list[str]:
    return [entry["text"] for entry in (await harness.emulator.sent(customer)).messages]


async def _unfinished(harness: Harness) -> tuple[list, list]:
    """Updates not yet marked done, replies not yet marked sent (the app marks them just after Telegram answers)."""
    async with harness.sessions() as session:
        return [row.update_id for row in await session.run_sync(inbox.pending)], [
            m.id for m in await session.run_sync(transcript.outbox)
        ]


async def _all_delivered(harness: Harness) -> bool:
    for customer in CUSTOMERS:
        if len(await _sent_texts(harness, customer)) < 2 * MESSAGES:
            return False
    return True


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_random_429s_and_502s_lose_nothing_reorder_nothing_and_retry_after_is_honoured(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as harness:
        harness.rasa.answer = two_replies
        for customer in CUSTOMERS[1:]:
            await harness.emulator.add_user(f"Customer {customer}", user_id=customer)
        # Every Bot API call the app makes from now on, getUpdates included, may be refused either way.
        await harness.emulator.set_fault("429", count=-1, probability=0.2, seed=SEED, retry_after=RETRY_AFTER)
        await harness.emulator.set_fault("502", count=-1, probability=0.2, seed=SEED + 1)
        for number in range(1, MESSAGES + 1):
            for customer in CUSTOMERS:
                await harness.emulator.send_text(customer, f"{customer} #{number}")

        delivered = await eventually(lambda: _all_delivered(harness), True, timeout=120)
        await harness.emulator.clear_faults()
        calls = await harness.emulator.calls()
        replay = f"(FRONTLINE_FAULT_SEED={SEED} replays these faults)"
        assert delivered, f"not every reply arrived within 120 s {replay}"
        for customer in CUSTOMERS:
            assert await _sent_texts(harness, customer) == expected_replies(customer), replay
        faulted = [call["fault"] for call in calls if call["fault"]]
        assert "429" in faulted and "502" in faulted, "the faults really happened"
        assert any(call["method"] == "sendMessage" and call["fault"] == "429" for call in calls)
        assert calls_too_soon(calls) == [], replay

        assert await eventually(lambda: _unfinished(harness), ([], [])), "every update done, every reply marked sent"
        async with harness.sessions() as session:
            for customer in CUSTOMERS:
                stored = await session.run_sync(transcript.messages, customer)
                outgoing = [m for m in stored if m.direction is Direction.OUT]
                assert [m.text for m in outgoing] == expected_replies(customer)
                assert {m.status for m in outgoing} == {DeliveryStatus.SENT}
                assert [m.text for m in stored if m.direction is Direction.IN] == [
                    f"{customer} #{number}" for number in range(1, MESSAGES + 1)
                ]
        assert len(harness.rasa.received) == len(CUSTOMERS) * MESSAGES, "each message went to Rasa once"


@pytest.fixture
async def outbox_world(tmp_path: Path) -> AsyncIterator[tuple[Outbox, EmulatorClient, async_sessionmaker, int]]:
    """An outbox of its own against an emulator with one customer, and two replies waiting in that chat."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    async with EmulatorServer() as server, EmulatorClient(server.base_url) as control:
        customer = (await control.add_user("Ann"))["id"]
        async with sessions.begin() as session:
            person = await session.run_sync(transcript.upsert_customer, telegram_user_id=customer, first_name="Ann")
            conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=customer, customer=person)
            for text in ("first", "second"):
                await session.run_sync(transcript.queue_outgoing, conversation=conversation, text=text, update_id=None)
        async with Bot(TOKEN, base_url=server.bot_api_url) as bot:
            yield Outbox(bot, sessions), control, sessions, customer
    await engine.dispose()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_flush_that_waited_for_a_refused_one_does_not_send_right_after_it(outbox_world) -> None:
    outbox, control, sessions, customer = outbox_world
    await control.set_fault("429", method="sendMessage", chat_id=customer, retry_after=5)
    await asyncio.gather(outbox.flush(customer), outbox.flush(customer))  # the handler's and the retry round's
    assert [call["status"] for call in await control.calls("sendMessage")] == [429]
    async with sessions() as session:
        assert [m.text for m in await session.run_sync(transcript.outbox, customer)] == ["first", "second"]


class MarkingFails:
    """The database goes away for `times` attempts to mark a message sent, right after Telegram accepted it."""

    def __init__(self, sessions: async_sessionmaker, times: int) -> None:
        self._sessions, self.left = sessions, times

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._sessions, name)

    async def run(self, work, *args, **kwargs):  # type: ignore[no-untyped-def]
        if work in (transcript.mark_delivered, outbox_module._mark_all) and self.left > 0:
            self.left -= 1
            raise OperationalError(
                "UPDATE messages", {}, ConnectionRefusedError("the database system is shutting down")
            )
        return await self._sessions.run(work, *args, **kwargs)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
@pytest.mark.parametrize("failures", [1, 3])
async def test_a_reply_sent_while_the_database_went_away_is_marked_later_not_sent_again(
    outbox_world, failures: int
) -> None:
    outbox, control, sessions, customer = outbox_world
    outbox = Outbox(outbox._bot, MarkingFails(sessions, failures))
    for _ in range(failures):
        with pytest.raises(OperationalError):
            await outbox.flush(customer)  # "first" reached Telegram; marking it sent did not reach the database
    await outbox.flush(customer)
    assert [call["params"]["text"] for call in await control.calls("sendMessage")] == ["first", "second"]
    async with sessions() as session:
        assert await session.run_sync(transcript.outbox, customer) == []
        assert {m.status for m in await session.run_sync(transcript.messages, customer)} == {DeliveryStatus.SENT}


def _queue_text(session: Session, chat_id: int, text: str) -> None:
    person = transcript.upsert_customer(session, telegram_user_id=chat_id, first_name="Ann")
    conversation = transcript.conversation_for_chat(session, chat_id=chat_id, customer=person)
    transcript.queue_outgoing(session, conversation=conversation, text=text, update_id=None)


class HeldElsewhere:
    """Another worker is sending every chat's messages."""

    @contextlib.asynccontextmanager
    async def try_hold(self, namespace: str, key: int) -> AsyncIterator[bool]:
        yield False


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_reply_recorded_and_flushed_at_once_follows_those_waiting(outbox_world) -> None:
    outbox, control, sessions, customer = outbox_world
    await outbox.record_and_flush(customer, _queue_text, customer, "third")
    assert [call["params"]["text"] for call in await control.calls("sendMessage")] == ["first", "second", "third"]
    async with sessions() as session:
        assert await session.run_sync(transcript.outbox, customer) == []
        assert {m.status for m in await session.run_sync(transcript.messages, customer)} == {DeliveryStatus.SENT}


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_reply_recorded_while_the_chat_waits_out_a_retry_after_is_kept_for_later(outbox_world) -> None:
    outbox, control, sessions, customer = outbox_world
    await control.set_fault("429", method="sendMessage", chat_id=customer, retry_after=5)
    await outbox.flush(customer)
    await outbox.record_and_flush(customer, _queue_text, customer, "third")
    assert [call["status"] for call in await control.calls("sendMessage")] == [429]
    async with sessions() as session:
        assert [m.text for m in await session.run_sync(transcript.outbox, customer)] == ["first", "second", "third"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_reply_recorded_while_another_worker_sends_the_chat_is_left_to_it(outbox_world) -> None:
    outbox, control, sessions, customer = outbox_world
    elsewhere = Outbox(outbox._bot, sessions, shared=HeldElsewhere())
    await elsewhere.record_and_flush(customer, _queue_text, customer, "third")
    assert await control.calls("sendMessage") == []
    async with sessions() as session:
        assert [m.text for m in await session.run_sync(transcript.outbox, customer)] == ["first", "second", "third"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_retry_after_given_to_typing_holds_the_replies_back_and_typing_too(outbox_world) -> None:
    outbox, control, _, customer = outbox_world
    await control.set_fault("429", method="sendChatAction", chat_id=customer, retry_after=5)
    await outbox.chat_action(customer, "typing")
    await outbox.flush(customer)
    await outbox.chat_action(customer, "typing")
    to_the_chat = [call for call in await control.calls() if chat_of(call) == str(customer)]
    assert [(call["method"], call["status"]) for call in to_the_chat] == [("sendChatAction", 429)]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_the_reply_waits_out_a_retry_after_that_the_typing_indicator_met(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(typing_action, "TYPING_AFTER", 0.05)

    async def thinking(body: dict) -> list[dict]:  # Rasa answers once "typing…" was sent and answered (10 s at most)
        for _ in range(200):
            if any(call["method"] == "sendChatAction" for call in await harness.emulator.calls()):
                break
            await asyncio.sleep(0.05)
        return [{"text": "done"}]

    async with running_harness(tmp_path) as harness:
        harness.rasa.answer = thinking
        await harness.emulator.set_fault("429", method="sendChatAction", chat_id=harness.user_id, retry_after=2)
        assert (await harness.say("hello", timeout=10))[-1]["text"] == "done"
        calls = await harness.emulator.calls()
    assert [call["method"] for call in calls if chat_of(call) == str(harness.user_id)] == [
        "sendChatAction",
        "sendMessage",
    ]
    assert calls_too_soon(calls) == []
