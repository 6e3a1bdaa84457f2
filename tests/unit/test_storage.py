"""The storage layer on SQLite and PostgreSQL: inbox once-only, transcript, outbox, buttons, tickets, memory."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot import clock
from bot.storage import buttons, inbox, memory, tickets, transcript
from bot.storage.db import Sessions, create_engine, create_sessionmaker, watch_outage
from bot.storage.models import (
    ConversationState,
    DeliveryStatus,
    InboxStatus,
    InboxUpdate,
    Message,
    TicketPriority,
    TicketStatus,
)


async def _conversation(sessions: async_sessionmaker[AsyncSession], chat_id: int = 42):
    async with sessions.begin() as session:
        customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=chat_id, first_name="Dana")
        return await session.run_sync(transcript.conversation_for_chat, chat_id=chat_id, customer=customer)


async def test_an_update_is_stored_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        assert await session.run_sync(inbox.store, update_id=7, chat_id=42, payload={"update_id": 7})
    async with sessions.begin() as session:
        assert not await session.run_sync(inbox.store, update_id=7, chat_id=42, payload={"update_id": 7})
        assert [row.update_id for row in await session.run_sync(inbox.pending)] == [7]
        assert await session.run_sync(inbox.newest_update_id) == 7


async def test_rasa_is_asked_at_most_once_per_update(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await session.run_sync(inbox.store, update_id=1, chat_id=42, payload={})
    async with sessions.begin() as session:
        assert await session.run_sync(inbox.mark_sent_to_rasa, 1)
    async with sessions.begin() as session:
        assert not await session.run_sync(inbox.mark_sent_to_rasa, 1)


async def test_done_updates_are_no_longer_pending(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        for update_id in (3, 1, 2):
            await session.run_sync(inbox.store, update_id=update_id, chat_id=42, payload={})
    async with sessions.begin() as session:
        await session.run_sync(inbox.mark_done, 2)
    async with sessions() as session:
        assert [row.update_id for row in await session.run_sync(inbox.pending)] == [1, 3]
        assert (await session.get(InboxUpdate, 2)).status is InboxStatus.DONE


async def test_customer_profile_is_refreshed_not_duplicated(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        first = await session.run_sync(transcript.upsert_customer, telegram_user_id=5, first_name="Sam", username="sam")
    async with sessions.begin() as session:
        again = await session.run_sync(
            transcript.upsert_customer, telegram_user_id=5, first_name="Samuel", username=None
        )
    assert again.id == first.id
    assert (again.first_name, again.username) == ("Samuel", None)


async def test_conversation_starts_with_the_bot(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    assert conversation.state is ConversationState.BOT
    assert conversation.sender_id == "tg-42"
    async with sessions() as session:
        assert (await session.run_sync(transcript.find_conversation, 42)).id == conversation.id
        assert await session.run_sync(transcript.find_conversation, 43) is None


async def test_incoming_message_recorded_once_per_update(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    for _ in range(2):
        async with sessions.begin() as session:
            await session.run_sync(
                transcript.record_incoming, conversation=conversation, update_id=9, kind="text", text="hi"
            )
    async with sessions() as session:
        assert [(m.direction.value, m.text) for m in await session.run_sync(transcript.messages, 42)] == [("IN", "hi")]


async def test_a_nul_in_a_message_is_stored_as_a_replacement_character(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    conversation = await _conversation(sessions)  # (PostgreSQL's text refuses NUL; the row must still be kept)
    async with sessions.begin() as session:
        await session.run_sync(
            transcript.record_incoming, conversation=conversation, update_id=10, kind="text", text="a\x00b"
        )
    async with sessions() as session:
        assert [m.text for m in await session.run_sync(transcript.messages, 42)] == ["a\ufffdb"]


async def test_outbox_keeps_order_until_delivered(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    async with sessions.begin() as session:
        first = await session.run_sync(transcript.queue_outgoing, conversation=conversation, text="one", update_id=9)
        await session.run_sync(transcript.queue_outgoing, conversation=conversation, text="two", update_id=9)
    async with sessions() as session:
        assert [m.text for m in await session.run_sync(transcript.outbox, 42)] == ["one", "two"]
        assert [m.text for m in await session.run_sync(transcript.replies_to, 9)] == ["one", "two"]
    async with sessions.begin() as session:
        await session.run_sync(transcript.mark_delivered, first, telegram_message_id=100)
    async with sessions() as session:
        assert [m.text for m in await session.run_sync(transcript.outbox)] == ["two"]
        delivered = (await session.run_sync(transcript.messages, 42))[0]
        assert (delivered.status, delivered.telegram_message_id) == (DeliveryStatus.SENT, 100)


async def test_undeliverable_reply_leaves_the_outbox(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    async with sessions.begin() as session:
        message = await session.run_sync(transcript.queue_outgoing, conversation=conversation, text="x", update_id=None)
    async with sessions.begin() as session:
        await session.run_sync(transcript.mark_undeliverable, message)
    async with sessions() as session:
        assert await session.run_sync(transcript.outbox) == []


async def test_button_payload_only_resolves_in_its_own_chat(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        data = await session.run_sync(buttons.register, chat_id=42, title="Talk to a person", payload="/request_human")
    assert len(data.encode()) <= 64
    async with sessions() as session:
        found = await session.run_sync(buttons.resolve, chat_id=42, data=data)
        assert (found.title, found.payload) == ("Talk to a person", "/request_human")
        assert await session.run_sync(buttons.resolve, chat_id=43, data=data) is None
        assert await session.run_sync(buttons.resolve, chat_id=42, data="b:forged") is None
        assert await session.run_sync(buttons.resolve, chat_id=42, data='/inform{"x":1}') is None
        assert await session.run_sync(buttons.resolve, chat_id=42, data=None) is None


async def test_a_ticket_is_created_once_per_key(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    fields = {
        "category": "delivery",
        "description": "It never came",
        "desired_resolution": "refund",
        "priority": TicketPriority.HIGH,
    }
    async with sessions.begin() as session:
        first, created = await session.run_sync(
            tickets.create, idempotency_key="tg-42:7", conversation=conversation, **fields
        )
    async with sessions.begin() as session:
        again, created_again = await session.run_sync(
            tickets.create, idempotency_key="tg-42:7", conversation=conversation, **fields
        )
    assert created and not created_again
    assert again.id == first.id and first.reference == f"T{first.id:06d}"
    async with sessions() as session:
        mine = await session.run_sync(tickets.for_customer, conversation.customer_id)
        assert [t.id for t in mine] == [first.id]
        assert (mine[0].status, mine[0].priority, mine[0].photos) == (TicketStatus.OPEN, TicketPriority.HIGH, [])
        assert await session.run_sync(tickets.count_in_category, conversation.customer_id, "delivery") == 1
        assert await session.run_sync(tickets.count_in_category, conversation.customer_id, "billing") == 0


async def test_tickets_belong_to_their_customer_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    mine, theirs = await _conversation(sessions, 42), await _conversation(sessions, 43)
    fields = {
        "category": "billing",
        "description": "charged twice",
        "desired_resolution": "refund",
        "priority": TicketPriority.NORMAL,
    }
    async with sessions.begin() as session:
        await session.run_sync(tickets.create, idempotency_key="a", conversation=mine, **fields)
        await session.run_sync(tickets.create, idempotency_key="b", conversation=theirs, **fields)
    async with sessions() as session:
        assert [t.idempotency_key for t in await session.run_sync(tickets.for_customer, mine.customer_id)] == ["a"]


async def test_ticket_text_is_stored_as_text(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    junk = "'); DROP TABLE tickets; -- 💥 " + "x" * 3000
    async with sessions.begin() as session:
        await session.run_sync(
            tickets.create,
            idempotency_key="k",
            conversation=conversation,
            category="other",
            description=junk,
            desired_resolution="just_informing",
            priority=TicketPriority.NORMAL,
        )
    async with sessions() as session:
        assert (await session.run_sync(tickets.for_customer, conversation.customer_id))[0].description == junk


async def test_memory_counts_earlier_visits_and_open_tickets(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    today = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    async with sessions.begin() as session:
        for update_id, day in enumerate((20, 20, 21, 23), start=1):
            await session.run_sync(
                transcript.record_incoming, conversation=conversation, update_id=update_id, kind="text", text="hi"
            )
            await session.execute(
                update(Message)
                .where(Message.update_id == update_id)
                .values(created_at=datetime(2026, 11, day, 10, 0, tzinfo=UTC))
            )
        ticket, _ = await session.run_sync(
            tickets.create,
            idempotency_key="m",
            conversation=conversation,
            category="delivery",
            description="late",
            desired_resolution="refund",
            priority=TicketPriority.NORMAL,
        )
    async with sessions() as session:
        found = await session.run_sync(
            memory.remember, telegram_user_id=42, today=today, regular_min_visits=3, regular_min_tickets=2
        )
        assert (found.earlier_visits, found.returning, found.earlier_tickets, found.regular) == (2, True, 1, False)
        assert [t.id for t in found.open_tickets] == [ticket.id]
        regular = await session.run_sync(
            memory.remember, telegram_user_id=42, today=today, regular_min_visits=2, regular_min_tickets=5
        )
        assert regular.regular
        assert (
            await session.run_sync(
                memory.remember, telegram_user_id=99, today=today, regular_min_visits=3, regular_min_tickets=2
            )
            is None
        )


async def test_a_first_day_customer_is_not_returning(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    async with sessions.begin() as session:
        await session.run_sync(
            transcript.record_incoming, conversation=conversation, update_id=1, kind="text", text="hi"
        )
    async with sessions() as session:
        found = await session.run_sync(
            memory.remember, telegram_user_id=42, today=clock.now(), regular_min_visits=3, regular_min_tickets=2
        )
    assert not found.returning and not found.regular and found.open_tickets == []


async def test_workers_starting_together_migrate_once(tmp_path) -> None:
    """Two app workers migrate the same fresh PostgreSQL database at the same moment: neither fails."""
    import asyncio

    from bot.storage.db import create_engine, migrate
    from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

    database_url = await _fresh_postgres_database()
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(engine) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()
        await _drop_postgres_database(database_url)


def _reply_and_thread(session: Session, chat_id: int, *, text: str, fail: bool = False) -> tuple[int, str]:
    customer = transcript.upsert_customer(session, telegram_user_id=chat_id, first_name="Ann")
    conversation = transcript.conversation_for_chat(session, chat_id=chat_id, customer=customer)
    message_id = transcript.queue_outgoing(session, conversation=conversation, text=text, update_id=None)
    if fail:
        raise RuntimeError("the work failed half way")
    return message_id, threading.current_thread().name


async def test_a_unit_of_work_is_committed_and_gives_its_result(sessions: Sessions) -> None:
    message_id, thread = await sessions.run(_reply_and_thread, 71, text="hello")
    async with sessions() as session:
        assert (await session.get(Message, message_id)).text == "hello"
    # A SQLite file is written from the database's own thread; PostgreSQL from the event loop's, through asyncpg.
    on_sqlite = sessions.kw["bind"].dialect.name == "sqlite"
    assert thread.startswith("frontline-db") is on_sqlite
    assert (thread == threading.current_thread().name) is not on_sqlite


async def test_a_unit_of_work_that_fails_leaves_nothing(sessions: Sessions) -> None:
    with pytest.raises(RuntimeError):
        await sessions.run(_reply_and_thread, 72, text="lost", fail=True)
    async with sessions() as session:
        assert await session.run_sync(transcript.messages, 72) == []
        assert await session.run_sync(transcript.find_conversation, 72) is None


async def test_a_unit_of_work_takes_its_context_along(sessions: Sessions) -> None:
    """mark_done learns the update being handled and a database outage from context variables, on any thread."""
    async with sessions.begin() as session:
        await session.run_sync(inbox.store, update_id=5, chat_id=42, payload={})
        await session.run_sync(inbox.store, update_id=6, chat_id=42, payload={})
    with inbox.handling(5) as handling:
        await sessions.run(inbox.mark_done, 5)
    assert handling.marked
    with inbox.handling(6) as handling, watch_outage() as outage:
        outage.note(ConnectionError("the database went away"))
        await sessions.run(inbox.mark_done, 6)  # to be handled again: not marked done
    assert not handling.marked
    async with sessions() as session:
        assert [row.update_id for row in await session.run_sync(inbox.pending)] == [6]


async def test_a_database_in_memory_runs_its_work_in_the_event_loop() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    sessions = create_sessionmaker(engine)
    try:
        assert await sessions.run(
            lambda session: (session.scalar(text("SELECT 41 + 1")), threading.current_thread().name)
        ) == (42, threading.current_thread().name)
    finally:
        sessions.dispose()
        await engine.dispose()


async def test_a_read_commits_nothing(sessions: Sessions) -> None:
    await sessions.read(_reply_and_thread, 73, text="never kept")
    async with sessions() as session:
        assert await session.run_sync(transcript.find_conversation, 73) is None
