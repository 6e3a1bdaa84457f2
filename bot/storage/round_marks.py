"""The desk round's marks (`RoundMark`): what it does every so often is paced by the database, never by one
process's memory, so that several app processes or machines taking turns at the round still do it once per period.

Plain functions of a Session (run with `await sessions.run(fn, …)`). Each move is a conditional UPDATE: of two
processes at the same mark, one moves it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.storage.base import affected
from bot.storage.desk_models import RoundMark


def _ensure(session: Session, name: str, at: datetime) -> bool:
    """Put the mark on record at `at` if it is not yet; True when this call put it there."""
    if session.get(RoundMark, name) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(RoundMark(name=name, at=at))
    except IntegrityError:
        return False  # another process put it there meanwhile
    return True


def take_turn(session: Session, name: str, now: datetime, every: timedelta, *, first_waits: bool = True) -> bool:
    """Whether it is this caller's turn to do `name` now: the mark was set `every` ago or more (or cleared), and is
    moved to `now`. A mark never seen before starts at `now`: the first turn comes `every` later (`first_waits`)
    or at once."""
    if _ensure(session, name, now):
        return not first_waits
    moved = session.execute(
        update(RoundMark)
        .where(RoundMark.name == name, or_(RoundMark.at.is_(None), RoundMark.at <= now - every))
        .values(at=now)
        .execution_options(synchronize_session=False)
    )
    return affected(moved) == 1


def due_at(session: Session, name: str, every: timedelta) -> datetime | None:
    """When the next turn of `name` comes at the earliest (None: at once). Marks only move on (but `clear`), so a
    process may keep this and not ask again before then."""
    at = session.scalar(select(RoundMark.at).where(RoundMark.name == name))
    return None if at is None else at + every


def clear(session: Session, name: str) -> None:
    """The next `take_turn` of `name` is due at once."""
    session.execute(
        update(RoundMark).where(RoundMark.name == name).values(at=None).execution_options(synchronize_session=False)
    )


def take_slot(session: Session, name: str, slots: int, now: datetime, window: timedelta) -> bool:
    """One of `slots` uses of `name` in any `window`: True (and the slot is taken) while one is free."""
    return any(take_turn(session, f"{name}:{slot}", now, window, first_waits=False) for slot in range(slots))
