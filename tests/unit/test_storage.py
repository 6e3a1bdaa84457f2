"""The storage layer on SQLite and PostgreSQL: inbox once-only, transcript, outbox, buttons, tickets, memory."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage import buttons, inbox, memory, tickets, transcript
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
        customer = await transcript.upsert_customer(session, telegram_user_id=chat_id, first_name="Dana")
        return await transcript.conversation_for_chat(session, chat_id=chat_id, customer=customer)


async def test_an_update_is_stored_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        assert await inbox.store(session, update_id=7, chat_id=42, payload={"update_id": 7})
    async with sessions.begin() as session:
        assert not await inbox.store(session, update_id=7, chat_id=42, payload={"update_id": 7})
        assert [row.update_id for row in await inbox.pending(session)] == [7]
        assert await inbox.newest_update_id(session) == 7


async def test_rasa_is_asked_at_most_once_per_update(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await inbox.store(session, update_id=1, chat_id=42, payload={})
    async with sessions.begin() as session:
        assert await inbox.mark_sent_to_rasa(session, 1)
    async with sessions.begin() as session:
        assert not await inbox.mark_sent_to_rasa(session, 1)


async def test_done_updates_are_no_longer_pending(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        for update_id in (3, 1, 2):
            await inbox.store(session, update_id=update_id, chat_id=42, payload={})
    async with sessions.begin() as session:
        await inbox.mark_done(session, 2)
    async with sessions() as session:
        assert [row.update_id for row in await inbox.pending(session)] == [1, 3]
        assert (await session.get(InboxUpdate, 2)).status is InboxStatus.DONE


async def test_customer_profile_is_refreshed_not_duplicated(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        first = await transcript.upsert_customer(session, telegram_user_id=5, first_name="Sam", username="sam")
    async with sessions.begin() as session:
        again = await transcript.upsert_customer(session, telegram_user_id=5, first_name="Samuel", username=None)
    assert again.id == first.id
    assert (again.first_name, again.username) == ("Samuel", None)


async def test_conversation_starts_with_the_bot(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    assert conversation.state is ConversationState.BOT
    assert conversation.sender_id == "tg-42"
    async with sessions() as session:
        assert (await transcript.find_conversation(session, 42)).id == conversation.id
        assert await transcript.find_conversation(session, 43) is None


async def test_incoming_message_recorded_once_per_update(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    for _ in range(2):
        async with sessions.begin() as session:
            await transcript.record_incoming(session, conversation=conversation, update_id=9, kind="text", text="hi")
    async with sessions() as session:
        assert [(m.direction.value, m.text) for m in await transcript.messages(session, 42)] == [("IN", "hi")]


async def test_a_nul_in_a_message_is_stored_as_a_replacement_character(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)  # (PostgreSQL's text refuses NUL; the row must still be kept)
    async with sessions.begin() as session:
        await transcript.record_incoming(session, conversation=conversation, update_id=10, kind="text", text="a\x00b")
    async with sessions() as session:
        assert [m.text for m in await transcript.messages(session, 42)] == ["a\ufffdb"]


async def test_outbox_keeps_order_until_delivered(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    async with sessions.begin() as session:
        first = await transcript.queue_outgoing(session, conversation=conversation, text="one", update_id=9)
        await transcript.queue_outgoing(session, conversation=conversation, text="two", update_id=9)
    async with sessions() as session:
        assert [m.text for m in await transcript.outbox(session, 42)] == ["one", "two"]
        assert [m.text for m in await transcript.replies_to(session, 9)] == ["one", "two"]
    async with sessions.begin() as session:
        await transcript.mark_delivered(session, first, telegram_message_id=100)
    async with sessions() as session:
        assert [m.text for m in await transcript.outbox(session)] == ["two"]
        delivered = (await transcript.messages(session, 42))[0]
        assert (delivered.status, delivered.telegram_message_id) == (DeliveryStatus.SENT, 100)


async def test_undeliverable_reply_leaves_the_outbox(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    async with sessions.begin() as session:
        message = await transcript.queue_outgoing(session, conversation=conversation, text="x", update_id=None)
    async with sessions.begin() as session:
        await transcript.mark_undeliverable(session, message)
    async with sessions() as session:
        assert await transcript.outbox(session) == []


async def test_button_payload_only_resolves_in_its_own_chat(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        data = await buttons.register(session, chat_id=42, title="Talk to a person", payload="/request_human")
    assert len(data.encode()) <= 64
    async with sessions() as session:
        found = await buttons.resolve(session, chat_id=42, data=data)
        assert (found.title, found.payload) == ("Talk to a person", "/request_human")
        assert await buttons.resolve(session, chat_id=43, data=data) is None
        assert await buttons.resolve(session, chat_id=42, data="b:forged") is None
        assert await buttons.resolve(session, chat_id=42, data='/inform{"x":1}') is None
        assert await buttons.resolve(session, chat_id=42, data=None) is None


async def test_a_ticket_is_created_once_per_key(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    fields = dict(category="delivery", description="It never came", desired_resolution="refund", priority=TicketPriority.HIGH)
    async with sessions.begin() as session:
        first, created = await tickets.create(session, idempotency_key="tg-42:7", conversation=conversation, **fields)
    async with sessions.begin() as session:
        again, created_again = await tickets.create(session, idempotency_key="tg-42:7", conversation=conversation, **fields)
    assert created and not created_again
    assert again.id == first.id and first.reference == f"T{first.id:06d}"
    async with sessions() as session:
        mine = await tickets.for_customer(session, conversation.customer_id)
        assert [t.id for t in mine] == [first.id]
        assert (mine[0].status, mine[0].priority, mine[0].photos) == (TicketStatus.OPEN, TicketPriority.HIGH, [])
        assert await tickets.count_in_category(session, conversation.customer_id, "delivery") == 1
        assert await tickets.count_in_category(session, conversation.customer_id, "billing") == 0


async def test_tickets_belong_to_their_customer_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    mine, theirs = await _conversation(sessions, 42), await _conversation(sessions, 43)
    fields = dict(category="billing", description="charged twice", desired_resolution="refund", priority=TicketPriority.NORMAL)
    async with sessions.begin() as session:
        await tickets.create(session, idempotency_key="a", conversation=mine, **fields)
        await tickets.create(session, idempotency_key="b", conversation=theirs, **fields)
    async with sessions() as session:
        assert [t.idempotency_key for t in await tickets.for_customer(session, mine.customer_id)] == ["a"]


async def test_ticket_text_is_stored_as_text(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    junk = "'); DROP TABLE tickets; -- 💥 " + "x" * 3000
    async with sessions.begin() as session:
        ticket, _ = await tickets.create(
            session, idempotency_key="k", conversation=conversation, category="other", description=junk,
            desired_resolution="just_informing", priority=TicketPriority.NORMAL,
        )
    async with sessions() as session:
        assert (await tickets.for_customer(session, conversation.customer_id))[0].description == junk


async def test_memory_counts_earlier_visits_and_open_tickets(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    today = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)
    async with sessions.begin() as session:
        for update_id, day in enumerate((20, 20, 21, 23), start=1):
            await transcript.record_incoming(session, conversation=conversation, update_id=update_id, kind="text", text="hi")
            await session.execute(update(Message).where(Message.update_id == update_id)
                                  .values(created_at=datetime(2026, 11, day, 10, 0, tzinfo=timezone.utc)))
        ticket, _ = await tickets.create(session, idempotency_key="m", conversation=conversation, category="delivery",
                                         description="late", desired_resolution="refund", priority=TicketPriority.NORMAL)
    async with sessions() as session:
        found = await memory.remember(session, telegram_user_id=42, today=today, regular_min_visits=3, regular_min_tickets=2)
        assert (found.earlier_visits, found.returning, found.earlier_tickets, found.regular) == (2, True, 1, False)
        assert [t.id for t in found.open_tickets] == [ticket.id]
        regular = await memory.remember(session, telegram_user_id=42, today=today, regular_min_visits=2, regular_min_tickets=5)
        assert regular.regular
        assert await memory.remember(session, telegram_user_id=99, today=today, regular_min_visits=3, regular_min_tickets=2) is None


async def test_a_first_day_customer_is_not_returning(sessions: async_sessionmaker[AsyncSession]) -> None:
    conversation = await _conversation(sessions)
    async with sessions.begin() as session:
        await transcript.record_incoming(session, conversation=conversation, update_id=1, kind="text", text="hi")
    async with sessions() as session:
        found = await memory.remember(session, telegram_user_id=42, today=datetime.now(timezone.utc), regular_min_visits=3, regular_min_tickets=2)
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
