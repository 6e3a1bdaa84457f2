"""The complaint form's actions, run as rasa_sdk runs them; ticket creation on SQLite and PostgreSQL."""

from __future__ import annotations

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
    ActionStopComplaint,
    ValidateComplaintForm,
)
from actions.priority import angry_tone, ticket_priority
from actions.tickets import ActionListTickets, ActionSubmitComplaint
from bot.storage import tickets, transcript
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import TicketPriority

REQUIRED = ["complaint_description", "order_number", "complaint_category", "desired_resolution", "contact", "complaint_confirmed"]
DOMAIN = {
    "forms": {"complaint_form": {"required_slots": REQUIRED}},
    "slots": {slot: {"type": "text", "mappings": [{"type": "custom"}]} for slot in REQUIRED},
}


def tracker(text: str, intent: str, *, requested: str | None = None, entities: list[dict] | None = None, slots: dict | None = None,
            metadata: dict | None = None, sender: str = "tg-42") -> Tracker:
    return Tracker.from_dict({
        "sender_id": sender,
        "slots": {**dict.fromkeys(REQUIRED), "requested_slot": requested, **(slots or {})},
        "latest_message": {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or [], "metadata": metadata or {}},
        "events": [],
        "active_loop": {"name": "complaint_form"},
    })


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
        "complaint_category": "damaged_or_wrong_item",
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
    slots, _ = await validate(tracker("it's a12345", "inform", requested="order_number", entities=[entity("order_number", "a12345")]))
    assert slots == {"order_number": "A12345"}
    slots, _ = await validate(tracker("actually it's order A12346", "inform", requested="contact",
                                      slots={"order_number": "A12345"}, entities=[entity("order_number", "A12346")]))
    assert slots["order_number"] == "A12346"


async def test_button_payloads_and_free_text_both_choose_a_category() -> None:
    slots, _ = await validate(tracker('/inform{"complaint_category":"billing"}', "inform", requested="complaint_category",
                                      entities=[entity("complaint_category", "billing")]))
    assert slots["complaint_category"] == "billing"
    slots, _ = await validate(tracker("the courier was late again", "inform", requested="complaint_category"))
    assert slots["complaint_category"] == "delivery"
    slots, _ = await validate(tracker("hard to say really", "inform", requested="complaint_category"))
    assert slots["complaint_category"] == "other"


async def test_a_forged_category_value_is_not_accepted() -> None:
    slots, _ = await validate(tracker("x", "inform", requested="complaint_category", entities=[entity("complaint_category", "admin")]))
    assert slots["complaint_category"] == "other"


async def test_the_last_resolution_mentioned_wins() -> None:
    slots, _ = await validate(tracker("not a refund, I'd like a replacement", "inform", requested="desired_resolution"))
    assert slots["desired_resolution"] == "replacement"


async def test_an_unclear_resolution_is_asked_again() -> None:
    slots, _ = await validate(tracker("hmm", "inform", requested="desired_resolution"))
    assert slots == {"desired_resolution": None}


@pytest.mark.parametrize(("text", "found", "expected"), [
    ("dana@example.org", entity("email", "dana@example.org"), "dana@example.org"),
    ("+44 20 7946 0958", entity("phone", "+44 20 7946 0958"), "+44 20 7946 0958"),
    ("07700 900123", None, "07700 900123"),
])
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
    slots, _ = await validate(tracker("I'd rather have a replacement", "inform", requested="complaint_confirmed",
                                      slots={"desired_resolution": "refund"}))
    assert slots["desired_resolution"] == "replacement" and slots["complaint_confirmed"] is None


async def test_the_summary_reads_in_words() -> None:
    dispatcher = CollectingDispatcher()
    t = tracker("", "inform", slots={"complaint_category": "damaged_or_wrong_item", "desired_resolution": "just_informing",
                                    "order_number": "none", "contact": "none"})
    await ActionAskComplaintConfirmed().run(dispatcher, t, DOMAIN)
    message = dispatcher.messages[0]
    assert message["response"] == "utter_ask_complaint_confirmed"
    assert (message["complaint_category"], message["order_number"], message["contact"]) == (
        "your item arriving damaged or wrong", "no order number", "this chat")


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


def test_priority_rule() -> None:
    assert ticket_priority(repeat=False, desired_resolution="repair", description="it broke") is TicketPriority.NORMAL
    assert ticket_priority(repeat=False, desired_resolution="refund", description="it broke") is TicketPriority.HIGH
    assert ticket_priority(repeat=True, desired_resolution="refund", description="THIS IS UNACCEPTABLE!!") is TicketPriority.URGENT
    assert angry_tone("WHERE IS MY PARCEL I PAID A WEEK AGO") and not angry_tone("where is my parcel, please?")


@pytest.fixture
async def action_db(sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> async_sessionmaker[AsyncSession]:
    """The test database as the action server's, with customer 42 already known to the app."""
    monkeypatch.setattr(actions.tickets, "sessions", lambda: sessions)
    async with sessions.begin() as session:
        for chat in (42, 43):
            customer = await transcript.upsert_customer(session, telegram_user_id=chat, first_name="Dana")
            await transcript.conversation_for_chat(session, chat_id=chat, customer=customer)
    return sessions


def _confirmed(update_id: int, category: str = "delivery", sender: str = "tg-42") -> Tracker:
    return tracker("yes", "affirm", sender=sender, metadata={"update_id": update_id, "telegram": {"first_name": "Dana"}}, slots={
        "complaint_description": "My parcel is a week late", "order_number": "A12345", "complaint_category": category,
        "desired_resolution": "refund", "contact": "none", "complaint_confirmed": True})


async def test_confirming_opens_one_ticket_and_apologises_by_name(action_db: async_sessionmaker[AsyncSession]) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, _confirmed(7), DOMAIN)
    apology, created = dispatcher.messages
    assert apology["response"] == "utter_apology" and apology["first_name"] == "Dana"
    assert apology["complaint_category_text"] == "the problem with your delivery"
    assert created["response"] == "utter_ticket_created"
    assert SlotSet("ticket_id", created["ticket_id"]) in events
    assert SlotSet("complaint_description", None) in events
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(7), DOMAIN)
    async with action_db() as session:
        stored = await tickets.for_customer(session, (await transcript.find_conversation(session, 42)).customer_id)
    assert len(stored) == 1
    ticket = stored[0]
    assert (ticket.reference, ticket.category, ticket.order_number, ticket.contact, ticket.priority) == (
        created["ticket_id"], "delivery", "A12345", None, TicketPriority.HIGH)


async def test_the_same_problem_again_gets_an_apology_that_says_so(action_db: async_sessionmaker[AsyncSession]) -> None:
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(1), DOMAIN)
    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, _confirmed(2), DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_apology_repeat"


async def test_a_database_failure_is_told_honestly_and_keeps_the_details(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable = create_sessionmaker(create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    monkeypatch.setattr(actions.tickets, "sessions", lambda: unreachable)
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, _confirmed(3), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_ticket_not_saved"]
    assert events == []


async def test_customers_see_only_their_own_tickets(action_db: async_sessionmaker[AsyncSession]) -> None:
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(1, sender="tg-43"), DOMAIN)
    dispatcher = CollectingDispatcher()
    await ActionListTickets().run(dispatcher, tracker("my complaints?", "check_ticket_status"), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_no_tickets"]
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed(2), DOMAIN)
    dispatcher = CollectingDispatcher()
    await ActionListTickets().run(dispatcher, tracker("my complaints?", "check_ticket_status"), DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_tickets_intro"
    assert dispatcher.messages[1]["text"].count("•") == 1 and "open, waiting for our team" in dispatcher.messages[1]["text"]


async def test_without_a_name_the_apology_does_not_pretend_to_know_it(action_db: async_sessionmaker[AsyncSession]) -> None:
    t = _confirmed(9)
    t.latest_message["metadata"] = {"update_id": 9}
    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, t, DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_apology_no_name"
