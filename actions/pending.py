"""Complaints confirmed while the database was unavailable: kept on disk, stored once it is back, then confirmed.

Each waiting complaint is one JSON file named after its idempotency key, written atomically. A retry stores
the ticket and queues the customer's confirmation in the app's outbox in one transaction, then removes the
file; a crash in between only means the next retry finds the ticket already there and sends nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage import transcript

log = logging.getLogger(__name__)
# Stores one complaint in an open transaction; returns the ticket reference when it created the ticket now.
Store = Callable[[AsyncSession, dict[str, Any]], Awaitable[str | None]]


class PendingComplaints:
    """A directory of complaints waiting for the database."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def keep(self, key: str, complaint: dict[str, Any], confirmations: list[str]) -> Path:
        """Write the complaint (and the texts to confirm it with later) so it survives a restart."""
        self._directory.mkdir(parents=True, exist_ok=True)
        path = self._directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"key": key, "complaint": complaint, "confirmations": confirmations}))
        os.replace(temporary, path)
        return path

    def waiting(self) -> list[Path]:
        """The complaints not stored yet, oldest first."""
        if not self._directory.is_dir():
            return []
        return sorted(self._directory.glob("*.json"), key=lambda p: p.stat().st_mtime)

    async def retry(self, sessions: async_sessionmaker[AsyncSession], store: Store) -> int:
        """Store what is waiting; stop at the first database error (it is still down). Returns how many were stored."""
        stored = 0
        for path in self.waiting():
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                log.exception("unreadable pending complaint %s: set aside", path.name)
                path.rename(path.with_suffix(".unreadable"))
                continue
            try:
                async with sessions.begin() as session:
                    reference = await store(session, entry)
                    if reference is not None:
                        await _confirm(session, entry, reference)
            except (OperationalError, InterfaceError, OSError) as exc:
                log.warning("the database is still unavailable; %d complaint(s) waiting: %s", len(self.waiting()), exc)
                break
            except (SQLAlchemyError, KeyError, TypeError, ValueError):
                # This one complaint cannot be stored (its data, not the database): keep it aside, go on with the rest.
                log.exception("pending complaint %s cannot be stored: set aside", path.name)
                path.rename(path.with_suffix(".failed"))
                continue
            except LookupError as exc:
                # The customer's records are gone (they asked us to forget them): nothing to attach it to.
                log.warning("pending complaint %s dropped: %s", path.name, exc)
            path.unlink(missing_ok=True)
            stored += 1
        return stored

    async def run(self, sessions: async_sessionmaker[AsyncSession], store: Store, interval: float) -> None:
        """Retry every `interval` seconds until cancelled."""
        while True:
            try:
                if self.waiting():
                    await self.retry(sessions, store)
            except Exception:
                log.exception("retrying pending complaints failed")
            await asyncio.sleep(interval)


async def _confirm(session: AsyncSession, entry: dict[str, Any], reference: str) -> None:
    """Queue the late confirmation in the app's outbox, which delivers it within seconds."""
    conversation = await session.run_sync(transcript.find_conversation, int(entry["complaint"]["chat_id"]))
    if conversation is None:
        raise LookupError(f"no conversation for chat {entry['complaint']['chat_id']}")
    text = random.choice(entry["confirmations"]).replace("{ticket_id}", reference)
    await session.run_sync(transcript.queue_outgoing, conversation=conversation, text=text, update_id=None)
