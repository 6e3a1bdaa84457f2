"""Customers blocked for abuse: who, why, by whom and since when; every block and unblock in the audit log.

A block is kept by the customer's Telegram user id alone (no link to their profile), so forgetting a customer
(/forget) does not lift it, and it holds nothing personal beyond that id and the reason the agent gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.desk_models import Block
from bot.storage.models import AuditEntry, Customer, Handoff

REASON_CHARS = 1000
RESOLUTION = "Blocked: "  # how a handoff closed by a block is resolved: it is never reopened


@dataclass(frozen=True)
class Blocked:
    """A block as the console lists it: the customer's name while they are on record."""

    telegram_user_id: int
    name: str
    username: str | None
    reason: str
    blocked_by: str
    blocked_at: datetime


def active(session: Session, telegram_user_id: int) -> Block | None:
    """The customer's block, if they are blocked."""
    return session.scalar(select(Block).where(Block.telegram_user_id == telegram_user_id))


def block(
    session: Session, *, telegram_user_id: int, reason: str, by: str, by_user_id: int | None = None
) -> Block | None:
    """Block a customer (audited as `by`); None when they are blocked already."""
    if active(session, telegram_user_id) is not None:
        return None
    made = Block(
        telegram_user_id=telegram_user_id, reason=reason[:REASON_CHARS], blocked_by=by, blocked_by_user_id=by_user_id
    )
    session.add(made)
    session.flush()
    session.add(
        AuditEntry(
            who=_who(by, by_user_id),
            action="block customer",
            target=f"Telegram user {telegram_user_id}",
            before=None,
            after={"reason": made.reason},
        )
    )
    return made


def unblock(session: Session, telegram_user_id: int, *, by: str, by_user_id: int | None = None) -> Block | None:
    """Lift a customer's block (audited as `by`); the block lifted, or None when they were not blocked."""
    found = active(session, telegram_user_id)
    if found is None:
        return None
    session.delete(found)
    session.add(
        AuditEntry(
            who=_who(by, by_user_id),
            action="unblock customer",
            target=f"Telegram user {telegram_user_id}",
            before={"reason": found.reason, "blocked_by": found.blocked_by},
            after=None,
        )
    )
    session.flush()
    return found


def listed(session: Session) -> list[Blocked]:
    """Every blocked customer, the newest block first."""
    rows = session.execute(
        select(Block, Customer)
        .outerjoin(Customer, Customer.telegram_user_id == Block.telegram_user_id)
        .order_by(Block.created_at.desc(), Block.id.desc())
    ).all()
    return [
        Blocked(
            telegram_user_id=b.telegram_user_id,
            name=" ".join(filter(None, (c.first_name, c.last_name))) if c is not None else "",
            username=c.username if c is not None else None,
            reason=b.reason,
            blocked_by=b.blocked_by,
            blocked_at=b.created_at,
        )
        for b, c in rows
    ]


def drop_followups(session: Session, conversation_id: int) -> None:
    """The next-day checks not yet sent to a conversation are not sent: a blocked customer hears nothing more."""
    pending = session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation_id,
            Handoff.followup_due_at.is_not(None),
            Handoff.followup_sent_at.is_(None),
        )
    )
    for handoff in pending:
        handoff.followup_due_at = None


def _who(by: str, by_user_id: int | None) -> str:
    """How the audit log names who did it: an admin by username, an agent by name and Telegram user id."""
    return by if by_user_id is None else f"{by} (agent, Telegram user {by_user_id})"
