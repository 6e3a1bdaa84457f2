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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


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
    """Across processes and machines: session advisory locks on a connection held while the work runs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._local = LocalLocks()  # also one holder per process, without a round trip

    @contextlib.asynccontextmanager
    async def try_hold(self, namespace: str, key: int) -> AsyncIterator[bool]:
        """True inside when this worker holds the lock; False when another one does."""
        async with self._local.try_hold(namespace, key) as mine:
            if not mine:
                yield False
                return
            number = lock_key(namespace, key)
            async with self._engine.connect() as connection:
                held = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": number}))
                try:
                    yield held
                finally:
                    if held:
                        with contextlib.suppress(Exception):
                            await asyncio.shield(
                                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
                            )
                    await connection.commit()


Locks = LocalLocks | PostgresLocks
