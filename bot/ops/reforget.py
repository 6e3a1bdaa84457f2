"""The forgets made since a backup, applied again once it is restored (the forget log: bot/storage/forget_log.py).

`frontline restore` does it for the SQLite database it puts back; after a PostgreSQL `pg_restore`,
`frontline reforget --since <the backup's time>` does it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.storage import forget_log, privacy
from bot.storage.db import create_engine as create_async_engine
from bot.storage.db import create_sessionmaker, migrate, upgrade


def _foreign_keys(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.execute("PRAGMA foreign_keys=ON")  # the forget's cascades (handoffs, promises, flags)


def _forget_in_tracker(tracker: Path, chats: list[int]) -> None:
    """Rasa's SQLite tracker store loses those chats' events."""
    if not chats or not tracker.exists():
        return
    with contextlib.closing(sqlite3.connect(tracker, timeout=10)) as db, db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone():
            db.executemany("DELETE FROM events WHERE sender_id = ?", [(f"tg-{chat}",) for chat in chats])


def reapply_sqlite(settings: Settings, since: datetime, database: Path, tracker: Path) -> int:
    """Forget again, in a restored SQLite database (migrated first) and tracker store, everyone the log says was
    forgotten at `since` or later; returns how many chats were forgotten."""
    digests = forget_log.since(settings.var_dir, since)
    if not digests or not database.exists():
        return 0
    engine = create_engine(f"sqlite:///{database}")
    event.listen(engine, "connect", _foreign_keys)
    try:
        with engine.begin() as connection:
            upgrade(connection)
        with Session(engine) as session, session.begin():
            chats = privacy.forget_logged(session, forget_log.key(settings.var_dir), digests)
    finally:
        engine.dispose()
    _forget_in_tracker(tracker, chats)
    return len(chats)


async def reapply(settings: Settings, since: datetime) -> int:
    """The same on the configured database (PostgreSQL or SQLite) and Rasa's tracker store."""
    digests = forget_log.since(settings.var_dir, since)
    if not digests:
        return 0
    engine = create_async_engine(settings.database_url)
    try:
        await migrate(engine)
        chats = await create_sessionmaker(engine).run(privacy.forget_logged, forget_log.key(settings.var_dir), digests)
    finally:
        await engine.dispose()
    for chat in chats:
        await privacy.forget_rasa_tracker(settings.rasa_tracker_url, f"tg-{chat}")
    return len(chats)


def main_reforget(settings: Settings, since: str) -> int:
    """`frontline reforget --since TIME`."""
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        print(f"--since must be a time like 2026-01-31T09:30:00Z; got {since!r}", file=sys.stderr)
        return 2
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    count = asyncio.run(reapply(settings, moment))
    print(f"forgot again {count} chat(s) of the customers forgotten since {moment.isoformat()} (forget log)")
    return 0
