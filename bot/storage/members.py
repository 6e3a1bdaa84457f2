"""Who is an agent, as the database knows it: each agent's membership of the agents' group (as Telegram last told
it) and their private chat with the bot, their desk. Every worker reads it from here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.models import Agent


@dataclass(frozen=True)
class Seat:
    """An agent at their desk: a member of the agents' group with a private chat with the bot."""

    telegram_user_id: int
    chat_id: int
    checked_at: datetime | None  # when Telegram last said they are in the group


def seats(session: Session) -> list[Seat]:
    """Every agent at their desk."""
    rows = session.execute(
        select(Agent.telegram_user_id, Agent.private_chat_id, Agent.membership_checked_at).where(
            Agent.private_chat_id.is_not(None), Agent.in_group
        )
    )
    return [Seat(*row) for row in rows]


def has_desk(session: Session, telegram_user_id: int, chat_id: int) -> bool:
    """Whether this chat is the desk of this member of the agents' group."""
    return (
        session.scalar(
            select(Agent.id).where(
                Agent.telegram_user_id == telegram_user_id, Agent.private_chat_id == chat_id, Agent.in_group
            )
        )
        is not None
    )


def is_desk(session: Session, chat_id: int) -> bool:
    """Whether this private chat is a member of the agents' group's desk (whichever process registered it)."""
    return session.scalar(select(Agent.id).where(Agent.private_chat_id == chat_id, Agent.in_group).limit(1)) is not None


def known_member(session: Session, telegram_user_id: int) -> bool:
    """Whether this user was in the agents' group when Telegram last said (False for someone never seen)."""
    return bool(session.scalar(select(Agent.in_group).where(Agent.telegram_user_id == telegram_user_id)))


def locked(session: Session, telegram_user_id: int) -> Agent | None:
    """The agent with this Telegram account, their row locked to this transaction (on PostgreSQL; SQLite has one
    writer at a time): two workers learning the same news change it one after the other."""
    return session.scalar(select(Agent).where(Agent.telegram_user_id == telegram_user_id).with_for_update())
