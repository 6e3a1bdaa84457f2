"""`frontline backup` / `frontline restore`: a populated SQLite setup comes back identical; a bad archive is refused."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import sqlite3
import tarfile
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings, load_settings
from bot.ops.backup import MANIFEST, BackupError, backup, restore
from bot.storage import tickets, transcript
from bot.storage.db import create_engine, create_sessionmaker, migrate
from bot.storage.models import TicketPriority
from bot.storage.privacy import export_customer
from bot.web import HealthServer
from tests.unit.test_doctor import closed_port


def _settings(var: Path, **extra: str) -> Settings:
    return load_settings({"FRONTLINE_VAR": str(var), "APP_PORT": str(closed_port()), **extra})


async def _populate(settings: Settings, user_id: int, order: str) -> AsyncEngine:
    """A customer with a conversation and a ticket, written by the storage helpers; the engine stays open."""
    engine = create_engine(settings.database_url)
    await migrate(engine)
    async with create_sessionmaker(engine).begin() as session:
        customer = await session.run_sync(
            transcript.upsert_customer, telegram_user_id=user_id, first_name="Maya", username="maya"
        )
        conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=user_id, customer=customer)
        await session.run_sync(
            transcript.record_incoming,
            conversation=conversation,
            update_id=user_id,
            kind="text",
            text=f"my order {order} arrived broken",
        )
        await session.run_sync(
            tickets.create,
            idempotency_key=f"k-{user_id}",
            conversation=conversation,
            category="damaged_item",
            description="arrived broken",
            desired_resolution="refund",
            priority=TicketPriority.HIGH,
            order_number=order,
            contact="maya@example.com",
        )
    return engine


async def _export(settings: Settings, user_id: int) -> dict:
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return await session.run_sync(export_customer, user_id)
    finally:
        await engine.dispose()


def _tracker_rows(settings: Settings) -> list[tuple]:
    with closing(sqlite3.connect(settings.rasa_tracker_db)) as db:
        return db.execute("SELECT sender_id, data FROM events ORDER BY id").fetchall()


def _other_state(settings: Settings) -> None:
    with closing(sqlite3.connect(settings.rasa_tracker_db)) as db, db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)")
        db.execute("INSERT INTO events (sender_id, data) VALUES ('tg-4242', '{\"event\": \"user\"}')")
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "0123456789abcdef.tar.gz").write_bytes(b"a trained model" * 1000)
    settings.pending_dir.mkdir(parents=True)
    (settings.pending_dir / "complaint-1.json").write_text('{"order_number": "A12345"}')


async def test_a_backup_restored_after_a_wipe_brings_back_the_same_data(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    engine = await _populate(settings, 4242, "A12345")  # still open: the newest pages sit in the WAL file
    _other_state(settings)
    before = await _export(settings, 4242)
    assert before["tickets"][0]["order_number"] == "A12345"
    archive = backup(settings, tmp_path / "backup.tar.gz", out=io.StringIO())
    await engine.dispose()
    shutil.rmtree(settings.var_dir)

    out = io.StringIO()
    restore(settings, archive, out=out)

    assert await _export(settings, 4242) == before
    assert _tracker_rows(settings) == [("tg-4242", '{"event": "user"}')]
    assert (settings.models_dir / "0123456789abcdef.tar.gz").read_bytes() == b"a trained model" * 1000
    assert (settings.pending_dir / "complaint-1.json").read_text() == '{"order_number": "A12345"}'
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile(MANIFEST))
    assert manifest["schema_revision"] == _head_revision() and manifest["database"] == "sqlite"
    assert {f["path"] for f in manifest["files"]} == {
        "database/frontline.db",
        "database/rasa-tracker.db",
        "models/0123456789abcdef.tar.gz",
        "pending-complaints/complaint-1.json",
    }
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in manifest["files"])


async def test_restore_keeps_what_it_replaces_aside(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    await (await _populate(settings, 4242, "A12345")).dispose()
    _other_state(settings)
    archive = backup(settings, tmp_path, out=io.StringIO())
    await (await _populate(settings, 5151, "B67890")).dispose()  # written after the backup

    aside = restore(settings, archive, out=io.StringIO())

    assert (await _export(settings, 5151))["customer"] is None
    assert aside.name.startswith("before-restore-") and aside.parent == settings.var_dir
    kept = _settings(tmp_path / "var", DATABASE_URL=f"sqlite+aiosqlite:///{aside / 'frontline.db'}")
    assert (await _export(kept, 5151))["tickets"][0]["order_number"] == "B67890"
    assert (aside / "models" / "0123456789abcdef.tar.gz").exists()


async def test_a_corrupted_archive_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    await (await _populate(settings, 4242, "A12345")).dispose()
    _other_state(settings)
    archive = backup(settings, tmp_path / "good.tar.gz", out=io.StringIO())
    corrupted = tmp_path / "corrupted.tar.gz"
    with tarfile.open(archive) as good, tarfile.open(corrupted, "w:gz") as bad:
        for member in good.getmembers():
            data = good.extractfile(member).read()
            if member.name == "pending-complaints/complaint-1.json":
                data = data.replace(b"A12345", b"Z99999")  # same size, other bytes
            bad.addfile(member, io.BytesIO(data))
    await (await _populate(settings, 5151, "B67890")).dispose()

    with pytest.raises(BackupError, match="pending-complaints/complaint-1.json does not match its sha256"):
        restore(settings, corrupted, out=io.StringIO())

    assert (await _export(settings, 5151))["customer"] is not None, "the database was left as it was"
    assert (settings.pending_dir / "complaint-1.json").read_text() == '{"order_number": "A12345"}'
    assert [p.name for p in settings.var_dir.iterdir() if p.name.startswith((".restore", "before-restore"))] == []


async def test_restore_refuses_while_the_app_answers_unless_forced(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    await (await _populate(settings, 4242, "A12345")).dispose()
    archive = backup(settings, tmp_path / "backup.tar.gz", out=io.StringIO())
    app = HealthServer({})
    port = await app.start("127.0.0.1", 0)
    try:
        running = _settings(tmp_path / "var", APP_PORT=str(port))
        with pytest.raises(BackupError, match="the app seems to be running"):  # restore blocks: run it beside the loop
            await asyncio.to_thread(restore, running, archive, out=io.StringIO())
        await asyncio.to_thread(restore, running, archive, force=True, out=io.StringIO())
    finally:
        await app.stop()
    assert (await _export(settings, 4242))["customer"]["first_name"] == "Maya"


def test_on_postgresql_backup_says_to_use_pg_dump_and_keeps_the_models(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var", DATABASE_URL="postgresql://frontline@127.0.0.1:5432/frontline")
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "0123456789abcdef.tar.gz").write_bytes(b"model")
    out = io.StringIO()
    archive = backup(settings, tmp_path / "backup.tar.gz", out=out)
    assert "does NOT hold the database" in out.getvalue() and "pg_dump" in out.getvalue()
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [MANIFEST, "models/0123456789abcdef.tar.gz"]


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from bot.storage.db import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()
