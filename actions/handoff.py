"""Handing the conversation to a person: Rasa decides that one is needed and tells the app, which does the rest.

The contract with the app (it owns the state change, the agents' side and what the customer is told about
waiting): one custom message

    {"handoff": {"reason": R, "ticket_id": <slot ticket_id or None>, "collected": {<complaint slots that are set>},
                 "intents": [{"name": ..., "confidence": ...}, ...the last 5 user messages, newest last],
                 "message": <latest user text>,
                 "article": {"id", "title", "url", "use", "helpful"}  <- only when the bot offered a help-center article
                }}

with R one of REASONS, after a short response to the customer; then the conversation is paused. An active form
ends, its slots stay: the app resumes (or restarts) the tracker when the conversation comes back to the bot.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.kb_answer import SLOT as ARTICLE_SLOT
from actions.kb_answer import offer_article
from actions.photos import capped

CUSTOMER_REQUEST, FALLBACKS, FRUSTRATION, COMPLAINT = "customer_request", "fallbacks", "frustration", "complaint"
REASONS = (CUSTOMER_REQUEST, FALLBACKS, FRUSTRATION, COMPLAINT)
COLLECTED_SLOTS = (
    "complaint_description",
    "order_number",
    "complaint_category",
    "desired_resolution",
    "complaint_photos",
    "contact",
)
RECENT_INTENTS = 5
FALLBACK_INTENT = "nlu_fallback"
COMPLAINT_FORM = "complaint_form"
# Where a conversation starts afresh: nothing before it counts as "in a row" or "since the ticket".
NEW_START = {"session_started", "restart"}
OFFER_PERSON_AFTER = 2  # consecutive fallbacks: the second offers a person
HAND_OVER_AFTER = 3  # the third hands over without asking
# What the customer is told first, by reason.
RESPONSES = {
    CUSTOMER_REQUEST: "utter_request_human",
    FALLBACKS: "utter_handoff_fallbacks",
    FRUSTRATION: "utter_frustration_sorry",
    COMPLAINT: "utter_handoff_complaint",
}


def _user_intent(event: dict[str, Any]) -> dict[str, Any]:
    return (event.get("parse_data") or {}).get("intent") or {}


def collected(tracker: Tracker) -> dict[str, Any]:
    """The complaint details the customer has given so far."""
    found = {slot: tracker.get_slot(slot) for slot in COLLECTED_SLOTS if tracker.get_slot(slot) is not None}
    if "complaint_photos" in found:  # the slot may be forged: at most MAX_PHOTOS reach the desk
        found["complaint_photos"] = capped(found["complaint_photos"])
    return found


def recent_intents(tracker: Tracker, limit: int = RECENT_INTENTS) -> list[dict[str, Any]]:
    """The intents of the last `limit` user messages, newest last."""
    users = [e for e in tracker.events if e.get("event") == "user"][-limit:]
    return [{"name": _user_intent(e).get("name"), "confidence": _user_intent(e).get("confidence")} for e in users]


def handoff_payload(tracker: Tracker, reason: str, article: dict[str, Any] | None = None) -> dict[str, Any]:
    """The custom message that tells the app a person is needed, with everything they need to pick it up: the
    help-center article the bot offered last (`article`, else the slot), with the customer's Yes / No on it."""
    if reason not in REASONS:
        raise ValueError(f"unknown handoff reason {reason!r}")
    payload: dict[str, Any] = {
        "reason": reason,
        "ticket_id": tracker.get_slot("ticket_id"),
        "collected": collected(tracker),
        "intents": recent_intents(tracker),
        "message": tracker.latest_message.get("text"),
    }
    offered = article if article is not None else tracker.get_slot(ARTICLE_SLOT)
    if isinstance(offered, dict) and offered.get("title"):
        payload["article"] = {key: offered.get(key) for key in ("id", "title", "url", "use", "helpful")}
    return {"handoff": payload}


def hand_over(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    reason: str,
    response: str | None = None,
    article: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Say so to the customer, tell the app, end any form (keeping its slots) and pause the conversation."""
    dispatcher.utter_message(response=response or RESPONSES[reason])
    dispatcher.utter_message(json_message=handoff_payload(tracker, reason, article))
    ended = [ActiveLoop(None), SlotSet("requested_slot", None)] if tracker.active_loop_name else []
    return [*ended, ConversationPaused()]


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many user messages in a row, up to the latest, were not understood (nlu_fallback)."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") in NEW_START:
            break
        if event.get("event") != "user":
            continue
        if _user_intent(event).get("name") != FALLBACK_INTENT:
            break
        count += 1
    return count


def ticket_just_created(tracker: Tracker) -> bool:
    """Whether a ticket was created in this session, and no complaint was started since.

    action_submit_complaint sets ticket_id only when it stores the ticket; a complaint form activated
    after that is a new complaint, and a new session is a new conversation.
    """
    for event in reversed(tracker.events):
        if event.get("event") in NEW_START:
            return False
        if event.get("event") == "active_loop" and event.get("name") == COMPLAINT_FORM:
            return False
        if event.get("event") == "slot" and event.get("name") == "ticket_id" and event.get("value"):
            return True
    return False


def reason_for(tracker: Tracker) -> str:
    """Why a person is needed, from what the customer just said."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if intent == "frustration":
        return FRUSTRATION
    if intent == FALLBACK_INTENT:
        return FALLBACKS
    # A person asked for right after a complaint was confirmed (the ticket message offers the button):
    # they take over that ticket.
    if ticket_just_created(tracker) and tracker.get_slot("ticket_id"):
        return COMPLAINT
    return CUSTOMER_REQUEST


class ActionHandoff(Action):
    """A person is needed (asked for, or the customer is clearly frustrated): hand over with the whole context."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        return hand_over(dispatcher, tracker, reason_for(tracker))


class ActionFallback(Action):
    """A message not understood: answered from a help-center article when the search is confident (never during a
    form: actions/kb_answer.py); otherwise ask to rephrase, the second in a row offers a person, the third hands over.

    During the complaint form the form asks its question again after the first two (nlu/complaints.yml).
    """

    def name(self) -> str:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        answered = await offer_article(dispatcher, tracker)
        if answered is not None:
            return answered
        count = consecutive_fallbacks(tracker)
        if count >= HAND_OVER_AFTER:
            return hand_over(dispatcher, tracker, FALLBACKS)
        if count < OFFER_PERSON_AFTER:
            dispatcher.utter_message(response="utter_default")
        else:
            # In a form a "no" answers the form's question ("I don't have one"): no such button there.
            dispatcher.utter_message(
                response="utter_offer_person_in_form" if tracker.active_loop_name else "utter_offer_person"
            )
        return []
