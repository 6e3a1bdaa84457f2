"""Where trained models are kept: files under FRONTLINE_MODELS (SQLite), or the database itself (PostgreSQL).

With PostgreSQL every app instance serves the live model from the database (`bot/storage/model_blobs.py`), so a
Rasa instance may pull from any of them, and a model trained on one machine is live on all. A model file found
under FRONTLINE_MODELS but not yet stored (trained before the models moved into the database, or by
`frontline train`) is stored when it is needed: at start for the live model and the content's, and when an
earlier version is put back live.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bot.storage import model_blobs
from bot.storage.db import Sessions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    """A stored model ready to be sent: its file name, its size, and its bytes a chunk at a time."""

    name: str
    size: int
    pieces: AsyncIterator[bytes]


def file_name(fingerprint: str) -> str:
    return f"{fingerprint}.tar.gz"


def _measure(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while data := file.read(model_blobs.CHUNK_BYTES):
            digest.update(data)
            size += len(data)
    return size, digest.hexdigest()


class FileStore:
    """Models as files under one folder (SQLite: one machine)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir

    async def has(self, fingerprint: str) -> bool:
        return (self.models_dir / file_name(fingerprint)).is_file()

    async def put(self, path: Path, fingerprint: str) -> bool:
        """Keep a trained model's file (moved into the folder when it is elsewhere); True when it was not kept yet."""
        target = self.models_dir / file_name(fingerprint)
        if target.is_file():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, path, target)
        return True

    async def ensure(self, fingerprint: str) -> bool:
        """Whether the model of that fingerprint can be served."""
        return await self.has(fingerprint)

    async def open(self, fingerprint: str) -> Stored | None:
        path = self.models_dir / file_name(fingerprint)
        if not path.is_file():
            return None
        return Stored(path.name, path.stat().st_size, self._read(path))

    async def _read(self, path: Path) -> AsyncIterator[bytes]:
        with path.open("rb") as file:
            while data := await asyncio.to_thread(file.read, model_blobs.CHUNK_BYTES):
                yield data


class DatabaseStore(FileStore):
    """Models in the database (PostgreSQL): every app instance serves the same ones. The folder is only where a
    training writes its file, and where files trained before are found to be stored."""

    def __init__(self, sessions: Sessions, models_dir: Path) -> None:
        super().__init__(models_dir)
        self._sessions = sessions

    async def has(self, fingerprint: str) -> bool:
        return await self._sessions.read(model_blobs.stored, fingerprint) is not None

    async def put(self, path: Path, fingerprint: str) -> bool:
        """Store a model's file in one transaction, a chunk at a time; False when it was stored already."""
        size, digest = await asyncio.to_thread(_measure, path)
        async with self._sessions.begin() as session:
            if not await session.run_sync(model_blobs.begin, fingerprint, file_name(fingerprint), size, digest):
                return False
            with path.open("rb") as file:
                number = 0
                while data := await asyncio.to_thread(file.read, model_blobs.CHUNK_BYTES):
                    await session.run_sync(model_blobs.add_chunk, fingerprint, number, data)
                    number += 1
        log.info("model %s stored in the database (%d bytes)", fingerprint, size)
        return True

    async def ensure(self, fingerprint: str) -> bool:
        """Whether the model can be served: stored, or stored now from the file this machine has."""
        if await self.has(fingerprint):
            return True
        path = self.models_dir / file_name(fingerprint)
        if not path.is_file():
            return False
        await self.put(path, fingerprint)
        return True

    async def open(self, fingerprint: str) -> Stored | None:
        row = await self._sessions.read(model_blobs.stored, fingerprint)
        if row is None:
            return None
        return Stored(row.name, row.size, self._chunks(fingerprint, row.chunks))

    async def _chunks(self, fingerprint: str, count: int) -> AsyncIterator[bytes]:
        for number in range(count):  # one short read each: no connection is held while the bytes travel
            data = await self._sessions.read(model_blobs.chunk, fingerprint, number)
            if data is None:
                raise LookupError(f"chunk {number} of model {fingerprint} is missing")
            yield data


ModelStore = FileStore | DatabaseStore


def store_for(sessions: Sessions, models_dir: Path) -> ModelStore:
    """The database on PostgreSQL; files under `models_dir` otherwise."""
    if sessions.backend == "postgresql":
        return DatabaseStore(sessions, models_dir)
    return FileStore(models_dir)
