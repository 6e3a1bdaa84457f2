"""A restore does not bring back a customer who asked to be forgotten after the backup was made: the forget log
(kept outside the database) is applied again to what the restore put back, and the restore says so."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot import replies
from bot.config import load_settings
from bot.ops import reforget
from bot.ops.backup import backup, restore
from bot.storage import forget_log, transcript
from bot.storage.db import create_engine, create_sessionmaker, migrate
from bot.storage.models import Customer
from tests.unit.chat_harness import running_harness
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database
from tests.unit.stored_rows import traces
from tests.unit.test_chat_privacy import _buttons
from tests.unit.test_doctor import closed_port

MAYA, NOOR = 4242, 4343


def _tracker(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT sender_id FROM events ORDER BY id")]


async def test_a_restore_forgets_again_whoever_was_forgotten_since_the_backup(tmp_path: Path) -> None:
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path), "APP_PORT": str(closed_port())})
    with closing(sqlite3.connect(settings.rasa_tracker_db)) as db, db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)")
        db.executemany("INSERT INTO events (sender_id) VALUES (?)", [("tg-4242",), ("tg-4343",)])
    async with running_harness(tmp_path) as harness:
        await harness.emulator.add_user("Noor", user_id=NOOR)
        for user, text in ((MAYA, "my zebra lamp came crackled"), (NOOR, "where is my parcel")):
            after = (await harness.emulator.sent(user)).last
            await harness.emulator.send_text(user, text)
            await harness.emulator.wait_for_text(user, after)
        archive = await asyncio.to_thread(backup, settings, tmp_path / "backup.tar.gz", out=io.StringIO())
        [*_, question] = await harness.say("/forget")
        after = (await harness.emulator.sent(MAYA)).last
        await harness.emulator.press(MAYA, question["message_id"], _buttons(question)[replies.FORGET_YES])
        await harness.emulator.wait_for_text(MAYA, after, predicate=lambda t: t == replies.FORGOTTEN)
    assert _tracker(settings.rasa_tracker_db) == ["tg-4343"]

    out = io.StringIO()
    await asyncio.to_thread(restore, settings, archive, out=out)

    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            maya = await session.run_sync(traces, ("zebra", "Maya"), (MAYA,))
            noor = await session.run_sync(traces, ("where is my parcel",), (NOOR,))
    finally:
        await engine.dispose()
    assert maya == []
    assert "forget log" in out.getvalue() and "1 chat(s)" in out.getvalue(), out.getvalue()
    assert noor, "everyone else is as the backup had them"
    assert _tracker(settings.rasa_tracker_db) == ["tg-4343"]


async def test_after_a_pg_restore_reforget_applies_only_the_forgets_since_the_given_time(tmp_path: Path) -> None:
    database_url = await _fresh_postgres_database()
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path), "DATABASE_URL": database_url})
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        async with create_sessionmaker(engine).begin() as session:
            for user in (MAYA, NOOR):
                customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=user, first_name="X")
                await session.run_sync(transcript.conversation_for_chat, chat_id=user, customer=customer)
        dumped_at = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
        forget_log.record(settings.var_dir, NOOR, dumped_at - timedelta(minutes=5))  # already out of the dump
        forget_log.record(settings.var_dir, MAYA, dumped_at + timedelta(minutes=5))
        assert str(MAYA) not in (settings.var_dir / "forget-log").read_text()

        assert await reforget.reapply(settings, dumped_at) == 1

        async with create_sessionmaker(engine)() as session:
            assert list(await session.scalars(select(Customer.telegram_user_id))) == [NOOR]
    finally:
        await engine.dispose()
        await _drop_postgres_database(database_url)
