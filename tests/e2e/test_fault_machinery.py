"""The pieces the fault tests rely on, each on its own: failpoints, noticing a database outage, handling again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import text
from telegram import Update

from bot.storage import inbox
from bot.storage.db import _outage, create_engine, create_sessionmaker, migrate, watch_outage
from bot.storage.models import InboxStatus, InboxUpdate
from bot.telegram import dispatch
from devstack.stack import ROOT
from tests.e2e.pgserver import PostgresServer


def _reach(points: str) -> subprocess.CompletedProcess:
    code = (
        "from bot.faults import failpoint\nfailpoint(None, 'after-send', 1)\nprint('passed chat 1', flush=True)\n"
        "failpoint(None, 'after-send', 2)\nprint('passed chat 2')"
    )
    env = {**os.environ, "FRONTLINE_FAILPOINTS": points, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_failpoint_armed_for_one_chat_kills_there_only() -> None:
    scoped = _reach("before-send,after-send@2")
    assert (scoped.returncode, scoped.stdout) == (-signal.SIGKILL, "passed chat 1\n")
    everywhere = _reach("after-send")
    assert (everywhere.returncode, everywhere.stdout) == (-signal.SIGKILL, "")
    elsewhere = _reach("after-send@3")
    assert (elsewhere.returncode, elsewhere.stdout) == (0, "passed chat 1\npassed chat 2\n")


async def test_an_update_that_met_the_database_down_is_handled_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "RETRY_FIRST", 0.01)
    calls = []

    async def down_twice(update: Update) -> None:
        calls.append(update.update_id)
        if len(calls) <= 2:
            _outage.get().note(ConnectionRefusedError("down"))  # as the engine's listeners do
            raise ConnectionRefusedError("down")

    assert await dispatch.handle_patiently(down_twice, Update(update_id=5))
    assert calls == [5, 5, 5]


async def test_a_bug_is_not_retried_and_an_outage_is_given_up_on_in_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "RETRY_FIRST", 0.01)
    monkeypatch.setattr(dispatch, "RETRY_FOR", 0.05)
    calls = []

    async def bug(update: Update) -> None:
        calls.append(update.update_id)
        raise ValueError("a bug")

    assert await dispatch.handle_patiently(bug, Update(update_id=6))
    assert calls == [6]

    async def always_down(update: Update) -> None:
        calls.append(update.update_id)
        _outage.get().note(ConnectionRefusedError("down"))

    assert not await dispatch.handle_patiently(always_down, Update(update_id=7))
    assert calls.count(7) > 1


async def test_the_engine_notices_a_database_going_away_and_the_update_stays_pending(
    throwaway_postgres: PostgresServer,
) -> None:
    engine = create_engine(throwaway_postgres.url())
    sessions = create_sessionmaker(engine)
    try:
        await migrate(engine)
        async with sessions.begin() as session:
            await session.run_sync(inbox.store, update_id=11, chat_id=42, payload={})
        with watch_outage() as outage:
            async with engine.connect() as connection:
                await connection.scalar(text("SELECT 1"))
        assert not outage.failed
        throwaway_postgres.stop("fast")
        with watch_outage() as outage:
            with pytest.raises(OSError):
                async with engine.connect() as connection:  # the pooled connection is dead, a new one refused
                    await connection.scalar(text("SELECT 1"))
            assert outage.failed, "a refused connection is an outage"
        throwaway_postgres.start()
        with watch_outage() as outage:
            async with engine.connect() as connection:
                await connection.scalar(text("SELECT 1"))
            assert not outage.failed, "a dead pooled connection replaced on checkout (pre-ping) is not"
            async with sessions.begin() as session:
                await session.run_sync(inbox.mark_done, 11)
        async with sessions() as session:
            assert (await session.get(InboxUpdate, 11)).status is InboxStatus.DONE
            async with engine.connect() as connection:
                await connection.execute(text("UPDATE inbox_updates SET status = 'PENDING'"))
                await connection.commit()
        with watch_outage() as outage:
            outage.note(ConnectionResetError("lost mid-way"))
            async with sessions.begin() as session:
                await session.run_sync(inbox.mark_done, 11)
        async with sessions() as session:
            assert (await session.get(InboxUpdate, 11)).status is InboxStatus.PENDING, "handled again, not done"
    finally:
        await engine.dispose()
