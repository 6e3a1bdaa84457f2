"""Handing over to a person, run as rasa_sdk runs the actions: when, why, and the payload the app receives."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.complaints import ActionComplaintHandoff
from actions.handoff import ActionFallback, ActionHandoff, consecutive_fallbacks, handoff_payload, ticket_just_created

COMPLAINT_SLOTS = [
    "complaint_description",
    "order_number",
    "complaint_category",
    "desired_resolution",
    "complaint_photos",
    "contact",
]
PAYLOAD_KEYS = {"reason", "ticket_id", "collected", "intents", "message"}


def user(text: str, intent: str, confidence: float = 0.9) -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"text": text, "intent": {"name": intent, "confidence": confidence}},
    }


def bot_action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


def slot(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def tracker(events: list[dict[str, Any]], *, slots: dict[str, Any] | None = None, form: str | None = None) -> Tracker:
    """A tracker whose latest message is the last user event."""
    latest = next(e for e in reversed(events) if e["event"] == "user")
    return Tracker.from_dict(
        {
            "sender_id": "tg-42",
            "slots": {
                **dict.fromkeys([*COMPLAINT_SLOTS, "complaint_confirmed", "ticket_id", "requested_slot"]),
                **(slots or {}),
            },
            "latest_message": {"text": latest["text"], **latest["parse_data"], "entities": [], "metadata": {}},
            "events": events,
            "active_loop": {"name": form} if form else {},
        }
    )


async def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], list[str | None], dict[str, Any] | None]:
    """The events, the responses uttered, and the handoff payload (if any) of one run."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {})
    payloads = [m["custom"]["handoff"] for m in dispatcher.messages if (m.get("custom") or {}).get("handoff")]
    assert len(payloads) <= 1
    return events, [m.get("response") for m in dispatcher.messages if not m.get("custom")], (payloads or [None])[0]


async def test_a_person_asked_for_is_handed_over_and_the_conversation_paused() -> None:
    t = tracker(
        [
            bot_action("action_listen"),
            user("hello", "greet", 0.98),
            bot_action("action_greet_customer"),
            user("can i talk to someone real", "request_human", 0.87),
        ]
    )
    events, responses, payload = await run(ActionHandoff(), t)
    assert responses == ["utter_request_human"]
    assert payload == {
        "reason": "customer_request",
        "ticket_id": None,
        "collected": {},
        "intents": [{"name": "greet", "confidence": 0.98}, {"name": "request_human", "confidence": 0.87}],
        "message": "can i talk to someone real",
    }
    assert events == [ConversationPaused()]


async def test_the_response_comes_before_the_payload() -> None:
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, tracker([user("a person please", "request_human")]), {})
    assert [
        ("response" in m and m["response"] is not None, "handoff" in (m.get("custom") or {}))
        for m in dispatcher.messages
    ] == [(True, False), (False, True)]


async def test_frustration_is_apologised_for_and_handed_over() -> None:
    events, responses, payload = await run(ActionHandoff(), tracker([user("you are useless", "frustration", 0.8)]))
    assert responses == ["utter_frustration_sorry"]
    assert payload["reason"] == "frustration"
    assert payload["message"] == "you are useless"
    assert events == [ConversationPaused()]


async def test_frustration_mid_form_ends_the_form_and_hands_over_what_was_collected() -> None:
    slots = {
        "complaint_description": "the sofa cushion is torn",
        "complaint_category": "damaged_or_wrong_item",
        "complaint_photos": ["AgACAgIAAxkBAAIB"],
        "requested_slot": "order_number",
    }
    t = tracker(
        [
            user("the sofa cushion is torn", "complain"),
            bot_action("complaint_form"),
            user("THIS IS SO SLOW", "frustration"),
        ],
        slots=slots,
        form="complaint_form",
    )
    events, responses, payload = await run(ActionComplaintHandoff(), t)
    assert responses == ["utter_frustration_sorry"]
    assert payload["reason"] == "frustration"
    assert payload["collected"] == {
        "complaint_description": "the sofa cushion is torn",
        "complaint_category": "damaged_or_wrong_item",
        "complaint_photos": ["AgACAgIAAxkBAAIB"],
    }
    assert events == [ActiveLoop(None), SlotSet("requested_slot", None), ConversationPaused()]
    assert not any(e["event"] == "slot" and e["name"] in COMPLAINT_SLOTS for e in events), "the slots stay"


async def test_a_person_asked_for_mid_complaint_gets_the_same_payload_shape() -> None:
    t = tracker(
        [user("my lamp broke", "complain"), bot_action("complaint_form"), user("a human please", "request_human")],
        slots={
            "complaint_description": "my lamp broke",
            "order_number": "none",
            "requested_slot": "complaint_category",
        },
        form="complaint_form",
    )
    events, responses, payload = await run(ActionComplaintHandoff(), t)
    assert responses == ["utter_complaint_handoff"]
    assert set(payload) == PAYLOAD_KEYS
    assert payload["reason"] == "customer_request"
    assert payload["collected"] == {"complaint_description": "my lamp broke", "order_number": "none"}
    assert [i["name"] for i in payload["intents"]] == ["complain", "request_human"]
    assert events == [ActiveLoop(None), SlotSet("requested_slot", None), ConversationPaused()]


def complaint_then(*later: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"event": "session_started"},
        user("my order B12345 was charged twice", "complain"),
        bot_action("complaint_form"),
        {"event": "active_loop", "name": "complaint_form"},
        user("/affirm", "affirm", 1.0),
        bot_action("complaint_form"),
        {"event": "active_loop", "name": None},
        bot_action("action_submit_complaint"),
        slot("ticket_id", "T000042"),
        slot("complaint_description", None),
        *later,
    ]


async def test_a_person_asked_for_right_after_the_ticket_takes_over_the_complaint() -> None:
    t = tracker(
        complaint_then(bot_action("action_listen"), user("/request_human", "request_human", 1.0)),
        slots={"ticket_id": "T000042"},
    )
    events, responses, payload = await run(ActionHandoff(), t)
    assert responses == ["utter_handoff_complaint"]
    assert payload["reason"] == "complaint"
    assert payload["ticket_id"] == "T000042"
    assert payload["message"] == "/request_human"
    assert events == [ConversationPaused()]


async def test_a_question_in_between_still_hands_over_the_ticket() -> None:
    later = [
        user("how long do refunds take", "faq"),
        bot_action("utter_faq"),
        user("can i talk to a person", "request_human"),
    ]
    t = tracker(complaint_then(*later), slots={"ticket_id": "T000042"})
    assert (await run(ActionHandoff(), t))[2]["reason"] == "complaint"


@pytest.mark.parametrize(
    "later",
    [
        # A new complaint started since the ticket.
        [
            user("and another thing, my chair is wobbly", "complain"),
            bot_action("complaint_form"),
            {"event": "active_loop", "name": "complaint_form"},
            user("/request_human", "request_human"),
        ],
        # A new session: the ticket is from an earlier conversation.
        [{"event": "session_started"}, user("a person please", "request_human")],
    ],
)
async def test_a_ticket_from_before_is_not_the_reason(later: list[dict[str, Any]]) -> None:
    t = tracker(complaint_then(*later), slots={"ticket_id": "T000042"})
    assert not ticket_just_created(t)
    _, _, payload = await run(ActionHandoff(), t)
    assert payload["reason"] == "customer_request"
    assert payload["ticket_id"] == "T000042"  # the slot, as the contract says


async def test_a_ticket_not_saved_is_not_the_reason() -> None:
    events = [
        {"event": "session_started"},
        user("/affirm", "affirm"),
        bot_action("action_submit_complaint"),
        user("/request_human", "request_human"),
    ]
    assert not ticket_just_created(tracker(events))


async def test_intents_are_the_last_five_newest_last() -> None:
    names = ["greet", "faq", "complain", "inform", "deny", "affirm", "request_human"]
    events = [
        e
        for i, name in enumerate(names)
        for e in (user(f"message {i}", name, 0.5 + i / 100), bot_action("action_listen"))
    ]
    payload = handoff_payload(tracker(events), "customer_request")["handoff"]
    assert payload["intents"] == [{"name": n, "confidence": 0.5 + i / 100} for i, n in enumerate(names)][-5:]


def test_an_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown handoff reason"):
        handoff_payload(tracker([user("x", "request_human")]), "because")


def fallbacks(count: int, before: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    events = list(before or [])
    for i in range(count):
        events += [
            user(f"gibberish {i}", "nlu_fallback", 0.35),
            bot_action("action_fallback"),
            bot_action("action_listen"),
        ]
    return events[:-2]  # the latest message is the last fallback, not answered yet


async def test_the_first_fallback_asks_to_rephrase() -> None:
    events, responses, payload = await run(ActionFallback(), tracker(fallbacks(1, [user("hi", "greet")])))
    assert (events, responses, payload) == ([], ["utter_default"], None)


async def test_the_second_fallback_in_a_row_offers_a_person() -> None:
    events, responses, payload = await run(ActionFallback(), tracker(fallbacks(2)))
    assert (events, responses, payload) == ([], ["utter_offer_person"], None)


@pytest.mark.parametrize("count", [3, 4])
async def test_the_third_fallback_in_a_row_hands_over(count: int) -> None:
    events, responses, payload = await run(ActionFallback(), tracker(fallbacks(count)))
    assert responses == ["utter_handoff_fallbacks"]
    assert payload["reason"] == "fallbacks"
    assert payload["message"] == f"gibberish {count - 1}"
    assert [i["name"] for i in payload["intents"]] == ["nlu_fallback"] * count
    assert events == [ConversationPaused()]


async def test_the_second_fallback_in_a_form_offers_a_person_without_a_no_button() -> None:
    t = tracker(
        fallbacks(2, [user("my kettle leaks", "complain"), bot_action("complaint_form")]),
        slots={"requested_slot": "order_number"},
        form="complaint_form",
    )
    events, responses, payload = await run(ActionFallback(), t)
    assert (events, responses, payload) == ([], ["utter_offer_person_in_form"], None)


async def test_an_understood_message_in_between_starts_the_count_again() -> None:
    events = (
        fallbacks(2)
        + [
            bot_action("action_fallback"),
            bot_action("action_listen"),
            user("/deny", "deny", 1.0),
            bot_action("utter_ask_rephrase"),
            bot_action("action_listen"),
        ]
        + fallbacks(2)
    )
    t = tracker(events)
    assert consecutive_fallbacks(t) == 2
    assert (await run(ActionFallback(), t))[1] == ["utter_offer_person"]


async def test_fallbacks_from_an_earlier_session_do_not_count() -> None:
    events = fallbacks(2) + [bot_action("action_fallback"), {"event": "session_started"}] + fallbacks(1)
    assert consecutive_fallbacks(tracker(events)) == 1


async def test_fallbacks_during_the_complaint_hand_over_what_was_collected() -> None:
    t = tracker(
        fallbacks(3, [user("my kettle leaks", "complain"), bot_action("complaint_form")]),
        slots={"complaint_description": "my kettle leaks", "requested_slot": "order_number"},
        form="complaint_form",
    )
    events, _, payload = await run(ActionFallback(), t)
    assert payload["reason"] == "fallbacks"
    assert payload["collected"] == {"complaint_description": "my kettle leaks"}
    assert events == [ActiveLoop(None), SlotSet("requested_slot", None), ConversationPaused()]
