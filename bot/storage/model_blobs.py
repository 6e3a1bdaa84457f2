"""Trained models kept in the database (PostgreSQL): one row per model file, its bytes in chunks of 1 MiB.

A model is written once, under its fingerprint, in one transaction: its `ModelFile` row first (a second writer of
the same fingerprint waits on that row and then finds it there), then its chunks. Readers take one chunk per short
transaction, so serving a model of tens of MB never holds a pooled connection while the bytes travel, and never
holds more than one chunk in memory. Plain functions of a Session (run with `await sessions.run(fn, …)`,
`await sessions.read(fn, …)` or `await session.run_sync(fn, …)`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, insert, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.storage.base import Base

CHUNK_BYTES = 1 << 20  # 1 MiB a row: a model of tens of MB is tens of rows, each read on its own


class ModelFile(Base):
    """A trained model's file, stored whole: its size, its SHA-256 and how many chunks hold it."""

    __tablename__ = "model_files"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))  # the file's name, e.g. <fingerprint>.tar.gz
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    chunks: Mapped[int]


class ModelChunk(Base):
    """One piece of a model's file, in order (`number` from 0)."""

    __tablename__ = "model_chunks"

    fingerprint: Mapped[str] = mapped_column(
        ForeignKey("model_files.fingerprint", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


def stored(session: Session, fingerprint: str) -> ModelFile | None:
    """The stored model of that fingerprint (complete: it is committed with all its chunks), or None."""
    return session.get(ModelFile, fingerprint)


def begin(session: Session, fingerprint: str, name: str, size: int, sha256: str) -> bool:
    """Claim the fingerprint for a model about to be written in this transaction: False when it is stored already
    (or another writer stored it while this one waited). The number of chunks follows from the size."""
    row = {
        "fingerprint": fingerprint,
        "name": name,
        "size": size,
        "sha256": sha256,
        "chunks": -(-size // CHUNK_BYTES),
    }
    if session.get_bind().dialect.name == "postgresql":
        statement = postgres_insert(ModelFile).values(**row).on_conflict_do_nothing()
        return bool(session.execute(statement.returning(ModelFile.fingerprint)).first())
    if session.get(ModelFile, fingerprint) is not None:
        return False
    session.add(ModelFile(**row))
    session.flush()
    return True


def add_chunk(session: Session, fingerprint: str, number: int, data: bytes) -> None:
    """Write one chunk of a model claimed with `begin` (nothing of it is kept in the session)."""
    session.execute(insert(ModelChunk).values(fingerprint=fingerprint, number=number, data=data))


def chunk(session: Session, fingerprint: str, number: int) -> bytes | None:
    """One chunk's bytes, or None."""
    return session.scalar(
        select(ModelChunk.data).where(ModelChunk.fingerprint == fingerprint, ModelChunk.number == number)
    )
