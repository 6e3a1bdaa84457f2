"""Engine and session factories, and migrations applied on start."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, exc, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATION_LOCK = 0x46524F4E544C494E  # "FRONTLIN": the advisory lock migrations take on PostgreSQL
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Two processes write (app and actions): WAL lets readers run beside one writer,
    # and the busy timeout makes a writer wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    _wal_journal(cursor)
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _wal_journal(cursor) -> None:  # type: ignore[no-untyped-def]
    """Switch to WAL, retrying while another process switches the same new file (app and actions starting together).

    SQLite does not call its busy handler for this one step, so the loser of that race would fail at once with
    "database is locked"; on a file already in WAL the pragma is a no-op. The pauses block the caller's thread (the
    event loop's, through aiosqlite), which happens only while a new file is being created.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as error:  # sqlite3's, through pysqlite or aiosqlite
            if "database is locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


@dataclass
class Outage:
    """Whether the database failed (could not be reached, or dropped the connection) during one piece of work."""

    failed: bool = False
    reason: str = ""

    def note(self, error: BaseException) -> None:
        self.failed = True
        self.reason = f"{type(error).__name__}: {error}"[:300]


_outage: ContextVar[Outage | None] = ContextVar("frontline_database_outage", default=None)


@contextmanager
def watch_outage() -> Iterator[Outage]:
    """Note whether the database fails under this block (and the tasks it starts): such work is to be done again.

    Handlers swallow their errors (they tell the customer instead), so the caller learns here that the work met a
    database that was down or restarting, rather than a bug, and that trying again later will help.
    """
    outage = Outage()
    token = _outage.set(outage)
    try:
        yield outage
    finally:
        _outage.reset(token)


def database_failed() -> bool:
    """True inside a watch_outage() block once the database has failed in it."""
    outage = _outage.get()
    return outage is not None and outage.failed


def _note_error(context: ExceptionContext) -> None:
    # A lost connection mid-work (not the pool's pre-ping, which reconnects), or one that cannot be made. (As the
    # server shuts down, asyncpg may also report an InternalError on a connection it was closing.)
    outage = _outage.get()
    if outage is None or context.is_pre_ping:
        return
    if context.is_disconnect or isinstance(
        context.sqlalchemy_exception, (exc.OperationalError, exc.InterfaceError, exc.InternalError)
    ):
        outage.note(context.original_exception)


def _note_connect_failure(dialect, _record, cargs, cparams):  # type: ignore[no-untyped-def]
    # A refused connection (server down, restarting, not accepting yet) raises outside SQLAlchemy's error events.
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as error:
        outage = _outage.get()
        if outage is not None:
            outage.note(error)
        raise


def create_engine(database_url: str) -> AsyncEngine:
    """An async engine for the URL; SQLite files get their folder, WAL and a busy timeout."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # Pre-ping: after a server restart, a pooled connection is found dead and replaced before it is used.
    engine = create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    event.listen(engine.sync_engine, "handle_error", _note_error)
    event.listen(engine.sync_engine, "do_connect", _note_connect_failure)
    return engine


class Sessions(async_sessionmaker[AsyncSession]):
    """Async sessions that keep loaded attributes after commit (results outlive the transaction), and `run`: one
    transaction of plain (sync) work.

    The work on every message's way (store the update, record it, record the answer, deliver) is written as a plain
    function of a Session. On a SQLite file, `run` hands the whole transaction to a thread of its own that talks to
    sqlite3 directly: aiosqlite's round trip to its thread for every statement (and SQLAlchemy's greenlet around it)
    cost more than the statements, over half the app's CPU per message (make bench-profile). One thread is enough:
    SQLite takes one writer at a time anyway. Elsewhere (PostgreSQL, SQLite in memory) the same function runs in an
    async session (`run_sync`).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self._plain: sessionmaker[Session] | None = None
        self._thread: ThreadPoolExecutor | None = None
        url = engine.url
        self.backend = url.get_backend_name()  # "postgresql" or "sqlite"
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._plain_engine = create_sync_engine(
                url.set(drivername="sqlite+pysqlite"), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            )
            event.listen(self._plain_engine, "connect", _sqlite_pragmas)
            self._plain = sessionmaker(self._plain_engine, expire_on_commit=False)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="frontline-db")

    async def run(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work(session, *args, **kwargs)` in one transaction, committed when it returns; its result.

        The work's context (the outage watch, the update being handled) goes with it to the database's thread.
        """
        return await self._run(work, args, kwargs, commit=True)

    async def read(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """As `run`, for work that only reads: nothing is committed."""
        return await self._run(work, args, kwargs, commit=False)

    async def _run(self, work: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], *, commit: bool) -> T:
        if self._plain is None:
            async with self.begin() if commit else self() as session:
                return await session.run_sync(work, *args, **kwargs)
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, context.run, self._work, work, args, kwargs, commit
        )

    def _work(self, work: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], commit: bool) -> T:
        assert self._plain is not None
        with self._plain.begin() if commit else self._plain() as session:
            return work(session, *args, **kwargs)

    def dispose(self) -> None:
        """Close the SQLite thread's connection and end the thread (the async engine is disposed on its own)."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._plain_engine.dispose()


def create_sessionmaker(engine: AsyncEngine) -> Sessions:
    """The app's sessions on an engine (see Sessions)."""
    return Sessions(engine)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection) -> None:
    """Bring the schema on a (sync) connection to the newest migration."""
    command.upgrade(_alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several app workers (or machines) start at once: one migrates, the others wait and find nothing to do.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await connection.run_sync(upgrade)
