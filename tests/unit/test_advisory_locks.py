"""Cross-worker try-locks on PostgreSQL (bot/telegram/locks.py): held on a connection of their own, so however many
are held, the engine's pool stays free for the work they guard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.telegram.locks import PostgresLocks
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

HELD = 5


@pytest.fixture
async def database() -> AsyncIterator[str]:
    url = await _fresh_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@contextlib.asynccontextmanager
async def _engine(url: str) -> AsyncIterator[AsyncEngine]:
    # A pool of one, and a short wait for it: a lock that kept a pooled connection would make the next checkout fail.
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=1)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _lock_holders(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        # pg_locks is the whole server's: only this test's database counts (another test's app may hold its own).
        rows = await connection.execute(
            text(
                "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
        return [row[0] for row in rows]


async def test_locks_held_leave_the_pool_to_the_work_and_hold_for_other_workers(database: str) -> None:
    async with _engine(database) as engine, _engine(database) as other_engine:
        locks, other_worker = PostgresLocks(engine), PostgresLocks(other_engine)
        try:
            async with contextlib.AsyncExitStack() as holding:
                for key in range(HELD):
                    assert await holding.enter_async_context(locks.try_hold("chat", key))
                # The pool's one connection is free while every lock is held: the guarded work can run.
                async with engine.begin() as connection:
                    assert await connection.scalar(text("SELECT 1")) == 1
                assert len(await _lock_holders(engine)) == 1  # all of them on one connection of their own
                for key in range(HELD):
                    async with other_worker.try_hold("chat", key) as held:
                        assert held is False
            for key in range(HELD):
                async with other_worker.try_hold("chat", key) as held:
                    assert held is True
        finally:
            await locks.close()
            await other_worker.close()


async def test_a_lock_after_the_locks_connection_was_lost_is_taken_on_a_new_one(database: str) -> None:
    async with _engine(database) as engine:
        locks = PostgresLocks(engine)
        try:
            async with locks.try_hold("outbox", 1) as held:
                assert held
                [pid] = await _lock_holders(engine)
            async with engine.begin() as connection:  # a database restart, as the locks' connection sees it
                assert await connection.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            async with locks.try_hold("outbox", 2) as held:
                assert held
                assert len(await _lock_holders(engine)) == 1
                assert (await _lock_holders(engine))[0] != pid
        finally:
            await locks.close()


async def test_a_lock_taken_for_a_caller_cancelled_meanwhile_is_released(database: str) -> None:
    """The caller is cancelled while its lock is being taken on the shared connection: the statement still runs
    (the connection stays in a known state for the others) and the lock it took is let go, not leaked."""
    from bot.telegram import locks as module

    async with _engine(database) as engine:
        locks, other_worker = PostgresLocks(engine), PostgresLocks(engine)
        try:

            async def take() -> None:
                async with locks.try_hold("desk", 0):
                    raise AssertionError("the caller was cancelled before it held the lock")

            async with locks._talking:  # another statement is on the connection: the caller waits its turn
                caller = asyncio.create_task(take())
                while not locks._talking._waiters:
                    await asyncio.sleep(0)
                caller.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await caller
            await asyncio.gather(*list(module._background))
            async with other_worker.try_hold("desk", 0) as held:
                assert held is True
        finally:
            await locks.close()
            await other_worker.close()
