"""Blocking an abusive customer, run whole: /block and /unblock through the emulator's agents' group and an agent's
private chat, with a scripted Rasa that proves it hears nothing from a blocked customer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot import replies
from bot.desk import texts as desk_texts
from bot.storage import transcript
from bot.storage.desk_models import Block
from bot.storage.models import (
    AuditEntry,
    Direction,
    Handoff,
    HandoffStatus,
    InboxStatus,
    InboxUpdate,
    Ticket,
    TicketStatus,
)
from tests.unit.chat_harness import Harness, eventually, running_harness
from tests.unit.test_desk import ALEX, BO, _agent_ready, _claimed, _handing_over, _in_group, _last, _new, _queued

MAYA = 4242


@pytest.fixture
async def desk(tmp_path) -> AsyncIterator[Harness]:
    """The app with an agents' group (Alex and Bo) and a Rasa that hands over on "I want a person"."""
    async with running_harness(tmp_path, desk=True, RELAY_MERGE_SECONDS="0.5") as running:
        running.rasa.answer = _handing_over
        yield running


async def _done(harness: Harness, update_id: int) -> bool:
    """Whether the app has finished with this update."""

    async def status() -> InboxStatus | None:
        async with harness.sessions() as session:
            row = await session.get(InboxUpdate, update_id)
            return row.status if row else None

    return await eventually(status, InboxStatus.DONE, timeout=8)


async def _send(harness: Harness, user: int, text: str, **where: int) -> None:
    """A message, once the app has handled it."""
    sent = await harness.emulator.send_text(user, text, **where)
    assert await _done(harness, sent["update_id"]), f"{text!r} was never handled"


async def _blocks(harness: Harness) -> list[Block]:
    async with harness.sessions() as session:
        return list((await session.scalars(select(Block))).all())


async def _told(harness: Harness, text: str) -> int:
    """How many times the customer's chat got this text."""
    return sum(m.get("text") == text for m in (await harness.emulator.sent(MAYA)).messages)


async def test_block_needs_a_reason(desk: Harness) -> None:
    await _claimed(desk)
    start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/block")
    [usage] = await _new(desk, ALEX, start, "Usage: /block")
    assert usage["text"] == desk_texts.BLOCK_USAGE
    assert await _blocks(desk) == []


async def test_block_in_private_closes_the_ticket_tells_once_and_nothing_reaches_rasa_or_agents(desk: Harness) -> None:
    await _claimed(desk)
    group_start, customer_start = await _last(desk, desk.group_id), await _last(desk, MAYA)
    await _send(desk, ALEX, "/block insulted the staff again and again")
    [told] = await _new(desk, MAYA, customer_start, "close this conversation")
    assert told["text"] == replies.BLOCKED
    notice = await _in_group(desk, group_start, lambda m: "⛔" in (m.get("text") or ""))
    assert "Alex blocked Maya: insulted the staff again and again" in notice["text"]
    async with desk.sessions() as session:
        handoff = await session.scalar(select(Handoff))
        ticket = await session.scalar(select(Ticket))
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "block customer"))).all()
    assert (handoff.status, handoff.resolution) == (HandoffStatus.CLOSED, "Blocked: insulted the staff again and again")
    assert handoff.followup_due_at is None, "a blocked customer gets no check the next day"
    assert ticket.status is TicketStatus.CLOSED
    assert [(a.who, a.target, a.after) for a in audit] == [
        ("Alex (agent, Telegram user 5151)", "Telegram user 4242", {"reason": "insulted the staff again and again"})
    ]
    [block] = await _blocks(desk)
    assert (block.telegram_user_id, block.blocked_by) == (MAYA, "Alex")

    asked = len(desk.rasa.received)
    agent_seen, group_seen, customer_seen = [await _last(desk, c) for c in (ALEX, desk.group_id, MAYA)]
    await _send(desk, MAYA, "you are all useless zebra")
    await _send(desk, MAYA, "I want a person")
    await _send(desk, MAYA, "/start")
    photo = await desk.emulator.send_media(MAYA, "photo", caption="look zebra")
    assert await _done(desk, photo["update_id"])
    await asyncio.sleep(0.5)  # the agents' group is flushed in the background: give it the chance to go wrong
    assert len(desk.rasa.received) == asked, "Rasa heard nothing from a blocked customer"
    assert (await desk.emulator.sent(ALEX, agent_seen)).messages == []
    assert (await desk.emulator.sent(desk.group_id, group_seen)).messages == []
    assert (await desk.emulator.sent(MAYA, customer_seen)).messages == [], "told once, and not again"
    async with desk.sessions() as session:
        said = [m.text for m in await session.run_sync(transcript.messages, MAYA) if m.direction is Direction.IN]
    assert said[-4:] == ["you are all useless zebra", "I want a person", "/start", "look zebra"], "all stored"
    assert await _told(desk, replies.BLOCKED) == 1


async def test_block_and_unblock_in_the_topic(desk: Harness) -> None:
    await desk.emulator.set_member(desk.group_id, BO, admin=True)  # an admin still writes in a closed topic
    card = await _queued(desk)
    topic = {"chat_id": desk.group_id, "message_thread_id": card["message_thread_id"]}
    group_start = await _last(desk, desk.group_id)
    await _send(desk, BO, "/block spam links", **topic)
    notice = await _in_group(desk, group_start, lambda m: "⛔" in (m.get("text") or ""))
    assert notice["message_thread_id"] == card["message_thread_id"]
    assert "Bo blocked Maya: spam links" in notice["text"]
    assert await eventually(lambda: _told(desk, replies.BLOCKED), 1)
    assert await _topic_closed(desk), "the ticket and its topic are closed"
    asked = len(desk.rasa.received)
    await _send(desk, MAYA, "buy my stuff")
    assert len(desk.rasa.received) == asked

    group_start = await _last(desk, desk.group_id)
    await _send(desk, BO, "/block again", **topic)
    [again] = await _new(desk, desk.group_id, group_start, "blocked already")
    assert again["text"] == desk_texts.ALREADY_BLOCKED.format(name="Maya", ticket="T000001")
    await _send(desk, BO, "/unblock", **topic)
    await _in_group(desk, group_start, lambda m: (m.get("text") or "").startswith("✅ Bo unblocked Maya"))
    assert await _blocks(desk) == []
    answered = await desk.say("hello again")
    assert answered[-1]["text"] == "echo: hello again", "unblocked, the bot answers again"
    assert await _told(desk, replies.BLOCKED) == 1
    async with desk.sessions() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [a.action for a in entries if "block" in a.action] == ["block customer", "unblock customer"]


async def _topic_closed(harness: Harness) -> bool:
    async def status() -> TicketStatus:
        async with harness.sessions() as session:
            return (await session.scalar(select(Ticket))).status

    return await eventually(status, TicketStatus.CLOSED)


async def test_unblock_by_ticket_number_in_the_private_chat(desk: Harness) -> None:
    card = await _queued(desk)
    await _agent_ready(desk)
    start = await _last(desk, ALEX)
    await _send(desk, ALEX, "/unblock T000001")
    [answer] = await _new(desk, ALEX, start, "not blocked")
    assert answer["text"] == desk_texts.NOT_BLOCKED.format(name="Maya")
    await _send(desk, BO, "/block threats", chat_id=desk.group_id, message_thread_id=card["message_thread_id"])
    start = await _last(desk, ALEX)
    await _send(desk, ALEX, "/unblock")
    [usage] = await _new(desk, ALEX, start, "Usage: /unblock")
    assert usage["text"] == desk_texts.UNBLOCK_USAGE
    await _send(desk, ALEX, "/unblock t1")
    [done] = await _new(desk, ALEX, usage["seq"], "is unblocked")
    assert done["text"] == desk_texts.UNBLOCKED.format(name="Maya", ticket="T000001")
    assert await _blocks(desk) == []
    async with desk.sessions() as session:
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "unblock customer"))).all()
    assert entry.who == "Alex (agent, Telegram user 5151)"


async def test_with_several_customers_the_agent_replies_to_choose_or_is_asked(desk: Harness) -> None:
    await _claimed(desk)
    await desk.emulator.add_user("Noor", user_id=4343)
    group_start = await _last(desk, desk.group_id)
    await desk.emulator.send_text(4343, "I want a person")
    card = await _in_group(desk, group_start, lambda m: "🎫" in (m.get("text") or "") and "Noor" in m["text"])
    start = await _last(desk, ALEX)
    pressed = await desk.emulator.press(ALEX, card["message_id"], _claim_data(card), chat_id=desk.group_id)
    assert pressed
    [intro] = await _new(desk, ALEX, start, "You're now talking with Noor")
    start = await _last(desk, ALEX)
    await _send(desk, ALEX, "/block threats")
    [asked] = await _new(desk, ALEX, start, "Reply to one of their messages")
    assert asked["text"] == desk_texts.WHICH_CUSTOMER.format(count=2)
    assert await _blocks(desk) == []
    await _send(desk, ALEX, "/block threats", reply_to_message_id=intro["message_id"])
    [block] = await _blocks(desk)
    assert (block.telegram_user_id, block.reason) == (4343, "threats"), "the customer replied to, not Maya"


def _claim_data(card: dict) -> str:
    return next(b for row in card["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Claim")[
        "callback_data"
    ]


async def test_mydata_shows_the_block_and_forget_does_not_lift_it(desk: Harness) -> None:
    card = await _queued(desk)
    topic = {"chat_id": desk.group_id, "message_thread_id": card["message_thread_id"]}
    await _send(desk, BO, "/block abuse", **topic)
    start = await _last(desk, MAYA)
    await desk.emulator.send_text(MAYA, "/mydata")
    [export] = await _new(desk, MAYA, start, "everything we store")
    content = json.loads(await desk.emulator.file_content(export["file"]["file_id"]))
    assert content["block"]["reason"] == "abuse"
    start = await _last(desk, MAYA)
    await desk.emulator.send_text(MAYA, "/forget")
    [confirm] = await _new(desk, MAYA, start, "Shall I delete")
    yes = next(b for row in confirm["reply_markup"]["inline_keyboard"] for b in row if b["text"] == replies.FORGET_YES)
    await desk.emulator.press(MAYA, confirm["message_id"], yes["callback_data"])
    await _new(desk, MAYA, confirm["seq"], "I've deleted your data")
    assert [b.telegram_user_id for b in await _blocks(desk)] == [MAYA], "forgetting is no way around a block"
    asked, seen = len(desk.rasa.received), await _last(desk, MAYA)
    await _send(desk, MAYA, "hello, it's me again")
    assert len(desk.rasa.received) == asked
    assert (await desk.emulator.sent(MAYA, seen)).messages == []


async def test_a_request_rasa_answers_after_the_block_asks_no_one(desk: Harness) -> None:
    card = await _queued(desk)
    await _send(desk, MAYA, "/cancel")  # back with the bot; the ticket and its topic stay open
    answering, release = asyncio.Event(), asyncio.Event()

    async def slow(body: dict) -> list[dict]:
        if body["message"] == "I want a person":
            answering.set()
            await release.wait()
        return _handing_over(body)

    desk.rasa.answer = slow
    asked = await desk.emulator.send_text(MAYA, "I want a person")
    await asyncio.wait_for(answering.wait(), 8)
    await _send(desk, BO, "/block abuse", chat_id=desk.group_id, message_thread_id=card["message_thread_id"])
    release.set()
    assert await _done(desk, asked["update_id"])
    async with desk.sessions() as session:
        statuses = [h.status for h in (await session.scalars(select(Handoff).order_by(Handoff.id))).all()]
    assert statuses == [HandoffStatus.CANCELLED], "a blocked customer is not queued for the team"
