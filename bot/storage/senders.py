"""The app processes that send to Telegram now, each on record with its latest beat: Telegram's overall and group
allowances are the bot's, not a process's, so each process takes its share of them (bot/telegram/send_share.py).

Plain functions of a Session (run with `await sessions.run(fn, …)`); `now` is given by the caller.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import String, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.storage.base import Base, affected

HOLDER_CHARS = 160


class Sender(Base):
    """One app process that sends to Telegram, and when it last said it still does."""

    __tablename__ = "senders"

    holder: Mapped[str] = mapped_column(String(HOLDER_CHARS), primary_key=True)
    seen_at: Mapped[datetime]


_TABLE = cast(Table, Sender.__table__)
_INSERT = {
    name: dialect.insert(_TABLE).on_conflict_do_nothing(index_elements=[_TABLE.c.holder])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def beat(session: Session, holder: str, now: datetime) -> None:
    """`holder` still sends, as of `now`."""
    holder = holder[:HOLDER_CHARS]
    moved = session.execute(
        update(Sender).where(Sender.holder == holder).values(seen_at=now).execution_options(synchronize_session=False)
    )
    if affected(moved) == 0:
        session.execute(_INSERT[session.get_bind().dialect.name], {"holder": holder, "seen_at": now})


def live(session: Session, now: datetime, term: timedelta) -> int:
    """How many processes beat within the last `term`; those silent for ten terms are forgotten."""
    session.execute(delete(Sender).where(Sender.seen_at < now - 10 * term))
    return session.scalar(select(func.count()).select_from(Sender).where(Sender.seen_at >= now - term)) or 0


def leave(session: Session, holder: str) -> None:
    """`holder` sends no more (a clean stop): the others take its share at their next beat."""
    session.execute(delete(Sender).where(Sender.holder == holder[:HOLDER_CHARS]))
