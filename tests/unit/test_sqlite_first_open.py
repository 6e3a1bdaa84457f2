"""Processes opening a new SQLite file at the same moment all get it (bot/storage/db.py).

On a fresh machine the app and the action server start together and both create `var/frontline.db`. Switching a new
file to WAL is the one step SQLite does not wait on, so without a retry the loser of that race fails at once with
"database is locked" (about one process in twenty here, four racing at a time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

from bot.storage.db import _sqlite_pragmas, _wal_journal
from tests.unit.racing import race, switch_waits_for_writer

FILES = 40


def connect_together(urls: list[str], barrier: Any, results: Any) -> None:
    """One process of several: for each new file, wait for the others, then all connect to it at the same moment."""
    failures = []
    for url in urls:
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        barrier.wait()
        try:
            with engine.connect() as connection:
                journal = connection.execute(text("PRAGMA journal_mode")).scalar()
            if journal != "wal":
                failures.append(f"{url}: journal {journal}")
        except Exception as error:  # noqa: BLE001  (collected: the test names every failure)
            failures.append(f"{url}: {error}")
        finally:
            engine.dispose()
    results.put(failures)


def test_processes_creating_the_database_at_once_all_connect(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / str(trial) / 'frontline.db'}" for trial in range(FILES)]
    for trial in range(FILES):
        (tmp_path / str(trial)).mkdir()
    assert race(connect_together, urls) == []


def test_the_switch_to_wal_waits_for_the_other_process_creating_the_file(tmp_path: Path) -> None:
    assert switch_waits_for_writer(tmp_path / "frontline.db", lambda db: _wal_journal(db.cursor())) == "wal"
