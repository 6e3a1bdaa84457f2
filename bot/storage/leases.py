"""Leases: a named right that one process holds for a few seconds at a time and renews while it lives.

A lease is a shared setting (`settings`, key `lease:<name>`) holding its holder and when it runs out. Taking and
renewing are compare-and-set statements on that row, so two processes never both hold it, on SQLite and on
PostgreSQL alike. A holder that dies stops renewing, and the lease is free once it runs out.

Plain functions of a Session (run with `await sessions.run(fn, …)`); `now` is given by the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from typing import cast as typed

from sqlalchemy import CursorResult, Table, Text, cast, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.storage.models import Setting

_TABLE = typed(Table, Setting.__table__)
_INSERT = {
    name: dialect.insert(_TABLE).on_conflict_do_nothing(index_elements=[_TABLE.c.key])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


@dataclass(frozen=True)
class Lease:
    """Who holds a lease, and until when (unless they renew it)."""

    holder: str
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now


def _key(name: str) -> str:
    return f"lease:{name}"


def _value(holder: str, expires_at: datetime) -> dict[str, str]:
    return {"holder": holder, "expires_at": expires_at.isoformat()}


def _read(session: Session, name: str) -> tuple[str, Lease] | None:
    """The row's stored text (for the compare-and-set) and the lease it holds."""
    raw = session.scalar(select(cast(_TABLE.c.value, Text)).where(_TABLE.c.key == _key(name)))
    if raw is None:
        return None
    value = json.loads(raw)
    return raw, Lease(value["holder"], datetime.fromisoformat(value["expires_at"]))


def current(session: Session, name: str) -> Lease | None:
    """Who holds the lease (perhaps run out), or None when nobody ever took it or it was released."""
    read = _read(session, name)
    return None if read is None else read[1]


def take(
    session: Session, name: str, holder: str, *, now: datetime, seconds: float, replacing: str | None = None
) -> bool:
    """Take the lease for `seconds` when it is free, run out, already `holder`'s, or held by `replacing` (a holder
    the caller knows to be dead); False when someone else holds it."""
    wanted = _value(holder, now + timedelta(seconds=seconds))
    inserted = typed(
        CursorResult[Any],
        session.execute(_INSERT[session.get_bind().dialect.name], {"key": _key(name), "value": wanted}),
    )
    if inserted.rowcount == 1:
        return True
    read = _read(session, name)
    if read is None:  # released between the two statements: try again
        return take(session, name, holder, now=now, seconds=seconds, replacing=replacing)
    raw, lease = read
    if lease.holder not in (holder, replacing) and not lease.expired(now):
        return False
    return _swap(session, name, raw, wanted)


def renew(session: Session, name: str, holder: str, *, now: datetime, seconds: float) -> bool:
    """Extend `holder`'s lease to `seconds` from now; False when it is no longer theirs (it ran out and someone
    else took it, or it was released)."""
    read = _read(session, name)
    if read is None or read[1].holder != holder:
        return False
    return _swap(session, name, read[0], _value(holder, now + timedelta(seconds=seconds)))


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up at once, if `holder` still holds it."""
    read = _read(session, name)
    if read is not None and read[1].holder == holder:
        session.execute(delete(_TABLE).where(_TABLE.c.key == _key(name), cast(_TABLE.c.value, Text) == read[0]))


def _swap(session: Session, name: str, expected: str, value: dict[str, str]) -> bool:
    """Write `value` only if the row still holds exactly `expected`: whoever changed it first wins."""
    result = typed(
        CursorResult[Any],
        session.execute(
            update(_TABLE).where(_TABLE.c.key == _key(name), cast(_TABLE.c.value, Text) == expected).values(value=value)
        ),
    )
    return bool(result.rowcount == 1)
