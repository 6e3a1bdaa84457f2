"""The promise of /block as a property, run whole (app, emulator, scripted Rasa): for any sequence of a customer's
messages around blocks and unblocks made in their ticket's topic, nothing sent while blocked reaches Rasa or an agent,
everything is stored, everything else reaches the bot or the team, and the customer is told exactly once per block."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot import replies
from bot.storage.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    InboxStatus,
    InboxUpdate,
    Message,
    Ticket,
)
from tests.unit.chat_harness import Harness, running_harness

T = TypeVar("T")
BO = 5252  # an agent and admin of the agents' group (an admin still writes in a closed topic)
ALEX = 5151
TRIGGER = "I want a person"
EXAMPLES = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = ("hello", "you are useless", "refund now", "¿dónde está?", "🙂", "spam spam spam")
steps = st.lists(
    st.one_of(st.just(("toggle", "")), st.tuples(st.just("say"), st.sampled_from(WORDS))), min_size=1, max_size=8
)


class World:
    """The app, emulator and scripted Rasa, in an event loop driven from synchronous hypothesis tests."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._running = running_harness(
            tmp_path, desk=True, TELEGRAM_GROUP_RATE="0", TELEGRAM_RATE="0", RELAY_MERGE_SECONDS="0.1"
        )
        self.harness: Harness = self.run(self._running.__aenter__())
        self.harness.rasa.answer = self._rasa
        self.run(self.harness.emulator.set_limits(enabled=False))
        self.run(self.harness.emulator.set_member(self.harness.group_id, BO, admin=True))
        self._users = itertools.count(8_000_001)

    def run(self, step: Awaitable[T], timeout: float = 120) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(step, timeout))

    def close(self) -> None:
        self.run(self._running.__aexit__(None, None, None))
        self.loop.close()

    @staticmethod
    def _rasa(body: dict[str, Any]) -> list[dict[str, Any]]:
        if body["message"] == TRIGGER:
            handoff = {"reason": "customer_request", "ticket_id": None, "collected": {}, "intents": [], "message": ""}
            return [{"text": "I'm bringing in a person."}, {"custom": {"handoff": handoff}}]
        return [{"text": f"echo: {body['message']}"}]

    async def _handled(self, update_id: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.harness.sessions() as session:
                row = await session.get(InboxUpdate, update_id)
                if row is not None and row.status is InboxStatus.DONE:
                    return
            await asyncio.sleep(0.02)
        raise AssertionError(f"update {update_id} was never handled")

    async def _send(self, user: int, text: str, **where: int) -> None:
        await self._handled((await self.harness.emulator.send_text(user, text, **where))["update_id"])

    async def _topic(self, user: int, timeout: float = 20) -> int:
        """The forum topic of the customer's ticket, once the card has opened it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.harness.sessions() as session:
                topic = await session.scalar(
                    select(Ticket.topic_id).join(Conversation).where(Conversation.chat_id == user)
                )
            if topic:
                return topic
            await asyncio.sleep(0.05)
        raise AssertionError("the ticket's topic was never opened")

    async def _drained(self, user: int, timeout: float = 30) -> None:
        """Everything recorded for this customer's conversation (in any chat) has been delivered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.harness.sessions() as session:
                pending = await session.scalar(
                    select(func.count())
                    .select_from(Message)
                    .join(Conversation)
                    .where(Conversation.chat_id == user, Message.status == DeliveryStatus.PENDING)
                )
            if not pending:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("messages were never delivered")

    async def play(self, script: list[tuple[str, str]]) -> tuple[int, list[tuple[str, bool]], int]:
        """A customer asks for a person, then follows the script while Bo blocks and unblocks them in the ticket's
        topic; their id, each message with whether they were blocked when they sent it, and how many blocks."""
        emulator = self.harness.emulator
        user = (await emulator.add_user("Robin", user_id=next(self._users)))["id"]
        await self._send(user, TRIGGER)
        where = {"chat_id": self.harness.group_id, "message_thread_id": await self._topic(user)}
        blocked, blocks, said = False, 0, []
        for number, (kind, word) in enumerate(script):
            if kind == "toggle":
                await self._send(BO, "/unblock" if blocked else f"/block reason {number}", **where)
                blocked, blocks = not blocked, blocks + (not blocked)
                continue
            text = f"#{user}.{number}# {word}"
            await self._send(user, text)
            said.append((text, blocked))
        await self._drained(user)
        await asyncio.sleep(0.2)  # a last look for anything on its way that should not be
        return user, said, blocks

    async def seen(self, user: int) -> tuple[list[str], list[str], list[str], list[str]]:
        """What Rasa heard from the customer, what the agents' chats got, what the customer got, what was stored."""
        heard = [b["message"] for b in self.harness.rasa.received if b["sender"] == f"tg-{user}"]
        agents = [
            m.get("text") or m.get("caption") or ""
            for chat in (self.harness.group_id, ALEX, BO)
            for m in (await self.harness.emulator.sent(chat)).messages
        ]
        told = [m.get("text") or "" for m in (await self.harness.emulator.sent(user)).messages]
        async with self.harness.sessions() as session:
            stored = (
                await session.scalars(
                    select(Message.text)
                    .join(Conversation)
                    .where(Conversation.chat_id == user, Message.direction == Direction.IN)
                )
            ).all()
        return heard, agents, told, list(stored)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    running = World(tmp_path_factory.mktemp("blocking"))
    try:
        yield running
    finally:
        running.close()


@EXAMPLES
@given(script=steps)
def test_nothing_a_blocked_customer_sends_reaches_rasa_or_an_agent(world: World, script: list) -> None:
    user, said, blocks = world.run(world.play(script))
    heard, agents, told, stored = world.run(world.seen(user))
    for text, blocked in said:
        tag = text.split(" ")[0]
        assert text in stored, "every message is stored, blocked or not"
        reached_rasa = any(tag in h for h in heard)
        reached_agents = any(tag in a for a in agents)
        if blocked:
            assert not reached_rasa, f"Rasa heard {text!r}, sent while blocked"
            assert not reached_agents, f"an agent saw {text!r}, sent while blocked"
        else:
            assert reached_rasa or reached_agents, f"{text!r}, sent while not blocked, reached no one"
    assert told.count(replies.BLOCKED) == blocks, "told exactly once per block"
