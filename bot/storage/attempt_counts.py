"""Counts of recent attempts by key (`AttemptCount`), shared by every process and machine over one database.

A count is held for the rest of a transaction before it is read (`hold`): on PostgreSQL a row lock, on SQLite the
write lock its INSERT … ON CONFLICT DO NOTHING takes, so two processes moving one count take turns and neither loses
the other's move. Whoever holds several counts in one transaction takes them in one order (the caller's), and the
cleaning (`prune`) skips rows another transaction holds: nobody waits in a circle.

Plain functions of a Session (run with `await sessions.run(fn, …)`); `now` is given by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Index, String, Table, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.storage.base import Base, affected

KEY_CHARS = 255
PRUNE_AT_ONCE = 500
KEPT_AT_MOST = timedelta(hours=1)  # no count is needed longer (users forget theirs sooner); housekeeping deletes it


class AttemptCount(Base):
    """How many attempts of one kind for one key count against it, since when, the latest, and the earliest moment
    the next may start."""

    __tablename__ = "attempt_counts"
    __table_args__ = (Index("ix_attempt_counts_last", "last"),)

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_CHARS), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    since: Mapped[datetime]  # when this count started: a late `give_back` for an earlier count changes nothing
    last: Mapped[datetime]
    not_before: Mapped[datetime]


_TABLE = cast(Table, AttemptCount.__table__)
_INSERT = {
    name: dialect.insert(_TABLE).on_conflict_do_nothing(index_elements=[_TABLE.c.kind, _TABLE.c.key])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


@dataclass(frozen=True)
class Count:
    """A key's count as read (or as to be written)."""

    failures: int
    since: datetime
    last: datetime
    not_before: datetime

    @classmethod
    def fresh(cls, now: datetime) -> Count:
        return cls(0, now, now, now)


def hold(session: Session, kind: str, key: str, now: datetime, forget: timedelta) -> Count:
    """The key's count, held by this transaction until it ends; a fresh one (since `now`) when there was none or its
    latest attempt is more than `forget` ago."""
    key = key[:KEY_CHARS]
    fresh = Count.fresh(now)
    insert = _INSERT[session.get_bind().dialect.name]
    while True:
        row = {"kind": kind, "key": key, "created_at": now, "updated_at": now, **_values(fresh)}
        if affected(session.execute(insert, row)) == 1:
            return fresh
        found = session.execute(
            select(_TABLE.c.failures, _TABLE.c.since, _TABLE.c.last, _TABLE.c.not_before)
            .where(_TABLE.c.kind == kind, _TABLE.c.key == key)
            .with_for_update()
        ).one_or_none()
        if found is not None:  # else it was pruned between the two statements: insert it again
            count = Count(*found)
            return fresh if now - count.last > forget else count


def put(session: Session, kind: str, key: str, count: Count, now: datetime) -> None:
    """Write a count this transaction holds."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.kind == kind, _TABLE.c.key == key[:KEY_CHARS])
        .values(updated_at=now, **_values(count))
    )


def give_back(session: Session, kind: str, key: str, since: datetime, now: datetime) -> None:
    """One failure fewer on the key's count, if it is still the count that started at `since` (one statement)."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.kind == kind, _TABLE.c.key == key[:KEY_CHARS], _TABLE.c.since == since, _TABLE.c.failures > 0)
        .values(failures=_TABLE.c.failures - 1, updated_at=now)
    )


def prune(session: Session, before: datetime) -> int:
    """Forget up to PRUNE_AT_ONCE counts whose latest attempt was before `before`, skipping rows another
    transaction holds (PostgreSQL; SQLite has one writer at a time anyway); how many went."""
    stale = (
        select(_TABLE.c.kind, _TABLE.c.key)
        .where(_TABLE.c.last < before)
        .limit(PRUNE_AT_ONCE)
        .with_for_update(skip_locked=True)
    )
    return affected(session.execute(delete(_TABLE).where(tuple_(_TABLE.c.kind, _TABLE.c.key).in_(stale))))


def counted(session: Session, kind: str) -> dict[str, Count]:
    """Every count of a kind, by key."""
    rows = session.execute(
        select(_TABLE.c.key, _TABLE.c.failures, _TABLE.c.since, _TABLE.c.last, _TABLE.c.not_before).where(
            _TABLE.c.kind == kind
        )
    )
    return {row.key: Count(*row[1:]) for row in rows}


def _values(count: Count) -> dict[str, object]:
    return {"failures": count.failures, "since": count.since, "last": count.last, "not_before": count.not_before}
