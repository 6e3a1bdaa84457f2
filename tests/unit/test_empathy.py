"""Empathy first: the first reply apologises for the problem by name, once; repeats and anger are heard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import actions.acknowledge
import actions.tickets
from actions.acknowledge import ActionAcknowledgeComplaint
from actions.categories import OTHER, PATTERNS, PHRASES, category_of, is_repeat, problem_text
from actions.greeting import ActionGreetCustomer
from actions.priority import angry_tone
from actions.tickets import ActionSubmitComplaint
from bot.storage import tickets, transcript
from bot.storage.models import TicketPriority

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
RESPONSES = DOMAIN["responses"]
# What a customer may read from the moment a complaint starts until its ticket is confirmed (or it is stopped).
COMPLAINT_RESPONSES = [
    *(name for name in RESPONSES if name.startswith(("utter_complaint_ack", "utter_apology"))),
    "utter_complaint_resumed",
    "utter_greet_in_complaint",
    "utter_greet_in_complaint_name",
    "utter_ask_complaint_description",
    "utter_ask_order_number",
    "utter_invalid_order_number",
    "utter_ask_complaint_category",
    "utter_ask_desired_resolution",
    "utter_ask_complaint_photos",
    "utter_photo_expected",
    "utter_photo_added",
    "utter_ask_contact",
    "utter_invalid_contact",
    "utter_ask_complaint_confirmed",
    "utter_ask_what_to_change",
    "utter_ticket_created",
    "utter_ticket_not_saved",
    "utter_ticket_saved_later",
    "utter_complaint_stopped",
    "utter_complaint_handoff",
    "utter_offer_person_in_form",
    "utter_default",
]
CHEERFUL = re.compile(
    r"\b(great|no problem|awesome|perfect|happy to|good news|wonderful|excellent|lovely|yay)\b|!", re.IGNORECASE
)
# Openings of each problem, as customers might put them (none of them in tests/data/complaints*.yml).
SEEDS = {
    "damaged": ["the mug came cracked", "my table arrived broken", "the frame was smashed in transit"],
    "wrong_item": ["you sent the wrong item", "this is someone else's order", "i ordered a lamp and got a rug"],
    "wrong_size": ["you sent the wrong size", "the coat is way too small for the size i picked"],
    "missing_parts": ["the shelf came without the screws", "two pieces are missing"],
    "late": ["my parcel is late", "the delivery is overdue", "my order still isn't here"],
    "not_arrived": ["my order never arrived", "the parcel got lost", "nothing ever came"],
    "delivered_not_received": ["it says delivered but i have nothing", "marked as delivered, not here"],
    "charged_twice": ["you charged me twice", "i was double charged", "there are two payments for one order"],
    "refund_missing": ["i'm still waiting for my refund", "the refund never came"],
    "rude_staff": ["the driver was rude", "your agent hung up on me"],
    "no_reply": ["nobody replies to my emails", "i got no answer from support"],
    "stopped_working": ["the heater stopped working", "the radio won't turn on"],
    OTHER: ["i want to complain", "very poor quality", "i'm unhappy with my order"],
}
FILLERS = ["", "hi, ", "hello. ", "order A12345: ", "ok so ", "just to say, "]
ENDINGS = ["", ".", " please help", " - order B20999", " and i want a refund", " :("]


def tracker(text: str, *, name: str | None = "Dana", slots: dict[str, Any] | None = None) -> Tracker:
    metadata = {"telegram": {"first_name": name}} if name else {}
    return Tracker.from_dict(
        {
            "sender_id": "tg-42",
            "slots": {"first_name": None, "complaint_acknowledged": None, "complaint_category": None, **(slots or {})},
            "latest_message": {"text": text, "intent": {"name": "complain", "confidence": 0.9}, "metadata": metadata},
            "events": [],
        }
    )


async def acknowledge(t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionAcknowledgeComplaint().run(dispatcher, t, DOMAIN)
    return dispatcher.messages, events


async def no_earlier_ticket(tracker: Tracker, category: str) -> bool:
    return False


@settings(deadline=None, max_examples=150)
@given(
    category=st.sampled_from(sorted(SEEDS)),
    data=st.data(),
    before=st.sampled_from(FILLERS),
    after=st.sampled_from(ENDINGS),
    name=st.one_of(st.none(), st.text(st.characters(whitelist_categories=("L",)), min_size=1, max_size=20)),
    again=st.booleans(),
    angry=st.booleans(),
)
async def test_every_opening_is_apologised_for_naming_its_problem(
    category: str, data: st.DataObject, before: str, after: str, name: str | None, again: bool, angry: bool
) -> None:
    seed = data.draw(st.sampled_from(SEEDS[category]))
    text = before + seed + (" again" if again else "") + after + ("!!" if angry else "")
    with mock.patch.object(actions.acknowledge, "earlier_ticket_in", no_earlier_ticket):
        messages, events = await acknowledge(tracker(text, name=name))
    [said] = messages
    wanted = "utter_complaint_ack" + ("_angry" if angry else "") + ("_repeat" if again else "")
    assert said["response"] == wanted + ("" if name else "_no_name")
    assert said["complaint_problem_text"] == problem_text(category, text)
    assert said["complaint_problem_text"].startswith(PHRASES[category])
    if category == OTHER:
        assert "“" in said["complaint_problem_text"], "anything else is named in the customer's own words"
    assert said.get("first_name") == name
    assert SlotSet("complaint_acknowledged", True) in events
    assert SlotSet("complaint_repeat", again) in events and SlotSet("complaint_angry", angry) in events


async def test_a_resumed_complaint_is_not_apologised_for_again() -> None:
    messages, events = await acknowledge(
        tracker("i want to finish my complaint", slots={"complaint_acknowledged": True})
    )
    assert [m["response"] for m in messages] == ["utter_complaint_resumed"] and events == []


async def test_an_earlier_ticket_about_the_same_problem_makes_it_a_repeat(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actions.acknowledge, "sessions", lambda: sessions)
    async with sessions.begin() as session:
        customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=42, first_name="Dana")
        conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=42, customer=customer)
        await session.run_sync(
            tickets.create,
            idempotency_key="k1",
            conversation=conversation,
            category="late",
            description="late",
            desired_resolution="refund",
            priority=TicketPriority.NORMAL,
            order_number=None,
            contact=None,
            photos=[],
        )
    messages, events = await acknowledge(tracker("my parcel is late"))
    assert messages[0]["response"] == "utter_complaint_ack_repeat" and SlotSet("complaint_repeat", True) in events
    messages, _ = await acknowledge(tracker("you charged me twice"))
    assert messages[0]["response"] == "utter_complaint_ack", "another problem is not a repeat"


def _confirmed(category: str, *, repeat: bool = False, angry: bool = False) -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": "tg-42",
            "slots": {
                "complaint_description": "The lid came cracked",
                "order_number": "A12345",
                "complaint_category": category,
                "desired_resolution": "replacement",
                "complaint_photos": "none",
                "contact": "none",
                "complaint_confirmed": True,
                "complaint_repeat": repeat,
                "complaint_angry": angry,
            },
            "latest_message": {
                "text": "yes",
                "intent": {"name": "affirm"},
                "metadata": {"update_id": 5, "telegram": {"first_name": "Dana"}},
            },
            "events": [],
        }
    )


@pytest.fixture
async def known_customer(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> async_sessionmaker[AsyncSession]:
    monkeypatch.setattr(actions.tickets, "sessions", lambda: sessions)
    async with sessions.begin() as session:
        customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=42, first_name="Dana")
        await session.run_sync(transcript.conversation_for_chat, chat_id=42, customer=customer)
    return sessions


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> Any:
    async with sessions() as session:
        conversation = await session.run_sync(transcript.find_conversation, 42)
        [ticket] = await session.run_sync(tickets.for_customer, conversation.customer_id)
    return ticket


async def test_the_confirmation_thanks_without_a_second_apology(known_customer) -> None:
    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, _confirmed("damaged"), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_ticket_created"]
    assert (await _stored(known_customer)).priority is TicketPriority.NORMAL


async def test_a_repeat_said_in_words_raises_the_priority_and_keeps_the_final_apology(known_customer) -> None:
    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, _confirmed("damaged", repeat=True), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_apology_repeat", "utter_ticket_created"]
    assert (await _stored(known_customer)).priority is TicketPriority.HIGH


async def test_an_angry_opening_raises_the_priority_though_the_description_is_calm(known_customer) -> None:
    await ActionSubmitComplaint().run(CollectingDispatcher(), _confirmed("damaged", angry=True), DOMAIN)
    assert (await _stored(known_customer)).priority is TicketPriority.HIGH


def _texts(name: str) -> list[str]:
    return [variation["text"] for variation in RESPONSES[name]]


@pytest.mark.parametrize("name", COMPLAINT_RESPONSES)
def test_nothing_cheerful_is_said_during_a_complaint(name: str) -> None:
    cheerful = [text for text in _texts(name) if CHEERFUL.search(text)]
    assert not cheerful


def test_the_apologies_vary_name_the_problem_and_offer_an_angry_customer_a_person() -> None:
    acks = [name for name in RESPONSES if name.startswith("utter_complaint_ack")]
    assert len(acks) == 8
    for name in acks:
        assert all("{complaint_problem_text}" in t and "sorry" in t for t in _texts(name)), name
        assert ("{first_name}" in " ".join(_texts(name))) == (not name.endswith("_no_name")), name
        if "_repeat" in name:
            assert all("again" in t for t in _texts(name)), name
        else:
            assert len(RESPONSES[name]) >= 2, f"{name} needs variations"
        buttons = [[b["title"] for b in v.get("buttons", [])] for v in RESPONSES[name]]
        assert all(b == ["Talk to a person"] for b in buttons) == ("_angry" in name), name


def test_every_category_has_a_phrase_a_slot_value_and_a_button() -> None:
    categories = [name for name, _ in PATTERNS] + [OTHER]
    assert sorted(categories) == sorted(PHRASES)
    assert sorted(DOMAIN["slots"]["complaint_category"]["values"]) == sorted(categories)
    payloads = {b["payload"] for v in RESPONSES["utter_ask_complaint_category"] for b in v["buttons"]}
    assert payloads == {f'/inform{{"complaint_category":"{c}"}}' for c in categories}


def test_repeats_and_anger_in_words() -> None:
    assert is_repeat("wrong item AGAIN") and is_repeat("this is the third email i'm sending")
    assert is_repeat("i've called four times") and not is_repeat("shocking service, never again")
    assert not is_repeat("my card was billed two times")
    assert angry_tone("you sent me the wrong size AGAIN") and angry_tone("seriously??")
    assert not angry_tone("order A12345 is late") and not angry_tone("my parcel is late, UK address")
    assert category_of("where is my refund") == "refund_missing" and category_of("hello") is None


def test_anything_else_is_quoted_in_the_customers_words_and_kept_short() -> None:
    assert problem_text(OTHER, "terrible   service") == "what you've been through (“terrible service”)"
    long = problem_text(OTHER, "x" * 500)
    assert long.endswith("…”)") and len(long) < 120
    assert problem_text("delivery") == "the problem with your delivery", "earlier tickets keep their words"


async def test_a_hello_mid_complaint_is_answered_plainly() -> None:
    t = tracker("hi again")
    t.active_loop = {"name": "complaint_form"}
    dispatcher = CollectingDispatcher()
    assert await ActionGreetCustomer().run(dispatcher, t, DOMAIN) == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_greet_in_complaint_name"]
