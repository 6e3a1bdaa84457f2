"""A complaint through the real stack: first message to ticket number, then the status query."""

from __future__ import annotations

import re
from datetime import timedelta

from actions.pending import PendingComplaints
from bot.emulator.client import EmulatorClient
from bot.storage import tickets, transcript
from devstack.stack import Stack
from tests.e2e.helpers import press, replies_after, say, variations

TICKET = re.compile(r"T\d{6}")


def _with_buttons(messages: list[dict]) -> dict:
    return next(m for m in reversed(messages) if (m.get("reply_markup") or {}).get("inline_keyboard"))


async def test_an_all_in_one_complaint_with_a_photo_becomes_a_ticket_in_four_turns(
    emulator: EmulatorClient, customer: dict, db
) -> None:
    user = customer["id"]
    text = "my order A12345 arrived broken and I want a refund"
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, text)
    photo_question = await replies_after(emulator, user, after, until="photo")
    assert "Maya" in photo_question[0]["text"] and "your item arriving damaged" in photo_question[0]["text"], (
        "the first reply apologises by name, naming the problem"
    )
    assert photo_question[-1]["text"] in variations("utter_ask_complaint_photos")
    after = (await emulator.sent(user)).last
    sent_photo = await emulator.send_media(user, "photo", content=b"\x89PNG the cracked lid")
    contact_question = await replies_after(emulator, user, after, until="email")
    assert contact_question[0]["text"] in variations("utter_photo_added")
    summary = await press(emulator, user, _with_buttons(contact_question), "No need, this chat is fine", until="A12345")
    assert "Photos: 1 photo" in summary[-1]["text"]
    done = await press(emulator, user, _with_buttons(summary), "Yes, that's right", until="T0")
    said = " ".join(m["text"] for m in done)
    reference = TICKET.search(said)[0]
    assert not re.search(r"\bsorry\b", said, re.IGNORECASE), "the apology was said once, at the start"
    async with db() as session:
        conversation = await session.run_sync(transcript.find_conversation, user)
        [ticket] = await session.run_sync(tickets.for_customer, conversation.customer_id)
    assert (ticket.reference, ticket.description, ticket.order_number, ticket.category, ticket.desired_resolution) == (
        reference,
        text,
        "A12345",
        "damaged",
        "refund",
    )
    assert ticket.photos == [sent_photo["message"]["photo"][-1]["file_id"]]
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "/tickets")
    listing = await replies_after(emulator, user, after, until=reference)
    assert any(reference in m["text"] for m in listing)

    # Two days later the customer is back: welcomed as such, and reminded of the open complaint.
    async with db.begin() as session:
        for message in await session.run_sync(transcript.messages, user):
            message.created_at -= timedelta(days=2)
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "hello")
    welcome = await replies_after(emulator, user, after, until=reference)
    assert welcome[0]["text"] in variations("utter_greet_returning_name", first_name="Maya")
    assert reference in welcome[-1]["text"]


async def test_a_complaint_kept_during_a_database_outage_is_stored_and_confirmed_once(
    stack: Stack, emulator: EmulatorClient, customer: dict, db
) -> None:
    user = customer["id"]
    await say(emulator, user, "hello")  # the customer and the conversation are on record
    complaint = {
        "chat_id": user,
        "category": "delivery",
        "description": "My parcel is two weeks late",
        "desired_resolution": "refund",
        "order_number": "B44556",
        "contact": None,
        "photos": [],
    }
    after = (await emulator.sent(user)).last
    # What the action server keeps when the database fails at ticket time (see the action tests); its retry loop,
    # running in the real action server, stores it and the app delivers the confirmation.
    PendingComplaints(stack.workdir / "pending-complaints").keep(
        f"tg-{user}:outage", complaint, ["Saved now as {ticket_id}."]
    )
    told = await replies_after(emulator, user, after, until="Saved now as T")
    async with db() as session:
        conversation = await session.run_sync(transcript.find_conversation, user)
        [ticket] = await session.run_sync(tickets.for_customer, conversation.customer_id)
    assert told[-1]["text"] == f"Saved now as {ticket.reference}."
    assert (ticket.description, ticket.order_number) == ("My parcel is two weeks late", "B44556")
