"""The customer's data on SQLite and PostgreSQL: exported whole and alone, forgotten whole and alone."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bot.storage import buttons, handoffs, inbox, privacy, tickets, transcript
from bot.storage.models import (
    CallbackPayload,
    Conversation,
    Customer,
    Handoff,
    InboxUpdate,
    Message,
    Ticket,
    TicketPriority,
)
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database


async def _customer_with_history(sessions: async_sessionmaker[AsyncSession], user_id: int, name: str) -> None:
    """A customer who wrote, was answered, pressed nothing yet and filed one complaint."""
    async with sessions.begin() as session:
        customer = await session.run_sync(
            transcript.upsert_customer, telegram_user_id=user_id, first_name=name, username=name.lower()
        )
        conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=user_id, customer=customer)
        update_id = user_id * 10
        await session.run_sync(inbox.store, update_id=update_id, chat_id=user_id, payload={"update_id": update_id})
        await session.run_sync(
            transcript.record_incoming,
            conversation=conversation,
            update_id=update_id,
            kind="text",
            text=f"{name}: my order A12345 is broken",
        )
        await session.run_sync(
            transcript.queue_outgoing, conversation=conversation, text=f"sorry {name}", update_id=update_id
        )
        await session.run_sync(buttons.register, chat_id=user_id, title="Yes", payload="/affirm")
        ticket, _ = await session.run_sync(
            tickets.create,
            idempotency_key=f"tg-{user_id}:{update_id}",
            conversation=conversation,
            category="damaged_or_wrong_item",
            description=f"{name}: my order A12345 is broken",
            desired_resolution="refund",
            priority=TicketPriority.HIGH,
            order_number="A12345",
            contact=f"{name.lower()}@example.com",
            photos=["photo-file-id"],
        )
        # A person helped: the copy relayed to the agent's chat stays out of the export; the handoff and its rating go in.
        handoff, _ = await session.run_sync(
            handoffs.open_handoff, conversation=conversation, ticket=ticket, reason="customer_request", context={}
        )
        handoff.csat, handoff.csat_comment = 5, f"{name} liked it"
        await session.run_sync(
            transcript.queue_outgoing,
            conversation=conversation,
            text=f"relayed copy for {name}",
            update_id=update_id + 1,
            chat_id=999,
            kind="relay",
        )


async def _count(session: AsyncSession, model: type, *where) -> int:
    return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def test_the_export_holds_exactly_that_customers_data(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _customer_with_history(sessions, 101, "Dana")
    await _customer_with_history(sessions, 202, "Zorro")
    async with sessions() as session:
        export = await session.run_sync(privacy.export_customer, 101)
    json.dumps(export)  # serialisable as it is
    assert export["customer"]["first_name"] == "Dana" and export["customer"]["username"] == "dana"
    [conversation] = export["conversations"]
    assert (conversation["chat_id"], conversation["state"]) == (101, "QUEUED")
    assert [(h["reason"], h["csat"], h["csat_comment"]) for h in conversation["handoffs"]] == [
        ("customer_request", 5, "Dana liked it")
    ]
    assert [(m["direction"], m["text"]) for m in conversation["messages"]] == [
        ("IN", "Dana: my order A12345 is broken"),
        ("OUT", "sorry Dana"),
    ]
    assert all(m["created_at"] for m in conversation["messages"])
    [ticket] = export["tickets"]
    assert (ticket["order_number"], ticket["contact"], ticket["priority"]) == ("A12345", "dana@example.com", "HIGH")
    assert "Zorro" not in json.dumps(export) and "zorro" not in json.dumps(export)


async def test_an_unknown_user_exports_an_empty_document(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _customer_with_history(sessions, 202, "Zorro")
    async with sessions() as session:
        export = await session.run_sync(privacy.export_customer, 101)
    assert (export["customer"], export["conversations"], export["tickets"]) == (None, [], [])


async def test_a_sent_export_keeps_no_copy_and_is_not_nested(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _customer_with_history(sessions, 101, "Dana")
    async with sessions.begin() as session:
        conversation = await session.run_sync(transcript.find_conversation, 101)
        queued = await session.run_sync(
            transcript.queue_outgoing,
            conversation=conversation,
            text="caption",
            update_id=5,
            kind="document",
            payload={"file_name": "my-data.json", "json": {"big": 1}},
        )
    async with sessions() as session:
        export = await session.run_sync(privacy.export_customer, 101)
    assert export["conversations"][0]["messages"][-1]["payload"] == {"file_name": "my-data.json"}
    async with sessions.begin() as session:
        await session.run_sync(transcript.mark_delivered, queued, telegram_message_id=9, file_id="F1")
    async with sessions() as session:
        assert (await session.get(Message, queued)).payload == {"file_name": "my-data.json", "file_id": "F1"}


async def test_forgetting_deletes_the_customer_and_anonymises_tickets(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _customer_with_history(sessions, 101, "Dana")
    await _customer_with_history(sessions, 202, "Zorro")
    async with sessions() as session:
        before = await session.run_sync(privacy.export_customer, 202)
    async with sessions.begin() as session:
        assert await session.run_sync(privacy.forget_customer, 101) == [101]
    async with sessions() as session:
        assert await _count(session, Customer, Customer.telegram_user_id == 101) == 0
        assert await _count(session, Conversation, Conversation.chat_id == 101) == 0
        assert await _count(session, Message, Message.chat_id == 101) == 0
        assert await _count(session, InboxUpdate, InboxUpdate.chat_id == 101) == 0
        assert await _count(session, CallbackPayload, CallbackPayload.chat_id == 101) == 0
        assert await _count(session, Handoff) == 1, "only the other customer's handoff is left"
        [kept] = await session.scalars(select(Ticket).where(Ticket.customer_id.is_(None)))
        assert (kept.customer_id, kept.conversation_id, kept.contact, kept.order_number, kept.photos) == (
            None,
            None,
            None,
            None,
            [],
        )
        assert kept.description == privacy.FORGOTTEN_DESCRIPTION
        assert "101" not in kept.idempotency_key
        assert (kept.category, kept.desired_resolution, kept.priority) == (
            "damaged_or_wrong_item",
            "refund",
            TicketPriority.HIGH,
        )
        assert await session.run_sync(privacy.export_customer, 202) == before
        assert await _count(session, InboxUpdate, InboxUpdate.chat_id == 202) == 1
        assert await _count(session, CallbackPayload, CallbackPayload.chat_id == 202) == 1


async def test_forgetting_an_unknown_user_changes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _customer_with_history(sessions, 202, "Zorro")
    async with sessions.begin() as session:
        assert await session.run_sync(privacy.forget_customer, 101) == []
    async with sessions() as session:
        assert await _count(session, Customer) == 1 and await _count(session, Message) == 3


def _rasa_tracker(path: Path, senders: list[str]) -> None:
    """A tracker db shaped like Rasa 3.6's SQLTrackerStore (table `events`)."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE events (id INTEGER NOT NULL, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) "
            "NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT, PRIMARY KEY (id))"
        )
        db.executemany(
            "INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, 'user', 1.0, '{}')",
            [(s,) for s in senders],
        )


def _senders(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT sender_id FROM events ORDER BY id")]


async def test_rasa_tracker_loses_only_that_senders_events(tmp_path: Path) -> None:
    tracker = tmp_path / "rasa-tracker.db"
    _rasa_tracker(tracker, ["tg-101", "tg-202", "tg-101", "tg-1010", "tg-101"])
    assert await privacy.forget_rasa_tracker(f"sqlite+aiosqlite:///{tracker}", "tg-101") == 3
    assert _senders(tracker) == ["tg-202", "tg-1010"]
    with sqlite3.connect(tracker) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "Rasa's file is left as Rasa made it"


async def test_rasa_tracker_missing_or_empty_is_nothing_to_delete(tmp_path: Path) -> None:
    assert await privacy.forget_rasa_tracker(f"sqlite+aiosqlite:///{tmp_path / 'absent.db'}", "tg-1") == 0
    assert not (tmp_path / "absent.db").exists()
    sqlite3.connect(tmp_path / "empty.db").close()
    assert await privacy.forget_rasa_tracker(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", "tg-1") == 0


async def test_rasa_tracker_on_postgresql_loses_only_that_senders_events() -> None:
    """In the scale-out mode Rasa's tracker store is a table `events` in our PostgreSQL database."""
    database_url = await _fresh_postgres_database()
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "CREATE TABLE events (id SERIAL PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
                    "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, data TEXT)"
                )
            )
            for sender in ("tg-101", "tg-202", "tg-101"):
                await connection.execute(
                    text("INSERT INTO events (sender_id, type_name) VALUES (:s, 'user')"), {"s": sender}
                )
        assert await privacy.forget_rasa_tracker(database_url, "tg-101") == 2
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT sender_id FROM events"))).scalars().all() == ["tg-202"]
    finally:
        await engine.dispose()
        await _drop_postgres_database(database_url)
