"""Queue, presence and assignment run whole (the app, the emulator's agents' group, a scripted Rasa): /online and
/away, away after AWAY_AFTER_MINUTES idle, AUTO_ASSIGN's card in the agent's private chat at once and Pass, offers to
one online agent at a time, /next and /queue; and the claim that wins exactly once, however many agents press, in
their private chats and in the topic (a property)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot import replies
from bot.desk import round as desk_round
from bot.desk import texts
from bot.storage.models import Agent, Handoff, HandoffStatus, Ticket, TicketPriority
from bot.telegram import outbox as outbox_module
from tests.unit.chat_harness import Harness, callback_answer, running_harness

T = TypeVar("T")
ALEX, BO, CY = 5151, 5252, 5353
TRIGGER = "I want a person"


def _rasa(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body["message"] == TRIGGER:
        handoff = {"reason": "customer_request", "ticket_id": None, "collected": {}, "intents": [], "message": ""}
        return [{"text": "I'm bringing in a person."}, {"custom": {"handoff": handoff}}]
    return [{"text": f"echo: {body['message']}"}]


@pytest.fixture(autouse=True)
def quick_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(desk_round, "ROUND_SECONDS", 0.2)


async def _desk(tmp_path: Path, **env: str) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, desk=True, TELEGRAM_GROUP_RATE="0", TELEGRAM_RATE="0", **env) as running:
        running.rasa.answer = _rasa
        await running.emulator.set_limits(enabled=False)
        yield running


@pytest.fixture
async def auto(tmp_path: Path) -> AsyncIterator[Harness]:
    async for running in _desk(tmp_path, AUTO_ASSIGN="1", MAX_CHATS_PER_AGENT="1"):
        yield running


@pytest.fixture
async def offering(tmp_path: Path) -> AsyncIterator[Harness]:
    async for running in _desk(tmp_path, OFFER_SECONDS="1"):
        yield running


async def _said(harness: Harness, chat_id: int, needle: str, after: int = 0, timeout: float = 10) -> dict:
    found = await harness.emulator.wait_for_text(chat_id, after, predicate=lambda t: needle in t, timeout=timeout)
    return next(m for m in found if needle in (m.get("text") or ""))


async def _command(harness: Harness, user: int, text: str, needle: str) -> dict:
    after = (await harness.emulator.sent(user)).last
    await harness.emulator.send_text(user, text)
    return await _said(harness, user, needle, after)


async def _online(harness: Harness, *users: int) -> None:
    for user in users:
        await _command(harness, user, "/start", "You're set up as an agent")
        await _command(harness, user, "/online", "You're online")


async def _ask(harness: Harness, user: int = 4242) -> int:
    after = (await harness.emulator.sent(user)).last
    await harness.emulator.send_text(user, TRIGGER)
    return after


def _button(message: dict, title: str) -> str:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return next(b["callback_data"] for row in rows for b in row if b["text"] == title)


async def _press(harness: Harness, user: int, message: dict, title: str) -> dict:
    pressed = await harness.emulator.press(
        user, message["message_id"], _button(message, title), chat_id=message["chat_id"]
    )
    return (await callback_answer(harness, pressed["callback_query_id"]))["answer"]


async def test_online_and_away_and_away_by_itself_after_a_while(tmp_path: Path, clock: Any) -> None:
    async for desk in _desk(tmp_path, AWAY_AFTER_MINUTES="30"):
        await _online(desk, ALEX)
        told = await _command(desk, ALEX, "/away", "You're away")
        assert told["text"] == texts.AWAY
        await _command(desk, ALEX, "/online", "You're online")
        after = (await desk.emulator.sent(ALEX)).last
        clock.advance(timedelta(minutes=31))
        told = await _said(desk, ALEX, "without activity", after, timeout=30)
        assert told["text"] == texts.AWAY_AUTO.format(minutes="30")
        async with desk.sessions() as session:
            assert not (await session.scalar(select(Agent).where(Agent.telegram_user_id == ALEX))).online


async def test_auto_assignment_sends_the_card_to_the_agent_at_once_and_pass_hands_it_on(auto: Harness) -> None:
    await _online(auto, ALEX, BO)
    after = await _ask(auto)
    card = await _said(auto, ALEX, "Assigned to you")
    assert card["text"].startswith("🎫 Assigned to you: Maya")
    assert "You're now talking with Maya" in card["text"], "one message: the card and the conversation so far"
    await _said(auto, 4242, "this is Alex", after)
    assert not [m for m in (await auto.emulator.sent(4242, after)).messages if "in line" in (m.get("text") or "")]
    topic_card = await _said(auto, auto.group_id, "With Alex")
    assert "Claim" not in str(topic_card.get("reply_markup")), "the topic's card says who got it"

    customer_after = (await auto.emulator.sent(4242)).last
    answer = await _press(auto, ALEX, card, "Pass")
    assert not answer.get("text")
    bo_card = await _said(auto, BO, "Assigned to you")
    assert "Maya" in bo_card["text"]
    await _said(auto, 4242, replies.TRANSFERRED.format(agent="Bo"), customer_after)
    await _said(auto, ALEX, "now with Bo")

    # Bo passes too: Alex had it already, so it waits in the queue (not straight back to Alex).
    await _command(auto, BO, "/pass", "back in the queue")
    async with auto.sessions() as session:
        handoff = await session.scalar(select(Handoff))
        assert (handoff.status, handoff.agent_id) == (HandoffStatus.QUEUED, None)
    told = await _command(auto, ALEX, "/next", "You claimed")
    assert "Maya" in told["text"]


async def test_an_agents_cards_come_one_a_second_when_telegram_allows_no_burst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "RETRY_INTERVAL", 60.0)  # no retry round to lean on: the wait's end resumes
    async for desk in _desk(tmp_path, AUTO_ASSIGN="1", MAX_CHATS_PER_AGENT="3"):
        await _online(desk, ALEX)
        await desk.emulator.set_limits(enabled=True, private_burst=1)
        after = (await desk.emulator.sent(ALEX)).last
        for user, name in ((4242, None), (4343, "Noor"), (4444, "Kim")):
            if name:
                await desk.emulator.add_user(name, user_id=user)
            await _ask(desk, user)
        deadline = time.monotonic() + 8
        cards: list[dict] = []
        while time.monotonic() < deadline and len(cards) < 3:
            sent = (await desk.emulator.sent(ALEX, after, wait=0.5)).messages
            cards = [m for m in sent if (m.get("text") or "").startswith("🎫 Assigned to you")]
        assert len(cards) == 3, "every card reached the agent's chat, Telegram's pace kept"
        gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(cards)]
        assert all(gap >= 0.9 for gap in gaps), gaps


async def test_a_request_waits_when_everyone_is_full_and_goes_to_whoever_frees_up(auto: Harness) -> None:
    await _online(auto, ALEX)
    await _ask(auto)
    first = await _said(auto, ALEX, "Assigned to you")
    await auto.emulator.add_user("Noor", user_id=4343)
    after = await _ask(auto, 4343)
    await _said(auto, 4343, "number 1 in line", after)
    await _press(auto, ALEX, first, "Close")
    second = await _said(auto, ALEX, "Assigned to you: Noor", timeout=15)
    assert second["text"].startswith("🎫 Assigned to you: Noor")


async def test_without_auto_assignment_one_online_agent_at_a_time_is_offered_the_card(offering: Harness) -> None:
    await _online(offering, ALEX, BO)
    await _ask(offering)
    first = await _said(offering, ALEX, "🎫 Maya is waiting")
    assert _button(first, "Claim")
    assert not [m for m in (await offering.emulator.sent(BO)).messages if "🎫 Maya is waiting" in (m.get("text") or "")]
    second = await _said(offering, BO, "🎫 Maya is waiting", timeout=15)  # nobody claimed within OFFER_SECONDS
    assert not (await _press(offering, BO, second, "Claim")).get("text")
    late = await _press(offering, ALEX, first, "Claim")
    assert late["text"] == texts.ALREADY_CLAIMED.format(agent="Bo")
    await asyncio.sleep(2.5)  # a few rounds: the card is not sent again to anyone
    for agent in (ALEX, BO):
        cards = [
            m for m in (await offering.emulator.sent(agent)).messages if "🎫 Maya is waiting" in (m.get("text") or "")
        ]
        assert len(cards) == 1


async def test_queue_shows_priority_and_next_claims_the_most_urgent(offering: Harness) -> None:
    await offering.emulator.add_user("Noor", user_id=4343)
    await _said(offering, 4242, "in line", await _ask(offering))
    await _said(offering, 4343, "in line", await _ask(offering, 4343))
    async with offering.sessions.begin() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.id == 2))
        ticket.priority = TicketPriority.URGENT
    await _command(offering, ALEX, "/start", "You're set up")
    listed = await _command(offering, ALEX, "/queue", "1. ")
    lines = listed["text"].splitlines()
    assert lines[0].startswith("1. T000002 · urgent · Noor") and lines[1].startswith("2. T000001 · normal · Maya")
    claimed = await _command(offering, ALEX, "/next", "You claimed")
    assert "T000002" in claimed["text"]
    await _said(offering, 4343, "this is Alex")


# --- a claim wins exactly once --------------------------------------------------------------------------------


class World:
    """The app with three online agents, offers moving on every OFFER_SECONDS, driven from synchronous hypothesis."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._running = running_harness(
            tmp_path,
            desk=True,
            TELEGRAM_GROUP_RATE="0",
            TELEGRAM_RATE="0",
            OFFER_SECONDS="0.3",
            RELAY_MERGE_SECONDS="0.1",
        )
        self.harness: Harness = self.run(self._running.__aenter__())
        self.harness.rasa.answer = _rasa
        self.run(self._setup())
        self._users = itertools.count(8_100_001)

    async def _setup(self) -> None:
        emulator = self.harness.emulator
        await emulator.set_limits(enabled=False)
        await emulator.add_user("Cy", user_id=CY)
        await emulator.set_member(self.harness.group_id, CY)
        await _online(self.harness, ALEX, BO, CY)

    def run(self, step: Awaitable[T], timeout: float = 120) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(step, timeout))

    def close(self) -> None:
        self.run(self._running.__aexit__(None, None, None))
        self.loop.close()

    async def cards(self, name: str, timeout: float = 20) -> dict[Any, dict]:
        """The customer's card in each agent's private chat (each is offered it in turn) and in the topic."""
        found: dict[Any, dict] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(found) < 4:
            for chat in (ALEX, BO, CY, self.harness.group_id):
                for message in (await self.harness.emulator.sent(chat)).messages:
                    text = message.get("text") or ""
                    offered = chat != self.harness.group_id and text.startswith(f"🎫 {name}")
                    if (offered or (chat == self.harness.group_id and name in text and "🎫" in text)) and _has(
                        message, "Claim"
                    ):
                        found[chat] = message
            await asyncio.sleep(0.05)
        assert len(found) == 4, f"cards reached {sorted(map(str, found))} only"
        return found

    async def play(self, presses: list[tuple[int, bool]], together: bool) -> None:
        emulator = self.harness.emulator
        user = (await emulator.add_user(f"Robin{next(self._users)}", user_id=next(self._users)))["id"]
        name = f"Robin{user - 1}"
        customer_after = (await emulator.sent(user)).last
        await emulator.send_text(user, TRIGGER)
        cards = await self.cards(name)
        agents = (ALEX, BO, CY)
        starts = {agent: (await emulator.sent(agent)).last for agent in agents}

        async def press(agent: int, in_topic: bool) -> tuple[int, str | None]:
            card = cards[self.harness.group_id if in_topic else agent]
            pressed = await emulator.press(agent, card["message_id"], _button(card, "Claim"), chat_id=card["chat_id"])
            answer = await callback_answer(self.harness, pressed["callback_query_id"])
            return agent, answer["answer"].get("text")

        chosen = [(agents[a % 3], in_topic) for a, in_topic in presses]
        if together:
            answers = await asyncio.gather(*(press(a, t) for a, t in chosen))
        else:
            answers = [await press(a, t) for a, t in chosen]
        winners = [agent for agent, text in answers if not text]
        assert len(winners) == 1, f"exactly one claim wins: {answers}"
        winner = winners[0]
        winner_name = {ALEX: "Alex", BO: "Bo", CY: "Cy"}[winner]
        assert all(text == texts.ALREADY_CLAIMED.format(agent=winner_name) for _, text in answers if text)
        await _said(self.harness, user, f"this is {winner_name}", customer_after)
        await _said(self.harness, winner, f"You're now talking with {name}", starts[winner])
        await asyncio.sleep(0.5)
        told = [m for m in (await emulator.sent(user, customer_after)).messages if "this is" in (m.get("text") or "")]
        assert len(told) == 1, "the customer is introduced once"
        for agent in agents:
            intros = [
                m
                for m in (await emulator.sent(agent, starts[agent])).messages
                if (m.get("text") or "").startswith(f"You're now talking with {name}")
            ]
            assert len(intros) == (1 if agent == winner else 0)
        async with self.harness.sessions() as session:
            handoff = await session.scalar(select(Handoff).order_by(Handoff.id.desc()))
            assert handoff.status is HandoffStatus.CLAIMED
        # The agent closes it, so the next example starts with everyone free.
        await _command(self.harness, winner, "/close done", "Closed")


def _has(message: dict, title: str) -> bool:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return any(b["text"] == title for row in rows for b in row)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    made = World(tmp_path_factory.mktemp("claim_once"))
    yield made
    made.close()


@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    presses=st.lists(st.tuples(st.integers(min_value=0, max_value=2), st.booleans()), min_size=2, max_size=8),
    together=st.booleans(),
)
def test_a_claim_wins_exactly_once_however_many_agents_press(
    world: World, presses: list[tuple[int, bool]], together: bool
) -> None:
    world.run(world.play(presses, together))


async def test_every_command_is_answered_when_telegram_asks_the_agents_chat_to_slow_down(tmp_path: Path) -> None:
    """Commands in quick succession with no burst allowance: each answer waits the time Telegram names, none lost."""
    async for desk in _desk(tmp_path):
        await _online(desk, ALEX)
        await desk.emulator.set_limits(enabled=True, private_burst=1)
        after = (await desk.emulator.sent(ALEX)).last
        for command in ("/away", "/online", "/away"):
            await desk.emulator.send_text(ALEX, command)
        deadline = time.monotonic() + 10
        answers: list[str] = []
        while time.monotonic() < deadline and len(answers) < 3:
            sent = (await desk.emulator.sent(ALEX, after, wait=0.5)).messages
            answers = [m["text"] for m in sent if (m.get("text") or "").startswith(("🌙", "🟢"))]
        assert answers == [texts.AWAY, texts.ONLINE.format(limit="", minutes="30"), texts.AWAY]
