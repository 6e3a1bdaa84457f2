"""Reply-time alerts' records: a customer's unanswered stretch (from their first message no person has answered yet
to an agent's reply), and the reminder, admins' note and holding message each sent once in it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from bot.storage.models import ACTIVE_HANDOFF, Conversation, Direction, Handoff, HandoffStatus, Message, utcnow

# As bot/storage/handoffs.py loads a handoff for a desk step (that module reads `pending` from here).
WITH_PEOPLE = (
    joinedload(Handoff.ticket),
    joinedload(Handoff.agent),
    joinedload(Handoff.conversation).joinedload(Conversation.customer),
)


def customer_wrote(handoff: Handoff) -> None:
    """A customer's new message: it opens a stretch unless one is open (the wait counts from its first message)."""
    if handoff.waiting_since is None:
        handoff.waiting_since = utcnow()
        handoff.reminded_at = handoff.noted_at = handoff.held_at = None


def new_holder(handoff: Handoff) -> None:
    """Another agent holds the customer now (a transfer): their reminder and the admins' note count from now."""
    handoff.holder_since = utcnow()
    handoff.reminded_at = handoff.noted_at = None


def agent_replied(handoff: Handoff) -> None:
    """A person answered the customer: the stretch ends, and nothing more is due for it."""
    handoff.waiting_since = None


def _open() -> tuple[ColumnElement[bool], ...]:
    return Handoff.status.in_(ACTIVE_HANDOFF), Handoff.waiting_since.is_not(None)


def pending() -> ColumnElement[bool]:
    """An active handoff with an open stretch for which something may still fall due (for the round's one read)."""
    claimed = and_(
        Handoff.status == HandoffStatus.CLAIMED, or_(Handoff.reminded_at.is_(None), Handoff.noted_at.is_(None))
    )
    return and_(*_open(), or_(Handoff.held_at.is_(None), claimed))


def unanswered_claims(session: Session) -> list[Handoff]:
    """Claimed customers in an open stretch whose agent has not been reminded, or the admins told, yet."""
    return list(
        session.scalars(
            select(Handoff)
            .where(
                *_open(),
                Handoff.status == HandoffStatus.CLAIMED,
                or_(Handoff.reminded_at.is_(None), Handoff.noted_at.is_(None)),
            )
            .order_by(Handoff.waiting_since)
            .options(*WITH_PEOPLE)
        )
    )


def unheld(session: Session, before: datetime) -> list[Handoff]:
    """Waiting or helped customers whose stretch began by `before` and who have had no holding message in it."""
    return list(
        session.scalars(
            select(Handoff)
            .where(*_open(), Handoff.held_at.is_(None), Handoff.waiting_since <= before)
            .order_by(Handoff.waiting_since)
            .options(*WITH_PEOPLE)
        )
    )


def last_told(session: Session, conversation_id: int, chat_id: int) -> datetime | None:
    """When anything was last recorded for the customer's own chat (a reply, a wait update, an agent's message)."""
    return session.scalar(
        select(func.max(Message.created_at)).where(
            Message.conversation_id == conversation_id,
            Message.chat_id == chat_id,
            Message.direction == Direction.OUT,
        )
    )
