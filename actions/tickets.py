"""Opening the ticket when the customer confirms, apologising for what went wrong, and listing their tickets."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions.complaints import CATEGORY_TEXT, NONE, STATUS_TEXT
from actions.db import chat_id, sessions
from actions.greeting import first_name_from
from actions.priority import ticket_priority
from bot.storage import tickets, transcript

log = logging.getLogger(__name__)
COMPLAINT_SLOTS = ("complaint_description", "order_number", "complaint_category", "desired_resolution", "contact", "complaint_confirmed")


def idempotency_key(tracker: Tracker) -> str:
    """One key per confirmation: the update that confirmed it, so a retried action finds its ticket."""
    marker = (tracker.latest_message.get("metadata") or {}).get("update_id")
    if marker is None:
        marker = next((e.get("timestamp") for e in reversed(tracker.events) if e.get("event") == "user"), "")
    return f"{tracker.sender_id}:{marker}"


def _optional(value: Any) -> str | None:
    return None if value in (None, NONE) else str(value)


class ActionSubmitComplaint(Action):
    """Stores the confirmed complaint as a ticket, apologises, and says what happens next."""

    def name(self) -> str:
        return "action_submit_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        category = tracker.get_slot("complaint_category") or "other"
        description = tracker.get_slot("complaint_description") or ""
        resolution = tracker.get_slot("desired_resolution") or "just_informing"
        try:
            async with sessions().begin() as session:
                conversation = await transcript.find_conversation(session, chat_id(tracker.sender_id) or 0)
                if conversation is None:
                    raise LookupError(f"no conversation for {tracker.sender_id}")
                repeat = await tickets.count_in_category(session, conversation.customer_id, category) > 0
                ticket, created = await tickets.create(
                    session,
                    idempotency_key=idempotency_key(tracker),
                    conversation=conversation,
                    category=category,
                    description=description,
                    desired_resolution=resolution,
                    priority=ticket_priority(repeat=repeat, desired_resolution=resolution, description=description),
                    order_number=_optional(tracker.get_slot("order_number")),
                    contact=_optional(tracker.get_slot("contact")),
                )
                repeat = repeat and created
        except (SQLAlchemyError, OSError, LookupError):
            log.exception("could not store the complaint of %s", tracker.sender_id)
            dispatcher.utter_message(response="utter_ticket_not_saved")
            return []
        name = first_name_from(tracker.latest_message.get("metadata")) or tracker.get_slot("first_name")
        response = ("utter_apology_repeat" if repeat else "utter_apology") + ("" if name else "_no_name")
        dispatcher.utter_message(
            response=response, first_name=name, complaint_category_text=CATEGORY_TEXT.get(category, CATEGORY_TEXT["other"])
        )
        dispatcher.utter_message(response="utter_ticket_created", ticket_id=ticket.reference)
        return [SlotSet("ticket_id", ticket.reference), *(SlotSet(slot, None) for slot in COMPLAINT_SLOTS)]


class ActionListTickets(Action):
    """Lists the customer's own tickets and where each stands."""

    def name(self) -> str:
        return "action_list_tickets"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        try:
            async with sessions()() as session:
                conversation = await transcript.find_conversation(session, chat_id(tracker.sender_id) or 0)
                found = await tickets.for_customer(session, conversation.customer_id) if conversation else []
        except (SQLAlchemyError, OSError):
            log.exception("could not list the tickets of %s", tracker.sender_id)
            dispatcher.utter_message(response="utter_ticket_not_saved")
            return []
        if not found:
            dispatcher.utter_message(response="utter_no_tickets")
            return []
        lines = [
            f"• {t.reference} ({t.created_at:%d %b %Y}): {CATEGORY_TEXT.get(t.category, t.category)}, {STATUS_TEXT[t.status]}"
            for t in found
        ]
        dispatcher.utter_message(response="utter_tickets_intro")
        dispatcher.utter_message(text="\n".join(lines))
        return []
