"""The greeting action, run as rasa_sdk runs it, against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import actions.greeting
from actions.greeting import ActionGreetCustomer, first_name_from
from bot import clock
from bot.storage import tickets, transcript
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import Message, TicketPriority


def _tracker(metadata: dict | None, slots: dict | None = None) -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": "tg-1",
            "slots": slots or {},
            "latest_message": {"text": "hi", "intent": {"name": "greet"}, "metadata": metadata or {}},
            "events": [],
        }
    )


@pytest.fixture
async def db(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> async_sessionmaker[AsyncSession]:
    """The test database as the action server's."""
    monkeypatch.setattr(actions.greeting, "sessions", lambda: sessions)
    return sessions


async def _visit(sessions: async_sessionmaker[AsyncSession], days_ago: int, *, ticket: bool = False) -> None:
    async with sessions.begin() as session:
        customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=1, first_name="Mia")
        conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=1, customer=customer)
        await session.run_sync(
            transcript.record_incoming, conversation=conversation, update_id=100 + days_ago, kind="text", text="hi"
        )
        await session.execute(
            update(Message)
            .where(Message.update_id == 100 + days_ago)
            .values(created_at=clock.now() - timedelta(days=days_ago))
        )
        if ticket:
            await session.run_sync(
                tickets.create,
                idempotency_key=f"k{days_ago}",
                conversation=conversation,
                category="delivery",
                description="late",
                desired_resolution="refund",
                priority=TicketPriority.NORMAL,
            )


async def _greet(metadata: dict | None, slots: dict | None = None) -> tuple[list[dict], list]:
    dispatcher = CollectingDispatcher()
    events = await ActionGreetCustomer().run(dispatcher, _tracker(metadata, slots), {})
    return dispatcher.messages, events


async def test_greets_a_new_customer_by_the_first_name_in_metadata(db) -> None:
    messages, events = await _greet({"telegram": {"first_name": "Mia", "user_id": 1}})
    assert [(m["response"], m["first_name"]) for m in messages] == [("utter_greet_name", "Mia")]
    assert events == [SlotSet("first_name", "Mia")]


async def test_welcomes_back_a_returning_customer_and_mentions_the_open_ticket(db) -> None:
    await _visit(db, days_ago=3, ticket=True)
    messages, _ = await _greet({"telegram": {"first_name": "Mia", "user_id": 1}})
    assert [m["response"] for m in messages] == ["utter_greet_returning_name", "utter_open_ticket_reminder"]
    assert messages[1]["ticket_id"].startswith("T") and messages[1]["ticket_status"] == "open, waiting for our team"


async def test_several_open_tickets_are_counted(db) -> None:
    await _visit(db, days_ago=5, ticket=True)
    await _visit(db, days_ago=2, ticket=True)
    messages, _ = await _greet({"telegram": {"first_name": "Mia", "user_id": 1}})
    assert messages[1]["response"] == "utter_open_tickets_reminder" and messages[1]["count"] == 2


async def test_same_day_messages_do_not_make_a_returning_customer(db) -> None:
    await _visit(db, days_ago=0)
    messages, _ = await _greet({"telegram": {"first_name": "Mia", "user_id": 1}})
    assert [m["response"] for m in messages] == ["utter_greet_name"]


async def test_falls_back_to_the_remembered_name(db) -> None:
    messages, _ = await _greet({}, {"first_name": "Ola"})
    assert messages[0]["first_name"] == "Ola"


async def test_greets_plainly_without_a_name(db) -> None:
    messages, events = await _greet({"telegram": {"first_name": "   "}})
    assert messages[0]["response"] == "utter_greet"
    assert events == []


async def test_a_database_outage_still_gets_a_greeting(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable = create_sessionmaker(create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    monkeypatch.setattr(actions.greeting, "sessions", lambda: unreachable)
    messages, _ = await _greet({"telegram": {"first_name": "Mia", "user_id": 1}})
    assert [m["response"] for m in messages] == ["utter_greet_name"]


def test_names_are_trimmed_and_bounded() -> None:
    assert first_name_from({"telegram": {"first_name": "  Anna   Maria "}}) == "Anna Maria"
    assert len(first_name_from({"telegram": {"first_name": "x" * 500}})) == 64
    assert first_name_from({"telegram": {"first_name": 12}}) is None
    assert first_name_from(None) is None
