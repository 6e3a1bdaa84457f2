"""Try-locks that hold across the app's worker processes (PostgreSQL advisory locks), or within one process.

Several workers share one webhook: a chat's updates must still be handled one at a time and in order, a chat's
replies sent by one worker at a time, and the desk's round run by one worker at a time. Each of those takes a
try-lock: whoever holds it does the work; the others leave it, and the holder looks again before it lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


def lock_key(namespace: str, key: int) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks, one space per purpose."""
    digest = hashlib.blake2b(f"{namespace}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LocalLocks:
    """Within one process (one worker, or SQLite)."""

    def __init__(self) -> None:
        self._held: set[tuple[str, int]] = set()

    @contextlib.asynccontextmanager
    async def try_hold(self, namespace: str, key: int) -> AsyncIterator[bool]:
        """True inside when this caller holds the lock; False when someone else does."""
        name = (namespace, key)
        if name in self._held:
            yield False
            return
        self._held.add(name)
        try:
            yield True
        finally:
            self._held.discard(name)


class PostgresLocks:
    """Across processes and machines: session advisory locks, all taken on one connection of their own.

    That connection is opened apart from the engine's pool and used only for a moment to take or release a lock, so
    holding any number of locks costs the pool nothing (one pooled connection held per lock while the work ran
    starved the pool under load). A lost connection loses its locks with it (as a pooled one did): the next lock
    opens a new one."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = create_async_engine(engine.url, poolclass=NullPool)  # (the url keeps its password)
        self._local = LocalLocks()  # also one holder per process, without a round trip
        self._connection: AsyncConnection | None = None
        self._talking = asyncio.Lock()  # one statement at a time on the connection

    async def _ask(self, statement: str, number: int, *, retry: bool) -> bool:
        async with self._talking:
            for attempt in (1, 2):
                if self._connection is None:
                    connection = await self._engine.connect()
                    self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                try:
                    return bool(await self._connection.scalar(text(statement), {"k": number}))
                except (exc.OperationalError, exc.InterfaceError, exc.InternalError):
                    # The connection broke (a database restart): its locks are gone; a new one serves the next.
                    broken, self._connection = self._connection, None
                    with contextlib.suppress(Exception):
                        await broken.close()
                    if not retry or attempt == 2:
                        raise
            raise AssertionError("unreachable")

    async def _release_once_taken(self, taking: asyncio.Future[bool], number: int) -> None:
        with contextlib.suppress(BaseException):
            if await taking:
                await self._ask("SELECT pg_advisory_unlock(:k)", number, retry=False)

    @contextlib.asynccontextmanager
    async def try_hold(self, namespace: str, key: int) -> AsyncIterator[bool]:
        """True inside when this worker holds the lock; False when another one does."""
        async with self._local.try_hold(namespace, key) as mine:
            if not mine:
                yield False
                return
            number = lock_key(namespace, key)
            # Shielded: a caller cancelled mid-statement leaves the shared connection in a known state, and a lock
            # taken for it after all is released.
            taking = asyncio.ensure_future(self._ask("SELECT pg_try_advisory_lock(:k)", number, retry=True))
            try:
                held = await asyncio.shield(taking)
            except asyncio.CancelledError:
                _background.add(task := asyncio.ensure_future(self._release_once_taken(taking, number)))
                task.add_done_callback(_background.discard)
                raise
            try:
                yield held
            finally:
                if held:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._ask("SELECT pg_advisory_unlock(:k)", number, retry=False))

    async def close(self) -> None:
        """Close the locks' connection (every lock it held is released)."""
        async with self._talking:
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.close()
                self._connection = None
        await self._engine.dispose()


_background: set[asyncio.Future[None]] = set()  # releases of locks whose takers were cancelled (kept referenced)


Locks = LocalLocks | PostgresLocks
