"""The round's housekeeping at the storage boundaries, at a `now` of the test's choosing (no test reads the clock):
an update handled a minute more than INBOX_KEEP_DAYS ago goes, one an hour less stays, a pending one stays however
old; a customer idle a minute more than RETENTION_DAYS is forgotten, one an hour less is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot.admin import throttle
from bot.config import load_settings
from bot.desk import housekeeping
from bot.storage import attempt_counts, inbox, transcript
from bot.storage.models import Conversation, Customer, InboxStatus, InboxUpdate, Message

MAYA, NOOR = 4242, 4343


async def test_the_boundaries_at_a_given_now(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    now = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path), "INBOX_KEEP_DAYS": "7", "RETENTION_DAYS": "30"})
    async with sessions.begin() as session:
        for update_id, age, status in (
            (1, timedelta(days=7, minutes=1), InboxStatus.DONE),
            (2, timedelta(days=6, hours=23), InboxStatus.DONE),
            (3, timedelta(days=70), InboxStatus.PENDING),
        ):
            await session.run_sync(inbox.store, update_id=update_id, chat_id=None, payload={"update_id": update_id})
            await session.execute(
                update(InboxUpdate)
                .where(InboxUpdate.update_id == update_id)
                .values(status=status, processed_at=now - age if status is InboxStatus.DONE else None)
            )
        for user, age in ((MAYA, timedelta(days=30, minutes=1)), (NOOR, timedelta(days=29, hours=23))):
            customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=user, first_name="X")
            conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=user, customer=customer)
            await session.run_sync(
                transcript.record_incoming, conversation=conversation, update_id=user, kind="text", text="hi"
            )
            await session.flush()
            for model in (Message, Conversation, Customer):
                await session.execute(
                    update(model)
                    .values(created_at=now - age, updated_at=now - age)
                    .where(
                        (model.id == customer.id)
                        if model is Customer
                        else (model.id == conversation.id)
                        if model is Conversation
                        else (Message.conversation_id == conversation.id)
                    ),
                    execution_options={"synchronize_session": False},
                )
    kept = await housekeeping.keep_house(settings, sessions, now, _no_topics)
    assert (kept.updates, kept.customers) == (1, 1)
    async with sessions() as session:
        assert list(await session.scalars(select(InboxUpdate.update_id).order_by(InboxUpdate.update_id))) == [2, 3]
        assert list(await session.scalars(select(Customer.telegram_user_id))) == [NOOR]


async def _no_topics(topics: list[int]) -> None:
    assert topics == []


async def test_a_pass_prunes_a_batch_at_most_and_says_there_is_more(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch
) -> None:
    now = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    async with sessions.begin() as session:
        for update_id in (1, 2, 3):
            await session.run_sync(inbox.store, update_id=update_id, chat_id=None, payload={"update_id": update_id})
        await session.execute(
            update(InboxUpdate).values(status=InboxStatus.DONE, processed_at=now - timedelta(days=30))
        )
    monkeypatch.setattr(housekeeping, "BATCH_UPDATES", 2)
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path)})
    first = await housekeeping.keep_house(settings, sessions, now, _no_topics)
    second = await housekeeping.keep_house(settings, sessions, now, _no_topics)
    assert (first.updates, first.more, second.updates, second.more) == (2, True, 1, False)


async def test_counts_of_attempts_go_once_kept_at_most_and_no_sooner(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """The sign-in throttle's counts (client addresses, names tried) do not stay after sign-ins stop: one last moved
    a minute more than KEPT_AT_MOST ago goes, one a minute less stays; the throttle forgets its counts sooner."""
    now = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    for key, age in (("198.51.100.1", timedelta(minutes=1)), ("198.51.100.2", -timedelta(minutes=1))):
        last = now - attempt_counts.KEPT_AT_MOST - age
        await sessions.run(_count, key, last)
    kept = await housekeeping.keep_house(load_settings({"FRONTLINE_VAR": str(tmp_path)}), sessions, now, _no_topics)
    assert kept.attempts == 1
    assert set(await sessions.read(attempt_counts.counted, "address")) == {"198.51.100.2"}
    assert throttle.FORGET <= attempt_counts.KEPT_AT_MOST


def _count(session: Session, key: str, last: datetime) -> None:
    attempt_counts.hold(session, "address", key, last, timedelta(minutes=15))
    attempt_counts.put(session, "address", key, attempt_counts.Count(1, last, last, last), last)
