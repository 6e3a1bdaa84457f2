"""Custom actions, run as rasa_sdk runs them."""

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.greeting import ActionGreetCustomer, first_name_from


def _tracker(metadata: dict | None, slots: dict | None = None) -> Tracker:
    return Tracker.from_dict({
        "sender_id": "tg-1",
        "slots": slots or {},
        "latest_message": {"text": "hi", "intent": {"name": "greet"}, "metadata": metadata or {}},
        "events": [],
    })


async def test_greets_by_the_first_name_in_metadata() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionGreetCustomer().run(dispatcher, _tracker({"telegram": {"first_name": "Mia"}}), {})
    assert dispatcher.messages[0]["response"] == "utter_greet_name"
    assert dispatcher.messages[0]["first_name"] == "Mia"
    assert events == [SlotSet("first_name", "Mia")]


async def test_falls_back_to_the_remembered_name() -> None:
    dispatcher = CollectingDispatcher()
    await ActionGreetCustomer().run(dispatcher, _tracker({}, {"first_name": "Ola"}), {})
    assert dispatcher.messages[0]["first_name"] == "Ola"


async def test_greets_plainly_without_a_name() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionGreetCustomer().run(dispatcher, _tracker({"telegram": {"first_name": "   "}}), {})
    assert dispatcher.messages[0]["response"] == "utter_greet"
    assert events == []


def test_names_are_trimmed_and_bounded() -> None:
    assert first_name_from({"telegram": {"first_name": "  Anna   Maria "}}) == "Anna Maria"
    assert len(first_name_from({"telegram": {"first_name": "x" * 500}})) == 64
    assert first_name_from({"telegram": {"first_name": 12}}) is None
    assert first_name_from(None) is None
