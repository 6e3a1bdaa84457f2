"""`frontline desk`: the agent's terminal desk, driven against the real app, the emulator and a scripted Rasa."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import replies
from bot.desk import board, briefing, handoff, lifecycle
from bot.desk import texts as desk_texts
from bot.sandbox_desk import AgentDesk, DeskError, Event, reference
from bot.storage import saved_replies
from bot.storage.models import Handoff, HandoffStatus, TicketStatus
from tests.unit.chat_harness import Harness, eventually, running_harness
from tests.unit.test_desk import HANDOFF

ALEX, BO, MAYA, NOOR = 5151, 5252, 4242, 4343
FRONTLINE = Path(sys.executable).parent / "frontline"


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[Harness]:
    """The app with an agents' group (Alex and Bo are members) and a Rasa that hands over on "I want a person"."""
    # The scripted Rasa answers at once: a slow moment of a loaded machine must not make it a bot-down handoff.
    async with running_harness(tmp_path, desk=True, RASA_TIMEOUT="10") as running:

        def answer(body: dict) -> list[dict]:
            if body["message"] == "I want a person":
                return [{"text": "Of course, I'm bringing in a person."}, {"custom": HANDOFF}]
            return [{"text": f"echo: {body['message']}"}]

        running.rasa.answer = answer
        yield running


async def _until(desk: AgentDesk, done: Callable[[], bool], timeout: float = 10) -> list[Event]:
    """Follow the two chats until `done()`; the events seen meanwhile."""
    seen: list[Event] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened; saw {[str(e) for e in seen]}")
        seen += await desk.pump(wait=0.5)
    return seen


async def _event(desk: AgentDesk, wanted: Callable[[Event], bool], timeout: float = 10) -> Event:
    """Follow the two chats up to the first event wanted."""
    seen: list[Event] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for event in await desk.pump(wait=0.5):
            if wanted(event):
                return event
            seen.append(event)
    raise AssertionError(f"no such event; saw {[str(e) for e in seen]}")


async def _asks_for_a_person(harness: Harness, user: int = MAYA) -> None:
    after = (await harness.emulator.sent(user)).last
    await harness.emulator.send_text(user, "I want a person")
    await harness.emulator.wait_for_text(user, after, predicate=lambda t: "in line" in t, timeout=8)


async def _received(harness: Harness, user: int, after: int, text: str) -> str:
    messages = await harness.emulator.wait_for_text(user, after, predicate=lambda t: text in t, timeout=8)
    return messages[-1]["text"]


async def _desk(harness: Harness) -> AgentDesk:
    desk = AgentDesk(harness.emulator, harness.sessions, ALEX, harness.group_id)
    await desk.start()
    return desk


async def _claimed(desk: AgentDesk, ref: str) -> None:
    await _until(desk, lambda: ref in desk.tickets and desk.tickets[ref].claim is not None)
    assert await desk.claim(ref) is None
    await _until(desk, lambda: ref in desk.talks)


def test_ticket_numbers_are_read_as_the_bot_spells_them() -> None:
    assert [reference(t) for t in ("T000001", "t1", "1", " 12 ")] == ["T000001", "T000001", "T000001", "T000012"]


async def test_start_registers_the_agent_finds_the_group_and_lists_tickets_as_they_come(harness: Harness) -> None:
    desk = AgentDesk(harness.emulator, harness.sessions, ALEX)
    await desk.start()
    assert desk.group_id == harness.group_id, "found from the bot's membership check"
    assert desk.name == "Alex"
    assert desk.ticket_lines() == ["No tickets yet. A customer asking for a person (`make chat`) opens one."]
    await _asks_for_a_person(harness)
    events = await _until(desk, lambda: "T000001" in desk.tickets and desk.tickets["T000001"].card != "")
    ticket = desk.tickets["T000001"]
    assert (ticket.topic, ticket.status) == ("T000001 · Maya", "waiting: asked for a person")
    assert ticket.claim is not None and ticket.thread_id
    card = next(e for e in events if "New ticket" in e.text)
    assert str(card).startswith("[T000001] New ticket in topic “T000001 · Maya”; `claim T000001` takes it.")
    assert "What happened: The lamp came broken" in card.text
    assert await desk.handle("tickets") == "T000001 · topic “T000001 · Maya” · waiting: asked for a person"


async def test_a_desk_started_later_catches_up_on_the_tickets_already_posted(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    first = await _desk(harness)
    await _until(first, lambda: first.tickets.get("T000001") is not None and first.tickets["T000001"].claim is not None)
    later = await _desk(harness)
    assert later.tickets["T000001"].status == "waiting: asked for a person"


async def test_claiming_connects_the_agent_both_ways(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    customer_start = (await harness.emulator.sent(MAYA)).last
    await _claimed(desk, "T000001")
    assert await _received(harness, MAYA, customer_start, "this is Alex") == replies.CLAIMED.format(agent="Alex")
    assert desk.current.customer == "Maya" and desk.prompt() == "Alex → Maya (T000001)> "
    await _until(desk, lambda: desk.tickets["T000001"].status == "claimed by Alex")
    assert "yours (current)" in desk.ticket_lines()[0]

    await desk.handle("Hello Maya, a new lamp is on its way.")
    assert await _received(harness, MAYA, customer_start, "new lamp") == "Alex: Hello Maya, a new lamp is on its way."
    await harness.emulator.send_text(MAYA, "thank you!")
    relayed = await _event(desk, lambda e: "thank you" in e.text)
    assert str(relayed) == "[T000001] Maya: thank you!"
    restarted = await _desk(harness)
    assert restarted.current.reference == "T000001", "a restarted desk knows whom it is talking with"
    assert restarted.current.reply_to == desk.talks["T000001"].reply_to, "replies still answer her newest message"


async def test_a_ticket_already_claimed_is_refused(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    alex = await _desk(harness)
    await _claimed(alex, "T000001")
    bo = AgentDesk(harness.emulator, harness.sessions, BO, harness.group_id)
    await bo.start()
    assert await bo.claim("T000001") == desk_texts.ALREADY_CLAIMED.format(agent="Alex")
    assert (
        await bo.claim("T000009") == "No ticket T000009 with a Claim button in the agents' group. `tickets` lists them."
    )


async def test_with_two_customers_the_agent_chooses_whom_a_message_is_for(harness: Harness) -> None:
    await harness.emulator.add_user("Noor", user_id=NOOR)
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    await _claimed(desk, "T000001")
    await _asks_for_a_person(harness, NOOR)
    await _claimed(desk, "T000002")
    assert desk.current.customer == "Noor", "the conversation claimed last is the current one"
    assert desk.choose("T000007") == (
        "You're not talking with the customer of T000007. "
        "Yours: T000001 (Maya), T000002 (Noor). Choose with `to <ticket>`."
    )

    maya_start, noor_start = (await harness.emulator.sent(MAYA)).last, (await harness.emulator.sent(NOOR)).last
    assert await desk.handle("to T000001") == "Your messages now go to Maya (T000001)."
    await desk.handle("This one is for Maya.")
    assert await _received(harness, MAYA, maya_start, "for Maya") == "Alex: This one is for Maya."
    await desk.handle("to 2")
    await desk.handle("And this one for Noor.")
    assert await _received(harness, NOOR, noor_start, "for Noor") == "Alex: And this one for Noor."
    maya_seen = (await harness.emulator.sent(MAYA, maya_start)).messages
    assert [m["text"] for m in maya_seen] == ["Alex: This one is for Maya."], "Noor's message never reached Maya"

    await harness.emulator.send_text(MAYA, "great")
    await _until(desk, lambda: desk.talks["T000001"].reply_to > desk.talks["T000002"].reply_to)
    desk.chosen = None  # e.g. the chosen conversation ended while two others go on
    assert await desk.handle("who is this for?") == (
        "You're helping 2 customers. Yours: T000001 (Maya), T000002 (Noor). Choose with `to <ticket>`."
    )


async def test_closing_with_a_note_ends_the_conversation(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    await _claimed(desk, "T000001")
    customer_start = (await harness.emulator.sent(MAYA)).last
    assert await desk.handle("close replacement sent") is None
    assert await _received(harness, MAYA, customer_start, "How did we do?") == replies.CSAT_QUESTION
    closed = await _event(desk, lambda e: e.text.startswith("Closed T000001."))
    assert closed.ticket == "T000001"
    await _until(desk, lambda: desk.tickets["T000001"].ended)
    assert desk.tickets["T000001"].status == "closed by Alex: replacement sent"
    assert desk.ticket_lines() == ["(1 closed: `tickets all` lists them too)"]
    assert desk.current is None and desk.prompt() == "Alex> "
    async with harness.sessions() as session:
        handoff = await session.scalar(select(Handoff))
    assert (handoff.status, handoff.resolution) == (HandoffStatus.CLOSED, "replacement sent")


async def test_blocking_the_current_customer_and_unblocking_by_ticket(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    await _claimed(desk, "T000001")
    assert await desk.handle("block") == "Usage: block <reason>"
    assert await desk.handle("unblock") == "Usage: unblock T000001"
    customer_start = (await harness.emulator.sent(MAYA)).last
    assert await desk.handle("block threatened the courier") is None
    assert await _received(harness, MAYA, customer_start, "close this conversation") == replies.BLOCKED
    blocked = await _event(desk, lambda e: e.text.startswith("⛔ Maya is blocked"))
    assert blocked.ticket == "T000001" and "threatened the courier" in blocked.text
    await _until(desk, lambda: "T000001" not in desk.talks)
    assert await desk.handle("unblock t1") is None
    await _event(desk, lambda e: e.text == desk_texts.UNBLOCKED.format(name="Maya", ticket="T000001"))


async def test_notes_the_queue_and_returning_to_the_bot(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    assert await desk.handle("note") == "Usage: note <text>"
    await desk.handle("queue")
    waiting = await _event(desk, lambda e: e.text.startswith("1. T000001"))
    assert "Maya · waiting" in waiting.text and waiting.text.endswith("asked for a person")
    await _claimed(desk, "T000001")
    await desk.handle("note customer is a regular")
    await _event(desk, lambda e: e.text == desk_texts.NOTE_SAVED.format(ticket="T000001"))
    customer_start = (await harness.emulator.sent(MAYA)).last
    assert await desk.handle("return") is None
    assert await _received(harness, MAYA, customer_start, "T000001") == replies.RETURNED.format(ticket="T000001")
    await _until(desk, lambda: "T000001" not in desk.talks and desk.tickets["T000001"].status == "back with the bot")


async def test_saved_replies_are_listed_and_sent_to_the_current_customer(harness: Harness) -> None:
    async with harness.sessions.begin() as session:
        await session.run_sync(saved_replies.save, "alice", None, "Greeting", "Hello {first_name}, {agent} here.", "")
        await session.run_sync(
            saved_replies.save, "alice", None, "Refund", "Your refund for {ticket} is sent.", "Billing"
        )
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    await _claimed(desk, "T000001")
    await desk.handle("r")
    offer = await _event(desk, lambda e: "press <n>" in e.text)
    assert offer.text.endswith("[1] Billing · Refund  [2] Greeting  (`press <n>`)")
    customer_start = (await harness.emulator.sent(MAYA)).last
    assert await desk.handle("press 2") == desk_texts.SAVED_SENT.format(
        name="Greeting", customer="Maya", ticket="T000001"
    )
    assert await _received(harness, MAYA, customer_start, "Hello") == "Alex: Hello Maya, Alex here."
    customer_start = (await harness.emulator.sent(MAYA)).last
    await desk.handle("r refund")
    assert await _received(harness, MAYA, customer_start, "refund") == "Alex: Your refund for T000001 is sent."


async def test_passing_a_customer_to_another_agent(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    alex = await _desk(harness)
    bo = AgentDesk(harness.emulator, harness.sessions, BO, harness.group_id)
    await bo.start()
    await _claimed(alex, "T000001")
    assert await alex.handle("press 1") == "No buttons to press."
    await alex.handle("transfer")
    offer = await _event(alex, lambda e: "to whom?" in e.text)
    assert offer.text.endswith("[1] Bo  [2] Back to the queue  (`press <n>`)")
    assert await alex.handle("press 1") is None
    await _event(alex, lambda e: e.text == desk_texts.TRANSFERRED_AGENT.format(name="Maya", ticket="T000001", new="Bo"))
    assert alex.talks == {} and alex.current is None
    await _until(bo, lambda: "T000001" in bo.talks)
    assert bo.current.customer == "Maya"
    await _until(alex, lambda: alex.tickets["T000001"].status == "claimed by Bo")


async def test_back_in_the_queue_for_another_agent_to_claim(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    alex = await _desk(harness)
    await _claimed(alex, "T000001")
    claimed_with = alex.tickets["T000001"].claim
    await alex.handle("transfer")
    offer = await _event(alex, lambda e: "press <n>" in e.text)
    assert offer.text.endswith("[1] Back to the queue  (`press <n>`)"), "nobody else has a chat with the bot yet"
    assert await alex.handle("press 1") is None
    await _until(alex, lambda: alex.tickets["T000001"].status == "waiting: back in the queue")
    assert alex.talks == {} and alex.current is None
    bo = AgentDesk(harness.emulator, harness.sessions, BO, harness.group_id)
    await bo.start()
    assert bo.tickets["T000001"].claim != claimed_with, "the notice in the topic carries a new Claim button"
    await _claimed(bo, "T000001")
    assert bo.prompt() == "Bo → Maya (T000001)> "
    await _until(alex, lambda: alex.tickets["T000001"].status == "claimed by Bo")


async def test_nothing_to_say_without_a_customer(harness: Harness) -> None:
    desk = await _desk(harness)
    sent_before = len(await harness.emulator.calls("sendMessage"))
    assert await desk.handle("hello?") == (
        "You're not talking with any customer. `tickets` lists the tickets; `claim T000001` takes one."
    )
    assert len(await harness.emulator.calls("sendMessage")) == sent_before


async def test_the_board_is_the_desks_records_as_data(harness: Harness) -> None:
    assert await harness.sessions.read(board.board, ALEX) == board.Board(None)
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    await _claimed(desk, "T000001")
    seen = await harness.sessions.read(board.board, ALEX)
    assert seen.agent == board.AgentView(ALEX, "Alex", ALEX)
    [ticket] = seen.tickets
    assert (ticket.reference, ticket.topic, ticket.customer, ticket.status, ticket.ended) == (
        "T000001",
        "T000001 · Maya",
        "Maya",
        TicketStatus.IN_PROGRESS,
        False,
    )
    assert ticket.thread_id == desk.tickets["T000001"].thread_id
    assert (ticket.handoff.status, ticket.handoff.reason, ticket.handoff.agent) == (
        HandoffStatus.CLAIMED,
        "customer_request",
        "Alex",
    )
    [talk] = seen.talks
    assert (talk.reference, talk.customer, talk.handoff_id) == ("T000001", "Maya", ticket.handoff.id)
    assert (await harness.sessions.read(board.board, BO)).talks == [], "Bo holds nothing"

    agent_start = (await harness.emulator.sent(ALEX)).last
    await harness.emulator.send_text(MAYA, "thank you!")
    relayed = await harness.emulator.wait_for_text(ALEX, agent_start, predicate=lambda t: "thank you" in t, timeout=8)
    sent_as = relayed[-1]["message_id"]
    assert await eventually(lambda: harness.sessions.read(lambda s: board.board(s, ALEX, [sent_as]).settled), True)
    seen = await harness.sessions.read(board.board, ALEX, [sent_as, 999_999])
    assert seen.posts == {
        sent_as: board.Post(talk.conversation_id, "Maya", "T000001", talk.handoff_id, said="thank you!")
    }
    assert seen.talks[0].reply_to == sent_as, "her newest message in Alex's chat"


async def test_a_customer_cannot_play_the_agent(harness: Harness) -> None:
    with pytest.raises(DeskError, match="User 4242 is not a member of the agents' group"):
        await AgentDesk(harness.emulator, harness.sessions, MAYA, harness.group_id).start()


async def test_photos_and_long_messages_arrive_as_the_customer_sent_them(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    await _claimed(desk, "T000001")
    await harness.emulator.send_media(MAYA, "photo", caption="the broken lamp", content=b"\x89PNG lamp")
    assert str(await _event(desk, lambda e: "lamp" in e.text)) == "[T000001] Maya: [photo] the broken lamp"
    story = " ".join(f"word{n}" for n in range(1000))  # over Telegram's 4,096 characters: relayed in two parts
    agent_start = (await harness.emulator.sent(ALEX)).last
    await harness.emulator.send_text(MAYA, story)
    assert str(await _event(desk, lambda e: "word" in e.text)) == f"[T000001] Maya: {story}", "shown whole"
    await harness.emulator.wait_for_text(ALEX, agent_start, predicate=lambda t: t.endswith("word999"), timeout=8)
    assert not [e for e in await desk.pump(wait=0.5) if "word" in e.text], "and once"


WORDING = {  # the desk's wording, changed: none of it is what the sandbox desk was written against
    "RELAY_HEADER": "From {name} on {ticket}:",
    "CLAIMED_INTRO": "{ticket} is yours: {name} is waiting for your answer.\n\n{recent}",
    "CLAIMED_NOTICE": "Taken by {agent}.",
    "CLOSED_NOTICE": "Done ({agent}{note}).",
    "CLOSED_AGENT": "{ticket} is done; the customer is asked for a rating.",
}


async def test_the_desk_reworded_changes_nothing_the_sandbox_desk_knows(harness: Harness, monkeypatch) -> None:
    for module in (desk_texts, handoff, lifecycle):  # in the running app, where each template is read
        for name, text in WORDING.items():
            if hasattr(module, name):
                monkeypatch.setattr(module, name, text)
    brief = briefing.brief

    def reworded(facts: briefing.Facts, now: datetime) -> briefing.Briefing:
        told = brief(facts, now)
        return dataclasses.replace(told, card=told.card.replace("🎫 ", "Ticket ").replace("Needs a person", "Why"))

    monkeypatch.setattr(briefing, "brief", reworded)
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    seen = await _until(desk, lambda: "T000001" in desk.tickets and desk.tickets["T000001"].card != "")
    assert desk.tickets["T000001"].card.startswith("Ticket T000001 · Maya"), "the app speaks the new wording"
    assert any(str(e).startswith("[T000001] New ticket in topic “T000001 · Maya”") for e in seen)
    assert await desk.handle("tickets") == "T000001 · topic “T000001 · Maya” · waiting: asked for a person"

    await _claimed(desk, "T000001")
    assert desk.prompt() == "Alex → Maya (T000001)> "
    await _until(desk, lambda: desk.tickets["T000001"].status == "claimed by Alex")
    await harness.emulator.send_text(MAYA, "thank you!")
    assert str(await _event(desk, lambda e: "thank you" in e.text)) == "[T000001] Maya: thank you!"
    customer_start = (await harness.emulator.sent(MAYA)).last
    await desk.handle("A new lamp is on its way.")
    assert await _received(harness, MAYA, customer_start, "new lamp") == "Alex: A new lamp is on its way."

    assert await desk.handle("close replacement sent") is None
    closed = await _event(desk, lambda e: e.text.endswith("is done; the customer is asked for a rating."))
    assert closed.ticket == "T000001"
    await _until(desk, lambda: desk.tickets["T000001"].ended)
    assert desk.tickets["T000001"].status == "closed by Alex: replacement sent"
    assert desk.talks == {} and desk.prompt() == "Alex> "


def test_the_desk_says_so_when_the_sandbox_is_not_running(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "EMULATOR_PORT": str(port), "FRONTLINE_VAR": str(tmp_path)}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    result = subprocess.run(
        [str(FRONTLINE), "desk"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert f"The sandbox is not running at http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_online_next_pass_and_away(harness: Harness) -> None:
    await _asks_for_a_person(harness)
    desk = await _desk(harness)
    await desk.handle("online")
    await _event(desk, lambda e: e.text.startswith("🟢 You're online"))
    await desk.handle("next")
    await _event(desk, lambda e: e.text.startswith("You claimed T000001"))
    await _until(desk, lambda: "T000001" in desk.talks)
    agent_start = (await harness.emulator.sent(ALEX)).last
    assert await desk.handle("pass") is None
    assert "is passed on: back in the queue" in await _received(harness, ALEX, agent_start, "is passed on")
    await _until(desk, lambda: "T000001" not in desk.talks)
    await asyncio.sleep(2)  # Telegram's pace for one private chat: a second a message after a burst of five
    await desk.handle("away")
    await _event(desk, lambda e: e.text == desk_texts.AWAY)
    assert "next" in await desk.handle("help") and "pass" in await desk.handle("help")
