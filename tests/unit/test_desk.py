"""The agent desk, run whole: the app against the emulator's agents' forum group and a scripted Rasa."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot import replies
from bot.desk import texts as desk_texts
from bot.storage import tickets, transcript
from bot.storage.models import (
    Conversation,
    ConversationState,
    Direction,
    Handoff,
    HandoffStatus,
    Promise,
    Ticket,
    TicketPriority,
    TicketStatus,
    utcnow,
)
from tests.unit.chat_harness import Harness, callback_answer, eventually, running_harness

ALEX, BO = 5151, 5252
HANDOFF = {
    "handoff": {
        "reason": "customer_request",
        "ticket_id": None,
        "message": "I want a person",
        "collected": {"order_number": "A12345", "complaint_description": "The lamp came broken"},
        "intents": [{"name": "complain", "confidence": 0.91}, {"name": "request_human", "confidence": 0.97}],
    }
}

# The first in line with no history yet: the stated default for one person (WAIT_DEFAULT_MINUTES_PER_PERSON, 5).
FIRST_WAIT = replies.HANDOFF_WAIT.format(wait="about 5 minutes")


def _handing_over(body: dict) -> list[dict]:
    if body["message"] == "I want a person":
        return [{"text": "Of course, I'm bringing in a person."}, {"custom": HANDOFF}]
    return [{"text": f"echo: {body['message']}"}]


@pytest.fixture
async def desk(tmp_path) -> AsyncIterator[Harness]:
    """The app with an agents' group (Alex and Bo are members) and a Rasa that hands over on "I want a person"; a
    waiting customer's messages reach the group within half a second of each other (test_desk_fairness.py has
    the pacing)."""
    async with running_harness(tmp_path, desk=True, RELAY_MERGE_SECONDS="0.5") as running:
        running.rasa.answer = _handing_over
        yield running


@pytest.fixture
async def closed_desk(tmp_path) -> AsyncIterator[Harness]:
    """The same, with the team never at work."""
    async with running_harness(
        tmp_path, desk=True, BUSINESS_HOURS="Sun 00:00-00:01", BUSINESS_TIMEZONE="Europe/London"
    ) as running:
        running.rasa.answer = _handing_over
        yield running


@pytest.fixture
async def eager_desk(tmp_path) -> AsyncIterator[Harness]:
    """The same, re-announcing a waiting customer after 3 seconds."""
    async with running_harness(tmp_path, desk=True, REANNOUNCE_MINUTES="0.05") as running:
        running.rasa.answer = _handing_over
        yield running


async def _new(harness: Harness, chat_id: int, after: int, until: str, timeout: float = 8) -> list[dict]:
    return await harness.emulator.wait_for_text(chat_id, after, predicate=lambda t: until in t, timeout=timeout)


async def _last(harness: Harness, chat_id: int) -> int:
    return (await harness.emulator.sent(chat_id)).last


async def _press(harness: Harness, user: int, message: dict, title: str) -> dict:
    button = next(b for row in message["reply_markup"]["inline_keyboard"] for b in row if b["text"] == title)
    pressed = await harness.emulator.press(
        user, message["message_id"], button["callback_data"], chat_id=message["chat_id"]
    )
    return await callback_answer(harness, pressed["callback_query_id"])


async def _queued(harness: Harness) -> dict:
    """The customer asks for a person; returns the card posted in the ticket's new topic."""
    group_start = await _last(harness, harness.group_id)
    messages = await harness.say("I want a person")
    assert messages[-1]["text"].startswith("Of course")
    told = await _new(harness, 4242, messages[-1]["seq"] - 1, "number 1 in line")
    assert told[-1]["text"] == replies.HANDOFF_QUEUED.format(position=1, wait=FIRST_WAIT)
    [card] = [m for m in await _new(harness, harness.group_id, group_start, "🎫") if "🎫" in (m.get("text") or "")]
    return card


async def _in_group(harness: Harness, after: int, matches: Callable[[dict], bool], timeout: float = 8) -> dict:
    """The first message in the agents' group after `after` that matches, once it is there."""
    for _ in range(int(timeout / 0.05)):
        found = [m for m in (await harness.emulator.sent(harness.group_id, after)).messages if matches(m)]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no such message in the agents' group")


async def _calls(harness: Harness, method: str, timeout: float = 8) -> list[dict]:
    """The emulator's log of a Bot API method, once there is any."""
    for _ in range(int(timeout / 0.05)):
        if found := await harness.emulator.calls(method):
            return found
        await asyncio.sleep(0.05)
    return []


async def _agent_ready(harness: Harness, user: int = ALEX) -> None:
    after = await _last(harness, user)
    await harness.emulator.send_text(user, "/start")
    await _new(harness, user, after, "You're set up as an agent")


async def _claimed(harness: Harness) -> dict:
    card = await _queued(harness)
    await _agent_ready(harness)
    customer_start, agent_start = await _last(harness, 4242), await _last(harness, ALEX)
    await _press(harness, ALEX, card, "Claim")
    await _new(harness, 4242, customer_start, "this is Alex")
    [intro] = await _new(harness, ALEX, agent_start, "You're now talking with Maya")
    return intro


async def test_a_request_for_a_person_queues_the_customer_and_posts_the_card(desk: Harness) -> None:
    card = await _queued(desk)
    text = card["text"]
    assert card["message_thread_id"], "the card opens the ticket's own topic"
    assert "T000001 · Maya" in text and "asked for a person" in text
    assert "Order: A12345" in text and "What happened: The lamp came broken" in text
    assert "request_human 0.97" in text and "Maya: I want a person" in text
    assert [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row] == ["Claim"]
    async with desk.sessions() as session:
        conversation = await session.run_sync(transcript.find_conversation, 4242)
        [handoff] = (await session.scalars(select(Handoff))).all()
    assert conversation.state is ConversationState.QUEUED
    assert (handoff.reason, handoff.status) == ("customer_request", HandoffStatus.QUEUED)


async def test_while_queued_the_bot_is_silent_and_messages_reach_the_topic(desk: Harness) -> None:
    card = await _queued(desk)
    asked = len(desk.rasa.received)
    group_start = await _last(desk, desk.group_id)
    await desk.emulator.send_text(4242, "it's the blue lamp, order A12345")
    [relayed] = await _new(desk, desk.group_id, group_start, "blue lamp")
    assert relayed["message_thread_id"] == card["message_thread_id"]
    assert relayed["text"].startswith("💬 Maya · T000001")
    customer_seen = await _last(desk, 4242)
    await desk.emulator.send_text(4242, "I want a person")
    await _new(desk, desk.group_id, relayed["seq"], "I want a person")
    assert len(desk.rasa.received) == asked, "nothing reached Rasa while waiting for a person"
    assert (await desk.emulator.sent(4242, customer_seen)).messages == [], "the bot stays silent"


async def test_claiming_needs_a_private_chat_then_connects_agent_and_customer(desk: Harness) -> None:
    card = await _queued(desk)
    answer = await _press(desk, ALEX, card, "Claim")
    assert answer["answer"]["text"] == desk_texts.START_PRIVATE_FIRST
    await _agent_ready(desk)
    customer_start, group_start = await _last(desk, 4242), await _last(desk, desk.group_id)
    await _press(desk, ALEX, card, "Claim")
    [hello] = await _new(desk, 4242, customer_start, "this is Alex")
    assert hello["text"] == replies.CLAIMED.format(agent="Alex")
    await _new(desk, desk.group_id, group_start, "Claimed by Alex")
    await _agent_ready(desk, BO)
    answer = await _press(desk, BO, card, "Claim")
    assert answer["answer"]["text"] == desk_texts.ALREADY_CLAIMED.format(agent="Alex")


async def test_the_live_conversation_runs_in_the_agents_private_chat_and_is_recorded(desk: Harness) -> None:
    await _claimed(desk)
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(4242, "hello? is anyone there")
    [relayed] = await _new(desk, ALEX, agent_start, "anyone there")
    assert relayed["text"] == "💬 Maya · T000001\nhello? is anyone there"
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(
        ALEX, "Yes, I'm here. A new lamp is on its way.", reply_to_message_id=relayed["message_id"]
    )
    [reply] = await _new(desk, 4242, customer_start, "new lamp")
    assert reply["text"] == "Alex: Yes, I'm here. A new lamp is on its way."
    await desk.emulator.send_media(4242, "photo", caption="this is the lamp")
    copied = await _new(desk, ALEX, relayed["seq"], "this is the lamp")
    assert copied[-1]["method"] == "copyMessage"
    async with desk.sessions() as session:
        lines = [(m.direction, m.kind, m.text) for m in await session.run_sync(transcript.messages, 4242)]
        handoff = await session.scalar(select(Handoff))
    assert (Direction.OUT, "agent", "Alex: Yes, I'm here. A new lamp is on its way.") in lines
    assert handoff.first_reply_at is not None and handoff.claimed_at is not None


async def test_an_agent_with_two_customers_must_say_whom_a_message_is_for(desk: Harness) -> None:
    await _claimed(desk)
    await desk.emulator.add_user("Noor", user_id=4343)
    group_start = await _last(desk, desk.group_id)
    await desk.emulator.send_text(4343, "I want a person")
    cards = await _new(desk, desk.group_id, group_start, "Noor")
    card = next(m for m in cards if "🎫" in m["text"])
    await _press(desk, ALEX, card, "Claim")
    await _new(desk, 4343, 0, "this is Alex")
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "Hello!")
    [which] = await _new(desk, ALEX, agent_start, "You're helping 2 customers")
    assert which["text"] == desk_texts.WHICH_CUSTOMER.format(count=2)
    await desk.emulator.send_text(4343, "my order is late")
    [relayed] = await _new(desk, ALEX, which["seq"], "my order is late")
    noor_start, maya_start = await _last(desk, 4343), await _last(desk, 4242)
    await desk.emulator.send_text(ALEX, "Let me check, Noor.", reply_to_message_id=relayed["message_id"])
    await _new(desk, 4343, noor_start, "Let me check, Noor.")
    assert not [m for m in (await desk.emulator.sent(4242, maya_start)).messages if "Noor" in (m.get("text") or "")]


async def test_closing_asks_for_a_rating_takes_a_comment_and_hands_back_to_the_bot(desk: Harness) -> None:
    await _claimed(desk)
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(ALEX, "/close replacement sent")
    closing = await _new(desk, 4242, customer_start, "How did we do?")
    assert closing[0]["text"] == replies.CLOSED.format(agent="Alex")
    assert ("tg-4242", [{"event": "resume"}, {"event": "restart"}]) in desk.rasa.appended
    await _press(desk, 4242, closing[-1], "5")
    await _new(desk, 4242, closing[-1]["seq"], "rating us 5 out of 5")
    await desk.say("Alex was great, thanks")
    async with desk.sessions() as session:
        handoff = await session.scalar(select(Handoff))
        ticket = await session.scalar(select(Ticket))
        conversation = await session.run_sync(transcript.find_conversation, 4242)
    assert (handoff.status, handoff.resolution, handoff.csat, handoff.csat_comment) == (
        HandoffStatus.CLOSED,
        "replacement sent",
        5,
        "Alex was great, thanks",
    )
    assert handoff.followup_due_at is not None and ticket.status is TicketStatus.RESOLVED
    assert conversation.state is ConversationState.BOT
    messages = await desk.say("where is my parcel")
    assert messages[-1]["text"] == "echo: where is my parcel", "the bot answers again"


async def test_the_next_day_check_is_sent_once_and_can_bring_a_person_back(desk: Harness) -> None:
    await _claimed(desk)
    await desk.emulator.send_text(ALEX, "/close sorted")
    await _new(desk, 4242, 0, "How did we do?")
    async with desk.sessions.begin() as session:
        await session.execute(update(Handoff).values(followup_due_at=utcnow() - timedelta(minutes=1)))
    check = (await _new(desk, 4242, 0, "yesterday our team helped you"))[-1]
    assert check["text"] == replies.FOLLOWUP.format(name="Maya", ticket="T000001")
    await _press(desk, 4242, check, replies.FOLLOWUP_HELP)
    await _new(desk, 4242, check["seq"], "number 1 in line")
    async with desk.sessions() as session:
        handoffs = (await session.scalars(select(Handoff).order_by(Handoff.id))).all()
        sent = [m for m in await session.run_sync(transcript.messages, 4242) if "yesterday our team" in m.text]
    assert [h.reason for h in handoffs] == ["customer_request", "followup"]
    assert handoffs[1].ticket_id == handoffs[0].ticket_id, "the same ticket comes back"
    assert len(sent) == 1


async def test_cancel_leaves_the_queue_and_the_ticket_stays(desk: Harness) -> None:
    await _queued(desk)
    messages = await desk.say("/cancel")
    assert messages[-1]["text"] == replies.CANCELLED.format(ticket="T000001")
    assert ("tg-4242", [{"event": "resume"}, {"event": "restart"}]) in desk.rasa.appended
    messages = await desk.say("/cancel")
    assert messages[-1]["text"] == replies.NOTHING_TO_CANCEL
    async with desk.sessions() as session:
        ticket = await session.scalar(select(Ticket))
    assert ticket.status is TicketStatus.OPEN


async def test_rasa_down_hands_the_customer_to_a_person(desk: Harness) -> None:
    desk.rasa.answer = lambda body: []
    group_start = await _last(desk, desk.group_id)
    messages = await desk.say("where is my order")
    assert messages[-1]["text"] == replies.HANDOFF_BOT_DOWN + replies.HANDOFF_QUEUED.format(position=1, wait=FIRST_WAIT)
    cards = await _new(desk, desk.group_id, group_start, "the bot was unavailable")
    assert "Maya: where is my order" in cards[-1]["text"]


async def test_a_complaint_ticket_gets_a_topic_with_its_photos_and_an_answer_there_reaches_the_customer(
    desk: Harness,
) -> None:
    sent = await desk.emulator.send_media(4242, "photo", content=b"\x89PNG a cracked mirror")
    await desk.emulator.wait_for_text(4242)
    photo = sent["message"]["photo"][-1]
    group_start = await _last(desk, desk.group_id)
    async with desk.sessions.begin() as session:
        conversation = await session.run_sync(transcript.find_conversation, 4242)
        await session.run_sync(
            tickets.create,
            idempotency_key="k1",
            conversation=conversation,
            category="delivered_not_received",
            description="The mirror arrived cracked",
            desired_resolution="replacement",
            priority=TicketPriority.NORMAL,
            order_number="B12345",
            photos=[photo["file_id"]],
        )
    [card] = await _new(desk, desk.group_id, group_start, "🎫")
    assert "no person asked for yet" in card["text"] and "Attachments: 1 (below)" in card["text"]
    assert "marked delivered, not received" in card["text"], "the category in words"
    copied = await _in_group(desk, card["seq"], lambda m: "photo" in m.get("message", {}))
    assert copied["message"]["photo"][-1]["file_unique_id"] == photo["file_unique_id"], (
        "the customer's own photo, copied"
    )
    assert copied["message_thread_id"] == card["message_thread_id"]
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(
        BO, "Hi Maya, a new mirror ships today.", chat_id=desk.group_id, message_thread_id=card["message_thread_id"]
    )
    [answer] = await _new(desk, 4242, customer_start, "new mirror")
    assert answer["text"] == "Bo: Hi Maya, a new mirror ships today."
    async with desk.sessions() as session:
        ticket = await session.scalar(select(Ticket))
        conversation = await session.scalar(select(Conversation))
    assert ticket.status is TicketStatus.IN_PROGRESS and conversation.state is ConversationState.BOT


async def test_forged_desk_buttons_are_refused(desk: Harness) -> None:
    card = await _queued(desk)
    await _agent_ready(desk)
    pressed = await desk.emulator.press(
        ALEX, card["message_id"], "b:not-a-real-button", chat_id=desk.group_id, forged=True
    )
    answer = await callback_answer(desk, pressed["callback_query_id"])
    assert answer["answer"]["text"] == replies.EXPIRED_BUTTON
    async with desk.sessions() as session:
        assert (await session.scalar(select(Handoff))).status is HandoffStatus.QUEUED
    assert await eventually(lambda: _no_claim_text(desk), True)


async def _no_claim_text(harness: Harness) -> bool:
    return not [m for m in (await harness.emulator.sent(4242)).messages if "this is Alex" in (m.get("text") or "")]


@pytest.mark.parametrize(
    ("moment", "back"),
    [
        ("2026-12-09T12:00:00+00:00", "on Sunday"),  # a Wednesday
        ("2027-03-27T23:30:00+00:00", "tomorrow"),  # a Saturday 23:30 in London, before the clocks go forward
        ("2026-10-25T00:30:00+00:00", "on Sunday"),  # Sunday 01:30 in London, summer time ending: next Sunday
    ],
)
async def test_out_of_hours_the_customer_is_told_when_the_team_is_back(
    clock, closed_desk: Harness, moment: str, back: str
) -> None:
    clock.set_to(datetime.fromisoformat(moment))
    messages = await closed_desk.say("I want a person")
    told = await _new(closed_desk, 4242, messages[-1]["seq"] - 1, "isn't working right now")
    assert f"they're back {back} at 00:00 (Europe/London time)" in told[-1]["text"]
    assert "number 1 in line" not in told[-1]["text"], "no wait is promised that can't be kept"
    async with closed_desk.sessions() as session:
        assert (await session.scalar(select(Handoff))).status is HandoffStatus.QUEUED, "agents see it first thing"


async def test_writing_again_soon_after_the_close_reopens_with_the_same_agent(desk: Harness) -> None:
    await _claimed(desk)
    await desk.emulator.send_text(ALEX, "/close replacement sent")
    closing = await _new(desk, 4242, 0, "How did we do?")
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(4242, "sorry, one more thing: the box was wet too")
    back = await _new(desk, 4242, closing[-1]["seq"], "is back with you")
    assert back[-1]["text"] == replies.REOPENED.format(agent="Alex")
    relayed = await _new(desk, ALEX, agent_start, "the box was wet")
    assert any(m["text"].startswith("↪️ Maya wrote again") for m in relayed)
    async with desk.sessions() as session:
        handoffs = (await session.scalars(select(Handoff).order_by(Handoff.id))).all()
        ticket = await session.scalar(select(Ticket))
    assert [(h.reason, h.status) for h in handoffs] == [
        ("customer_request", HandoffStatus.CLOSED),
        ("reopened", HandoffStatus.CLAIMED),
    ]
    assert ticket.status is TicketStatus.IN_PROGRESS and len(desk.rasa.received) == 1


async def test_an_agent_passes_the_customer_on_and_back_to_the_queue(desk: Harness) -> None:
    intro = await _claimed(desk)
    await _agent_ready(desk, BO)
    agent_start = await _last(desk, ALEX)
    await _press(desk, ALEX, intro, "Transfer")
    [menu] = await _new(desk, ALEX, agent_start, "Pass Maya")
    customer_start, bo_start = await _last(desk, 4242), await _last(desk, BO)
    await _press(desk, ALEX, menu, "Bo")
    [told] = await _new(desk, 4242, customer_start, "passing you to Bo")
    [bo_intro] = await _new(desk, BO, bo_start, "You're now talking with Maya")
    await desk.emulator.send_text(4242, "hi Bo")
    await _new(desk, BO, bo_intro["seq"], "hi Bo")
    answer = await _press(desk, ALEX, intro, "Close")
    assert answer["answer"]["text"] == "This conversation is with another agent now.", "Alex's old button does nothing"
    assert (await _press(desk, ALEX, menu, "Back to the queue"))["answer"]["text"].startswith(
        "This conversation isn't yours"
    )
    bo_start = await _last(desk, BO)
    await desk.emulator.send_text(BO, "/transfer")
    [menu] = await _new(desk, BO, bo_start, "Pass Maya")
    await _press(desk, BO, menu, "Back to the queue")
    await _new(desk, 4242, told["seq"], "next person available")
    async with desk.sessions() as session:
        handoff = await session.scalar(select(Handoff))
        conversation = await session.run_sync(transcript.find_conversation, 4242)
    assert (handoff.status, handoff.agent_id, conversation.state) == (
        HandoffStatus.QUEUED,
        None,
        ConversationState.QUEUED,
    )


async def test_a_promise_is_told_reminded_when_due_and_kept(desk: Harness) -> None:
    await _claimed(desk)
    customer_start, agent_start = await _last(desk, 4242), await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/promise in 2h call you back about the refund")
    [told] = await _new(desk, 4242, customer_start, "has made a note to")
    assert told["text"].startswith("Alex has made a note to call you back about the refund, by ")
    [saved] = await _new(desk, ALEX, agent_start, "Promise #1")
    async with desk.sessions.begin() as session:
        await session.execute(update(Promise).values(due_at=utcnow() - timedelta(minutes=1)))
    [due] = await _new(desk, ALEX, saved["seq"], "is due")
    assert due["text"] == desk_texts.PROMISE_DUE.format(
        number=1, ticket="T000001", what="call you back about the refund"
    )
    await desk.emulator.send_text(ALEX, "/kept 1")
    [kept] = await _new(desk, 4242, told["seq"], "has done what they promised")
    assert "call you back about the refund" in kept["text"]
    async with desk.sessions() as session:
        promise = await session.scalar(select(Promise))
    assert promise.kept_at is not None and promise.reminded_at is not None
    await desk.emulator.send_text(ALEX, "/promise soon, honest")
    await _new(desk, ALEX, due["seq"], "Usage: /promise")


async def test_a_waiting_customer_is_brought_up_again_in_the_topic(eager_desk: Harness) -> None:
    card = await _queued(eager_desk)
    reminders = await _new(eager_desk, eager_desk.group_id, card["seq"], "has been waiting", timeout=15)
    assert reminders[-1]["message_thread_id"] == card["message_thread_id"]
    assert [b["text"] for row in reminders[-1]["reply_markup"]["inline_keyboard"] for b in row] == ["Claim"]


async def test_admins_see_who_holds_what_and_release_a_conversation(desk: Harness) -> None:
    await _claimed(desk)
    group_start = await _last(desk, desk.group_id)
    await desk.emulator.send_text(BO, "/agents", chat_id=desk.group_id)
    await _new(desk, desk.group_id, group_start, desk_texts.ADMINS_ONLY)
    await desk.emulator.add_user("Ines", user_id=5353)
    await desk.emulator.set_member(desk.group_id, 5353, admin=True)
    await desk.emulator.send_text(5353, "/agents", chat_id=desk.group_id)
    await _new(desk, desk.group_id, group_start, "Alex: 1 conversation(s) (T000001)")
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(5353, "/release T000001", chat_id=desk.group_id)
    await _new(desk, desk.group_id, group_start, "released T000001 from Alex")
    await _new(desk, 4242, customer_start, "next person available")
    async with desk.sessions() as session:
        assert (await session.scalar(select(Handoff))).status is HandoffStatus.QUEUED


async def test_forgetting_a_customer_deletes_their_ticket_topics(desk: Harness) -> None:
    card = await _queued(desk)
    await desk.say("/cancel")
    messages = await desk.say("/forget")
    after = await _last(desk, 4242)
    await _press(desk, 4242, messages[-1], replies.FORGET_YES)
    await _new(desk, 4242, after, "deleted your data")
    calls = await desk.emulator.calls("deleteForumTopic")
    assert [(c["params"]["chat_id"], c["params"]["message_thread_id"], c["status"]) for c in calls] == [
        (str(desk.group_id), str(card["message_thread_id"]), 200)
    ]


async def test_a_message_long_after_the_rating_is_not_taken_for_a_comment(desk: Harness) -> None:
    await _claimed(desk)
    await desk.emulator.send_text(ALEX, "/close sorted")
    survey = await _new(desk, 4242, 0, "How did we do?")
    await _press(desk, 4242, survey[-1], "4")
    await _new(desk, 4242, survey[-1]["seq"], "rating us 4 out of 5")
    async with desk.sessions.begin() as session:
        await session.execute(update(Handoff).values(updated_at=utcnow() - timedelta(hours=2)))
    messages = await desk.say("where is my new order")
    assert messages[-1]["text"] == "echo: where is my new order", "a new question, answered by the bot"
    async with desk.sessions() as session:
        assert (await session.scalar(select(Handoff))).csat_comment is None


async def test_internal_notes_never_reach_the_customers_own_data(desk: Harness) -> None:
    await _claimed(desk)
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/note she sounded upset, check the courier's record")
    await _new(desk, ALEX, agent_start, "Note saved")
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(ALEX, "/close refund approved by the shift lead only")
    await _new(desk, 4242, customer_start, "How did we do?")
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(4242, "/mydata")
    [document] = [m for m in await _new(desk, 4242, customer_start, replies.MYDATA_CAPTION) if m.get("file")]
    export = (await desk.emulator.file_content(document["file"]["file_id"])).decode()
    assert "I want a person" in export, "the customer's own words are there"
    assert "courier's record" not in export and "shift lead" not in export


async def test_a_closed_tickets_topic_is_closed_and_what_is_written_there_stays_with_the_team(desk: Harness) -> None:
    card = await _queued(desk)
    topic = card["message_thread_id"]
    await _agent_ready(desk)
    await _press(desk, ALEX, card, "Claim")
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(ALEX, "/close replacement sent")
    await _new(desk, 4242, customer_start, "How did we do?")
    closed = await _calls(desk, "closeForumTopic")
    assert int(closed[0]["params"]["message_thread_id"]) == topic
    [renamed] = await desk.emulator.calls("editForumTopic")
    assert renamed["params"]["name"] == "✅ T000001 · Maya"
    await desk.emulator.set_member(desk.group_id, BO, admin=True)  # admins may still write in a closed topic
    group_start, customer_start = await _last(desk, desk.group_id), await _last(desk, 4242)
    await desk.emulator.send_text(BO, "between us: she was lucky", chat_id=desk.group_id, message_thread_id=topic)
    [told] = await _new(desk, desk.group_id, group_start, "no longer reaches the customer")
    assert told["text"] == desk_texts.TOPIC_CLOSED.format(ticket="T000001") and told["message_thread_id"] == topic
    assert not [
        m for m in (await desk.emulator.sent(4242, customer_start)).messages if "lucky" in (m.get("text") or "")
    ]

    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/reopen T000001")
    await _new(desk, ALEX, agent_start, desk_texts.REOPENED_TICKET.format(ticket="T000001"))
    reopened = await _calls(desk, "reopenForumTopic")
    assert int(reopened[0]["params"]["message_thread_id"]) == topic
    assert (await desk.emulator.calls("editForumTopic"))[-1]["params"]["name"] == "T000001 · Maya"
    await desk.emulator.send_text(BO, "Hi Maya, one more thing", chat_id=desk.group_id, message_thread_id=topic)
    [answer] = await _new(desk, 4242, customer_start, "one more thing")
    assert answer["text"] == "Bo: Hi Maya, one more thing"


@pytest.fixture
async def unpaced_desk(tmp_path) -> AsyncIterator[Harness]:
    """The desk with the group's pace off on both sides (the pacing of copies is test_group_queue.py's)."""
    async with running_harness(tmp_path, desk=True, TELEGRAM_GROUP_RATE="0", TELEGRAM_RATE="0") as running:
        running.rasa.answer = _handing_over
        await running.emulator.set_limits(enabled=False)
        yield running


async def test_attachments_past_ten_are_listed_sent_on_request_and_all_reach_the_claiming_agent(
    unpaced_desk: Harness,
) -> None:
    desk = unpaced_desk
    photos = []
    for n in range(12):
        after = await _last(desk, 4242)
        photos.append((await desk.emulator.send_media(4242, "photo", caption=f"photo {n}"))["message"]["photo"][-1])
        await desk.emulator.wait_for_text(4242, after)
    card = await _queued(desk)
    assert "Attachments: 10 (below); 2 more are listed in the transcript: /media T000001" in card["text"]
    document = await _in_group(desk, card["seq"], lambda m: "document" in m.get("message", {}))
    listed = (await desk.emulator.file_content(document["message"]["document"]["file_id"])).decode()
    assert all(p["file_unique_id"] in listed for p in photos) and listed.count("not copied") == 2
    in_topic = [
        m["message"]["photo"][-1]["file_unique_id"]
        for m in (await desk.emulator.sent(desk.group_id, card["seq"])).messages
        if "photo" in m.get("message", {})
    ]
    assert in_topic == [p["file_unique_id"] for p in photos[:10]]

    await _agent_ready(desk)
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/media T000001")
    sent_here = await _photos_in(desk, ALEX, agent_start, 2)
    assert sent_here == [p["file_unique_id"] for p in photos[10:]]
    agent_start = await _last(desk, ALEX)
    await _press(desk, ALEX, card, "Claim")
    assert await _photos_in(desk, ALEX, agent_start, 12) == [p["file_unique_id"] for p in photos]


async def _photos_in(harness: Harness, chat_id: int, after: int, count: int) -> list[str]:
    """The file ids of the photos copied into a chat after `after`, once there are `count` of them (a private chat
    takes about one message a second)."""
    for _ in range(600):
        found = [
            m["message"]["photo"][-1]["file_unique_id"]
            for m in (await harness.emulator.sent(chat_id, after)).messages
            if "photo" in m.get("message", {})
        ]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return found
