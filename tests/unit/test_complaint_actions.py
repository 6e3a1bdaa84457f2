"""The complaint form's actions, run as rasa_sdk runs them; ticket creation on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import actions.tickets
from actions.complaints import (
    ActionAskComplaintConfirmed,
    ActionComplaintHandoff,
    ActionKeepPhoto,
    ActionStopComplaint,
    ValidateComplaintForm,
)
from actions.pending import PendingComplaints
from actions.priority import angry_tone, ticket_priority
from actions.tickets import ActionListTickets, ActionSubmitComplaint, store_pending
from bot.storage import tickets, transcript
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import TicketPriority

REQUIRED = [
    "complaint_description",
    "order_number",
    "complaint_category",
    "desired_resolution",
    "complaint_photos",
    "contact",
    "complaint_confirmed",
]
DOMAIN = {
    "forms": {"complaint_form": {"required_slots": REQUIRED}},
    "slots": {slot: {"type": "text", "mappings": [{"type": "custom"}]} for slot in REQUIRED},
    "responses": {"utter_ticket_saved_later": [{"text": "Saved now as {ticket_id}."}]},
}


def tracker(
    text: str,
    intent: str,
    *,
    requested: str | None = None,
    entities: list[dict] | None = None,
    slots: dict | None = None,
    metadata: dict | None = None,
    sender: str = "tg-42",
) -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": {**dict.fromkeys(REQUIRED), "requested_slot": requested, **(slots or {})},
            "latest_message": {
                "text": text,
                "intent": {"name": intent, "confidence": 0.9},
                "entities": entities or [],
                "metadata": metadata or {},
            },
            "events": [],
            "active_loop": {"name": "complaint_form"},
        }
    )


def entity(name: str, value: str) -> dict[str, Any]:
    return {"entity": name, "value": value}


async def validate(t: Tracker) -> tuple[dict[str, Any], list[str]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateComplaintForm().run(dispatcher, t, DOMAIN)
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot" and e["name"] != "requested_slot"}
    return slots, [m.get("response") for m in dispatcher.messages]


async def test_an_all_in_one_first_message_fills_everything_it_says() -> None:
    text = "my order A12345 arrived broken and I want a refund"
    slots, _ = await validate(tracker(text, "complain", entities=[entity("order_number", "A12345")]))
    assert slots == {
        "complaint_description": text,
        "order_number": "A12345",
        "complaint_category": "damaged",
        "desired_resolution": "refund",
    }


async def test_a_bare_request_to_complain_is_not_taken_as_the_description() -> None:
    slots, _ = await validate(tracker("I want to complain", "complain"))
    assert "complaint_description" not in slots


async def test_the_description_is_kept_verbatim_when_asked() -> None:
    text = "The box was soaked and the lamp inside was in 3 pieces!!"
    slots, _ = await validate(tracker(text, "inform", requested="complaint_description"))
    assert slots["complaint_description"] == text


async def test_a_question_mid_form_fills_nothing_so_the_rules_answer_it() -> None:
    slots, _ = await validate(tracker("what are your opening hours", "faq", requested="complaint_description"))
    assert slots == {}


@pytest.mark.parametrize("answer", ["my cat", "x" * 3000, "'; DROP TABLE tickets; --", "🙂🙂", "A1"])
async def test_junk_order_numbers_are_refused_with_a_reask(answer: str) -> None:
    slots, responses = await validate(tracker(answer, "inform", requested="order_number"))
    assert slots == {"order_number": None}
    assert responses == ["utter_invalid_order_number"]


async def test_no_order_number_is_a_valid_answer() -> None:
    slots, _ = await validate(tracker("I don't have one", "deny", requested="order_number"))
    assert slots == {"order_number": "none"}


async def test_order_numbers_are_normalised_and_corrected_at_any_time() -> None:
    slots, _ = await validate(
        tracker("it's a12345", "inform", requested="order_number", entities=[entity("order_number", "a12345")])
    )
    assert slots == {"order_number": "A12345"}
    slots, _ = await validate(
        tracker(
            "actually it's order A12346",
            "inform",
            requested="contact",
            slots={"order_number": "A12345"},
            entities=[entity("order_number", "A12346")],
        )
    )
    assert slots["order_number"] == "A12346"


async def test_button_payloads_and_free_text_both_choose_a_category() -> None:
    slots, _ = await validate(
        tracker(
            '/inform{"complaint_category":"charged_twice"}',
            "inform",
            requested="complaint_category",
            entities=[entity("complaint_category", "charged_twice")],
        )
    )
    assert slots["complaint_category"] == "charged_twice"
    slots, _ = await validate(tracker("the courier was late again", "inform", requested="complaint_category"))
    assert slots["complaint_category"] == "late"
    slots, _ = await validate(tracker("hard to say really", "inform", requested="complaint_category"))
    assert slots["complaint_category"] == "other"


async def test_a_forged_category_value_is_not_accepted() -> None:
    slots, _ = await validate(
        tracker("x", "inform", requested="complaint_category", entities=[entity("complaint_category", "admin")])
    )
    assert slots["complaint_category"] == "other"


async def test_the_last_resolution_mentioned_wins() -> None:
    slots, _ = await validate(tracker("not a refund, I'd like a replacement", "inform", requested="desired_resolution"))
    assert slots["desired_resolution"] == "replacement"


async def test_an_unclear_resolution_is_asked_again() -> None:
    slots, _ = await validate(tracker("hmm", "inform", requested="desired_resolution"))
    assert slots == {"desired_resolution": None}


@pytest.mark.parametrize(
    ("text", "found", "expected"),
    [
        ("dana@example.org", entity("email", "dana@example.org"), "dana@example.org"),
        ("+44 20 7946 0958", entity("phone", "+44 20 7946 0958"), "+44 20 7946 0958"),
        ("07700 900123", None, "07700 900123"),
    ],
)
async def test_contacts_are_validated(text: str, found: dict | None, expected: str) -> None:
    slots, _ = await validate(tracker(text, "inform", requested="contact", entities=[found] if found else []))
    assert slots == {"contact": expected}


async def test_a_contact_that_is_neither_email_nor_phone_is_refused() -> None:
    slots, responses = await validate(tracker("call me maybe", "inform", requested="contact"))
    assert slots == {"contact": None}
    assert responses == ["utter_invalid_contact"]


async def test_confirmation_and_corrections() -> None:
    slots, _ = await validate(tracker("yes", "affirm", requested="complaint_confirmed"))
    assert slots == {"complaint_confirmed": True}
    slots, responses = await validate(tracker("no", "deny", requested="complaint_confirmed"))
    assert slots == {"complaint_confirmed": None} and responses == ["utter_ask_what_to_change"]
    slots, _ = await validate(
        tracker(
            "I'd rather have a replacement",
            "inform",
            requested="complaint_confirmed",
            slots={"desired_resolution": "refund"},
        )
    )
    assert slots["desired_resolution"] == "replacement" and slots["complaint_confirmed"] is None


async def test_the_summary_reads_in_words() -> None:
    dispatcher = CollectingDispatcher()
    t = tracker(
        "",
        "inform",
        slots={
            "complaint_category": "damaged",
            "desired_resolution": "just_informing",
            "order_number": "none",
            "contact": "none",
        },
    )
    await ActionAskComplaintConfirmed().run(dispatcher, t, DOMAIN)
    message = dispatcher.messages[0]
    assert message["response"] == "utter_ask_complaint_confirmed"
    assert (
        message["complaint_category"],
        message["order_number"],
        message["contact"],
        message["complaint_photos"],
    ) == ("your item arriving damaged", "no order number", "this chat", "none")


async def test_stop_and_handoff_end_the_form_keeping_what_was_said() -> None:
    t = tracker("never mind", "stop", requested="order_number", slots={"complaint_description": "It broke"})
    dispatcher = CollectingDispatcher()
    events = await ActionStopComplaint().run(dispatcher, t, DOMAIN)
    assert {"event": "active_loop", "name": None, "timestamp": None} in events
    assert not any(e.get("name") == "complaint_description" for e in events)
    dispatcher = CollectingDispatcher()
    await ActionComplaintHandoff().run(dispatcher, t, DOMAIN)
    handoff = dispatcher.messages[1]["custom"]["handoff"]
    assert handoff["reason"] == "customer_request"
    assert handoff["collected"] == {"complaint_description": "It broke"}


def photo(file_id: str = "AgACAgIAAxkBAAIB") -> dict[str, Any]:
    return {"attachments": [{"kind": "photo", "file_id": file_id}]}


async def test_a_photo_mid_form_is_attached_and_the_question_stays_open() -> None:
    slots, responses = await validate(
        tracker(
            "/attach_photo",
            "attach_photo",
            requested="complaint_category",
            metadata=photo("p1"),
            slots={"complaint_photos": ["p0"]},
        )
    )
    assert slots == {"complaint_photos": ["p0", "p1"]}
    assert responses == ["utter_photo_added"]


async def test_photos_are_asked_for_only_about_what_a_photo_shows() -> None:
    slots, _ = await validate(tracker("they charged me twice", "inform", requested="complaint_category"))
    assert slots["complaint_category"] == "charged_twice" and slots["complaint_photos"] == "none"
    slots, _ = await validate(tracker("it came smashed", "inform", requested="complaint_category"))
    assert slots["complaint_category"] == "damaged" and "complaint_photos" not in slots
    slots, _ = await validate(tracker("you sent the wrong size", "inform", requested="complaint_category"))
    assert slots["complaint_category"] == "wrong_size" and "complaint_photos" not in slots


async def test_asked_for_a_photo_the_customer_may_have_none_or_must_send_one() -> None:
    slots, _ = await validate(tracker("I don't have a photo", "deny", requested="complaint_photos"))
    assert slots["complaint_photos"] == "none"
    slots, responses = await validate(tracker("it is cracked on the side", "inform", requested="complaint_photos"))
    assert slots["complaint_photos"] is None and responses == ["utter_photo_expected"]
    slots, _ = await validate(tracker("here", "inform", requested="complaint_photos", metadata=photo("p9")))
    assert slots["complaint_photos"] == ["p9"]


async def test_forged_or_malformed_attachments_are_ignored() -> None:
    metadata = {
        "attachments": [
            {"kind": "photo", "file_id": "x' OR 1=1 --"},
            {"kind": "voice", "file_id": "v1"},
            "junk",
            {"kind": "photo", "file_id": "a" * 300},
        ]
    }
    slots, _ = await validate(
        tracker("/attach_photo", "attach_photo", requested="complaint_category", metadata=metadata)
    )
    assert "complaint_photos" not in slots


async def test_a_photo_before_any_complaint_is_kept_for_one() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionKeepPhoto().run(
        dispatcher, tracker("/attach_photo", "attach_photo", metadata=photo("p1")), DOMAIN
    )
    assert events == [SlotSet("complaint_photos", ["p1"])]
    assert dispatcher.messages[0]["response"] == "utter_photo_kept"


def test_priority_rule() -> None:
    assert ticket_priority(repeat=False, desired_resolution="repair", description="it broke") is TicketPriority.NORMAL
    assert ticket_priority(repeat=False, desired_resolution="refund", description="it broke") is TicketPriority.HIGH
    assert (
        ticket_priority(repeat=True, desired_resolution="refund", description="THIS IS UNACCEPTABLE!!")
        is TicketPriority.URGENT
    )
    assert angry_tone("WHERE IS MY PARCEL I PAID A WEEK AGO") and not angry_tone("where is my parcel, please?")


@pytest.fixture
async def action_db(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> async_sessionmaker[AsyncSession]:
    """The test database as the action server's, with customer 42 already known to the app."""
    monkeypatch.setattr(actions.tickets, "sessions", lambda: sessions)
    async with sessions.begin() as session:
        for chat in (42, 43):
            customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=chat, first_name="Dana")
            await session.run_sync(transcript.conversation_for_chat, chat_id=chat, customer=customer)
    return sessions


def _confirmed(update_id: int, category: str = "late", sender: str = "tg-42") -> Tracker:
    return tracker(
        "yes",
        "affirm",
        sender=sender,
        metadata={"update_id": update_id, "telegram": {"first_name": "Dana"}},
        slots={
            "complaint_description": "My parcel is a week late",
            "order_number": "A12345",
            "complaint_category": category,
            "desired_resolution": "refund",
            "complaint_photos": ["p1", "p2"],
            "contact": "none",
            "complaint_confirmed": True,
        },
    )


async def test_confirming_opens_one_ticket_and_apologises_by_name_for_a_long_wait(
    action_db: async_sessionmaker[AsyncSession],
) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, _confirmed(7), DOMAIN)
    apology, created = dispatcher.messages
    assert apology["response"] == "utter_apology_wait" and apology["first_name"] == "Dana"
    assert apology["complaint_category_text"] == "your order arriving late"
    assert created["response"] == "utter_ticket_created"
    assert SlotSet("ticket_id", created["ticket_id"]) in events
    assert SlotSet("complaint_description", None) in events
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(7), DOMAIN)
    async with action_db() as session:
        stored = await session.run_sync(
            tickets.for_customer, (await session.run_sync(transcript.find_conversation, 42)).customer_id
        )
    assert len(stored) == 1
    ticket = stored[0]
    assert (ticket.reference, ticket.category, ticket.order_number, ticket.contact, ticket.priority, ticket.photos) == (
        created["ticket_id"],
        "late",
        "A12345",
        None,
        TicketPriority.HIGH,
        ["p1", "p2"],
    )


async def test_the_same_problem_again_gets_an_apology_that_says_so(action_db: async_sessionmaker[AsyncSession]) -> None:
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(1), DOMAIN)
    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, _confirmed(2), DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_apology_repeat"


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch, tmp_path) -> PendingComplaints:
    """The action server's database unreachable; complaints kept in a temporary directory."""
    unreachable = create_sessionmaker(create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    monkeypatch.setattr(actions.tickets, "sessions", lambda: unreachable)
    spool = PendingComplaints(tmp_path / "pending")
    monkeypatch.setattr(actions.tickets, "pending", lambda: spool)
    return spool


async def test_a_database_failure_is_told_honestly_and_the_complaint_kept_for_later(
    database_down: PendingComplaints,
) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, _confirmed(3), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_ticket_not_saved"], "said sorry once, at the start"
    assert SlotSet("complaint_description", None) in events, "the details are kept on disk, not in the form"
    [kept] = database_down.waiting()
    assert json.loads(kept.read_text())["complaint"]["description"] == "My parcel is a week late"


async def test_when_nothing_can_keep_it_the_form_keeps_the_details(
    database_down: PendingComplaints, monkeypatch
) -> None:
    def full_disk(*args) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(database_down, "keep", full_disk)
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, _confirmed(3), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_ticket_not_saved"]
    assert events == [], "the slots still hold the complaint, so confirming again stores it"


async def test_a_kept_complaint_is_stored_once_when_the_database_is_back(
    database_down: PendingComplaints, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=42, first_name="Dana")
        await session.run_sync(transcript.conversation_for_chat, chat_id=42, customer=customer)
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(3), DOMAIN)
    [kept] = database_down.waiting()
    entry = kept.read_text()
    assert await database_down.retry(sessions, store_pending) == 1
    assert database_down.waiting() == []
    # A crash after the commit but before the file was removed: the retry finds the ticket and says nothing twice.
    kept.write_text(entry)
    assert await database_down.retry(sessions, store_pending) == 1
    async with sessions() as session:
        conversation = await session.run_sync(transcript.find_conversation, 42)
        [ticket] = await session.run_sync(tickets.for_customer, conversation.customer_id)
        told = [m.text for m in await session.run_sync(transcript.outbox, 42)]
    assert (ticket.description, ticket.order_number) == ("My parcel is a week late", "A12345")
    assert told == [f"Saved now as {ticket.reference}."]


async def test_while_the_database_stays_down_the_complaint_waits(database_down: PendingComplaints) -> None:
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(3), DOMAIN)
    assert await database_down.retry(actions.tickets.sessions(), store_pending) == 0
    assert len(database_down.waiting()) == 1


async def test_customers_see_only_their_own_tickets(action_db: async_sessionmaker[AsyncSession]) -> None:
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(1, sender="tg-43"), DOMAIN)
    dispatcher = CollectingDispatcher()
    await ActionListTickets().run(dispatcher, tracker("my complaints?", "check_ticket_status"), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_no_tickets"]
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(2), DOMAIN)
    dispatcher = CollectingDispatcher()
    await ActionListTickets().run(dispatcher, tracker("my complaints?", "check_ticket_status"), DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_tickets_intro"
    assert (
        dispatcher.messages[1]["text"].count("•") == 1
        and "open, waiting for our team" in dispatcher.messages[1]["text"]
    )


async def test_without_a_name_the_apology_does_not_pretend_to_know_it(
    action_db: async_sessionmaker[AsyncSession],
) -> None:
    t = _confirmed(9)
    t.latest_message["metadata"] = {"update_id": 9}
    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, t, DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_apology_wait_no_name"


async def test_a_complaint_that_cannot_be_stored_is_set_aside_and_the_rest_go_on(
    database_down: PendingComplaints, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=42, first_name="Dana")
        await session.run_sync(transcript.conversation_for_chat, chat_id=42, customer=customer)
    broken = database_down.keep("tg-42:1", {"chat_id": 42}, ["Saved now as {ticket_id}."])  # no details at all
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(3), DOMAIN)
    assert await database_down.retry(sessions, store_pending) == 1
    assert database_down.waiting() == [] and broken.with_suffix(".failed").exists()
    async with sessions() as session:
        conversation = await session.run_sync(transcript.find_conversation, 42)
        assert len(await session.run_sync(tickets.for_customer, conversation.customer_id)) == 1
