"""Greeting the customer by the first name the app passes in message metadata."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

MAX_NAME_CHARS = 64


def first_name_from(metadata: dict[str, Any] | None) -> str | None:
    """The customer's first name from the app's metadata, trimmed; None when absent or blank."""
    name = ((metadata or {}).get("telegram") or {}).get("first_name")
    if not isinstance(name, str):
        return None
    name = " ".join(name.split())[:MAX_NAME_CHARS]
    return name or None


class ActionGreetCustomer(Action):
    """Greets by first name when the app told us the name, plainly otherwise."""

    def name(self) -> str:
        return "action_greet_customer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        name = first_name_from(tracker.latest_message.get("metadata")) or tracker.get_slot("first_name")
        if not name:
            dispatcher.utter_message(response="utter_greet")
            return []
        dispatcher.utter_message(response="utter_greet_name", first_name=name)
        return [SlotSet("first_name", name)]
