"""Databases for unit tests: a fresh SQLite file, and the local PostgreSQL when reachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage.db import create_engine, create_sessionmaker, migrate
from tests.conftest import skip_or_fail
from tests.unit.chat_harness import Harness, running_harness

POSTGRES_URL = os.environ.get("DATABASE_TEST_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def _fresh_postgres_database() -> str:
    url = make_url(POSTGRES_URL)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        skip_or_fail(f"PostgreSQL is not reachable at {url.render_as_string()}: {exc}")
    name = f"frontline_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = await asyncpg.connect(
        url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        database_url = await _fresh_postgres_database()
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
        if request.param == "postgres":
            await _drop_postgres_database(database_url)


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[Harness]:
    """The app against the in-process emulator and a scripted Rasa."""
    async with running_harness(tmp_path) as running:
        yield running


@pytest.fixture
async def shop(sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> dict:
    """A few of the shop's help-center articles stored and indexed with the real encoder, two customers'
    conversations, and the help-center actions pointed at both (tests/unit/kb_answer_support.py)."""
    from tests.unit.kb_answer_support import stored_shop  # the encoder and the actions: only for tests that ask

    return await stored_shop(sessions, monkeypatch)
