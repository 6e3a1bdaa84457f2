"""Tickets: complaints the customer confirmed, created once however often the request is retried."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.storage.models import Conversation, Ticket, TicketPriority

REFERENCE = re.compile(r"^#?T(\d{1,9})$", re.IGNORECASE)  # a ticket's number as agents quote it (T000123); fits an int


def create(
    session: Session,
    *,
    idempotency_key: str,
    conversation: Conversation,
    category: str,
    description: str,
    desired_resolution: str,
    priority: TicketPriority,
    order_number: str | None = None,
    contact: str | None = None,
    photos: list[str] | None = None,
) -> tuple[Ticket, bool]:
    """The ticket for this key, created now unless an earlier attempt already did; True when new."""
    existing = session.scalar(select(Ticket).where(Ticket.idempotency_key == idempotency_key))
    if existing is not None:
        return existing, False
    ticket = Ticket(
        idempotency_key=idempotency_key,
        customer_id=conversation.customer_id,
        conversation_id=conversation.id,
        category=category,
        description=description,
        desired_resolution=desired_resolution,
        priority=priority,
        order_number=order_number,
        contact=contact,
        photos=photos or [],
    )
    session.add(ticket)
    session.flush()
    return ticket, True


def for_customer(session: Session, customer_id: int) -> list[Ticket]:
    """A customer's tickets, newest first."""
    rows = session.scalars(select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id.desc()))
    return list(rows)


def count_in_category(session: Session, customer_id: int, category: str) -> int:
    """How many earlier tickets of this customer were about the same kind of problem."""
    query = (
        select(func.count()).select_from(Ticket).where(Ticket.customer_id == customer_id, Ticket.category == category)
    )
    return session.scalar(query) or 0


def opened_since(session: Session, customer_id: int, since: datetime) -> int:
    """How many tickets this customer opened from `since` on."""
    query = (
        select(func.count()).select_from(Ticket).where(Ticket.customer_id == customer_id, Ticket.created_at >= since)
    )
    return session.scalar(query) or 0
