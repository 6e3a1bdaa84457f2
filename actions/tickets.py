"""Opening the ticket when the customer confirms, apologising for what went wrong, and listing their tickets."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from actions.categories import LONG_WAIT, problem_text
from actions.complaints import CATEGORY_TEXT, FORM, NONE, STATUS_TEXT
from actions.db import chat_id, sessions, settings
from actions.greeting import first_name_from
from actions.pending import PendingComplaints
from actions.photos import capped
from actions.priority import ticket_priority
from bot.storage import tickets, transcript
from bot.storage.base import string_length
from bot.storage.models import Ticket

log = logging.getLogger(__name__)
COMPLAINT_SLOTS = (
    "complaint_description",
    "order_number",
    "complaint_category",
    "desired_resolution",
    "complaint_photos",
    "contact",
    "complaint_confirmed",
    "complaint_acknowledged",
    "complaint_repeat",
    "complaint_angry",
)
LATE_CONFIRMATION = "utter_ticket_saved_later"


def idempotency_key(tracker: Tracker) -> str:
    """One key per confirmation: the update that confirmed it, so a retried action finds its ticket."""
    marker = (tracker.latest_message.get("metadata") or {}).get("update_id")
    if marker is None:
        marker = next((e.get("timestamp") for e in reversed(tracker.events) if e.get("event") == "user"), "")
    return f"{tracker.sender_id}:{marker}"


def _optional(value: Any) -> str | None:
    return None if value in (None, NONE) else str(value)


def complaint_from(tracker: Tracker) -> dict[str, Any]:
    """The confirmed complaint as plain data: what is stored, now or (when the database is down) later."""
    return {
        "chat_id": chat_id(tracker.sender_id) or 0,
        "category": tracker.get_slot("complaint_category") or "other",
        "description": tracker.get_slot("complaint_description") or "",
        "desired_resolution": tracker.get_slot("desired_resolution") or "just_informing",
        "order_number": _optional(tracker.get_slot("order_number")),
        "contact": _optional(tracker.get_slot("contact")),
        "photos": capped(tracker.get_slot("complaint_photos")),
        "repeat": bool(tracker.get_slot("complaint_repeat")),
        "angry": bool(tracker.get_slot("complaint_angry")),
    }


async def store(session: AsyncSession, key: str, complaint: dict[str, Any]) -> tuple[Ticket, bool, bool]:
    """The ticket for this complaint, created unless it exists; also whether it is new and a repeat of the same problem."""
    conversation = await session.run_sync(transcript.find_conversation, complaint["chat_id"])
    if conversation is None:
        raise LookupError(f"no conversation for chat {complaint['chat_id']}")
    earlier = await session.run_sync(tickets.count_in_category, conversation.customer_id, complaint["category"])
    repeat = earlier > 0 or bool(complaint.get("repeat"))
    ticket, created = await session.run_sync(
        tickets.create,
        idempotency_key=key,
        conversation=conversation,
        category=complaint["category"],
        description=complaint["description"],
        desired_resolution=complaint["desired_resolution"],
        priority=ticket_priority(
            repeat=repeat,
            desired_resolution=complaint["desired_resolution"],
            description=complaint["description"],
            angry=bool(complaint.get("angry")),
        ),
        order_number=complaint["order_number"],
        contact=complaint["contact"],
        photos=complaint["photos"],
    )
    return ticket, created, repeat and created


async def store_pending(session: AsyncSession, entry: dict[str, Any]) -> str | None:
    """Store a complaint kept while the database was down; its reference when the ticket is new."""
    ticket, created, _ = await store(session, entry["key"], entry["complaint"])
    return ticket.reference if created else None


@cache
def pending() -> PendingComplaints:
    """The action server's waiting complaints, under the var directory."""
    return PendingComplaints(settings().pending_dir)


class ActionSubmitComplaint(Action):
    """Stores the confirmed complaint as a ticket: thanks, the ticket number, what happens next and when.

    The apology was said when the complaint started (actions/acknowledge.py); it is said again only where it adds
    something: the problem happened before, or it already cost the customer a long wait."""

    def name(self) -> str:
        return "action_submit_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        key, complaint = idempotency_key(tracker), complaint_from(tracker)
        name = first_name_from(tracker.latest_message.get("metadata")) or tracker.get_slot("first_name")
        apology = {
            "first_name": name,
            "complaint_category_text": problem_text(complaint["category"]),
        }
        cleared = [SlotSet(slot, None) for slot in COMPLAINT_SLOTS]
        try:
            async with sessions().begin() as session:
                ticket, _, repeat = await store(session, key, complaint)
        except (SQLAlchemyError, OSError) as exc:
            if refused(exc):
                log.exception("the database refused a detail of the complaint of %s", tracker.sender_id)
                return ask_again(dispatcher, complaint)
            log.exception("could not store the complaint of %s; keeping it to retry", tracker.sender_id)
            try:
                pending().keep(key, complaint, _texts(domain, LATE_CONFIRMATION))
            except (OSError, KeyError):
                log.exception("could not keep the complaint of %s on disk either", tracker.sender_id)
                dispatcher.utter_message(response="utter_ticket_not_saved")
                return []  # the slots still hold it: confirming again stores it once
            dispatcher.utter_message(response="utter_ticket_not_saved")
            return cleared
        except LookupError:
            log.exception("no conversation on record for %s", tracker.sender_id)
            dispatcher.utter_message(response="utter_ticket_not_saved")
            return []
        closing = final_apology(repeat=repeat, category=complaint["category"])
        if closing:
            dispatcher.utter_message(response=closing + ("" if name else "_no_name"), **apology)
        dispatcher.utter_message(response="utter_ticket_created", ticket_id=ticket.reference)
        return [SlotSet("ticket_id", ticket.reference), *cleared]


# A detail the database can refuse (its column's size), the slot it comes from and how the customer is asked again.
REASK = {
    "contact": ("contact", "utter_invalid_contact"),
    "order_number": ("order_number", "utter_invalid_order_number"),
}


def refused(exc: BaseException) -> bool:
    """Whether the database refused a value (SQLSTATE class 22, "data exception": too long for its column,
    malformed), which is no outage: the same complaint would be refused again, so it is not kept to retry."""
    if isinstance(exc, DataError):
        return True
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)  # asyncpg's errors come as DBAPIError
    return isinstance(state, str) and state.startswith("22")


def ask_again(dispatcher: CollectingDispatcher, complaint: dict[str, Any]) -> list[dict[str, Any]]:
    """The details the database refused are asked for again, then the summary; every other detail stays in the form.
    When none can be told apart, the form keeps them all (confirming again tries again)."""
    wrong = [
        field
        for field in REASK
        if complaint[field] and len(complaint[field]) > string_length(Ticket.__table__.c[field])
    ]
    if not wrong:
        dispatcher.utter_message(response="utter_ticket_not_saved")
        return []
    for field in wrong:
        dispatcher.utter_message(response=REASK[field][1])
    return [
        *(SlotSet(REASK[field][0], None) for field in wrong),
        SlotSet("complaint_confirmed", None),
        SlotSet("requested_slot", None),
        FollowupAction(FORM),
    ]


def final_apology(*, repeat: bool, category: str) -> str | None:
    """The apology the confirmation keeps: for a repeat, or a problem that already made the customer wait."""
    if repeat:
        return "utter_apology_repeat"
    return "utter_apology_wait" if category in LONG_WAIT else None


def _texts(domain: DomainDict, response: str) -> list[str]:
    """The text variations of a response, as the domain sent with the request has them."""
    texts = [v["text"] for v in (domain.get("responses") or {}).get(response, []) if v.get("text")]
    if not texts:
        raise KeyError(f"the domain has no text for {response}")
    return texts


class ActionListTickets(Action):
    """Lists the customer's own tickets and where each stands."""

    def name(self) -> str:
        return "action_list_tickets"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        try:
            async with sessions()() as session:
                conversation = await session.run_sync(transcript.find_conversation, chat_id(tracker.sender_id) or 0)
                found = await session.run_sync(tickets.for_customer, conversation.customer_id) if conversation else []
        except (SQLAlchemyError, OSError):
            log.exception("could not list the tickets of %s", tracker.sender_id)
            dispatcher.utter_message(response="utter_tickets_unavailable")
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
