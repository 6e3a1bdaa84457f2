"""Greeting the customer by name, as a returning customer when they are one, with their open tickets in mind."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions.complaints import STATUS_TEXT
from actions.db import chat_id, sessions, settings
from bot import clock
from bot.storage import memory

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 64


def first_name_from(metadata: dict[str, Any] | None) -> str | None:
    """The customer's first name from the app's metadata, trimmed; None when absent or blank."""
    name = ((metadata or {}).get("telegram") or {}).get("first_name")
    if not isinstance(name, str):
        return None
    name = " ".join(name.split())[:MAX_NAME_CHARS]
    return name or None


async def recall(tracker: Tracker) -> memory.CustomerMemory | None:
    """What our database remembers of this customer; None if nothing, or if the database can't be reached."""
    user_id = ((tracker.latest_message.get("metadata") or {}).get("telegram") or {}).get("user_id") or chat_id(
        tracker.sender_id
    )
    if user_id is None:
        return None
    try:
        async with sessions()() as session:
            return await session.run_sync(
                memory.remember,
                telegram_user_id=int(user_id),
                today=clock.now(),
                regular_min_visits=settings().regular_min_visits,
                regular_min_tickets=settings().regular_min_tickets,
            )
    except (SQLAlchemyError, OSError):
        log.exception("could not recall customer %s; greeting without history", user_id)
        return None


class ActionGreetCustomer(Action):
    """Greets by first name (welcoming back a returning customer) and mentions complaints still open."""

    def name(self) -> str:
        return "action_greet_customer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        name = first_name_from(tracker.latest_message.get("metadata")) or tracker.get_slot("first_name")
        if tracker.active_loop_name == "complaint_form":
            # Mid-complaint a hello is answered plainly (nothing cheerful), and the form asks its question again.
            dispatcher.utter_message(response="utter_greet_in_complaint" + ("_name" if name else ""), first_name=name)
            return []
        known = await recall(tracker)
        greeting = "utter_greet_returning" if known and known.returning else "utter_greet"
        dispatcher.utter_message(response=f"{greeting}_name" if name else greeting, first_name=name)
        if known and known.open_tickets:
            latest = known.open_tickets[0]
            dispatcher.utter_message(
                response="utter_open_ticket_reminder"
                if len(known.open_tickets) == 1
                else "utter_open_tickets_reminder",
                ticket_id=latest.reference,
                ticket_status=STATUS_TEXT[latest.status],
                count=len(known.open_tickets),
            )
        return [SlotSet("first_name", name)] if name else []
