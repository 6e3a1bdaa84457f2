"""Empathy first: the first reply to a complaint names the problem in plain words and apologises, once.

Runs when a complaint starts, before the complaint form asks its first question. It recognises the problem's
category (actions/categories.py), whether it happened before (the customer says so, or an earlier ticket of
theirs has the same category) and an angry tone (actions/priority.py); an angry customer is offered a person at
once. A complaint already acknowledged (resumed after "stop") is not apologised for a second time.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions.categories import OTHER, category_of, is_repeat, problem_text
from actions.db import chat_id, sessions
from actions.greeting import first_name_from
from actions.priority import angry_tone
from bot.storage import tickets, transcript

log = logging.getLogger(__name__)


def first_name(tracker: Tracker) -> str | None:
    """The customer's first name, from this message's metadata or as the greeting kept it."""
    return first_name_from(tracker.latest_message.get("metadata")) or tracker.get_slot("first_name")


def acknowledgement(*, repeat: bool, angry: bool, named: bool) -> str:
    """The response that apologises: said again, to an angry customer (with a person offered), by name."""
    return (
        "utter_complaint_ack"
        + ("_angry" if angry else "")
        + ("_repeat" if repeat else "")
        + ("" if named else "_no_name")
    )


async def earlier_ticket_in(tracker: Tracker, category: str) -> bool:
    """Whether this customer already has a ticket about the same problem (False when it cannot be checked)."""
    if category == OTHER:
        return False
    try:
        async with sessions()() as session:
            conversation = await session.run_sync(transcript.find_conversation, chat_id(tracker.sender_id) or 0)
            if conversation is None:
                return False
            return await session.run_sync(tickets.count_in_category, conversation.customer_id, category) > 0
    except (SQLAlchemyError, OSError):
        log.exception("could not look up the earlier tickets of %s", tracker.sender_id)
        return False


class ActionAcknowledgeComplaint(Action):
    """Apologises for the problem the customer names, before any question; once per complaint."""

    def name(self) -> str:
        return "action_acknowledge_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        if tracker.get_slot("complaint_acknowledged"):
            dispatcher.utter_message(response="utter_complaint_resumed")
            return []
        text = (tracker.latest_message.get("text") or "").strip()
        found = category_of(text)
        category = found or tracker.get_slot("complaint_category") or OTHER
        repeat = is_repeat(text) or await earlier_ticket_in(tracker, category)
        angry = angry_tone(text)
        name = first_name(tracker)
        dispatcher.utter_message(
            response=acknowledgement(repeat=repeat, angry=angry, named=bool(name)),
            first_name=name,
            complaint_problem_text=problem_text(category, text),
        )
        events = [
            SlotSet("complaint_acknowledged", True),
            SlotSet("complaint_repeat", repeat),
            SlotSet("complaint_angry", angry),
        ]
        return [*events, SlotSet("complaint_category", found)] if found else events
