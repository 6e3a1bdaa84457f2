"""What we remember of a customer from our own history: visits, tickets, whether they are a regular."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.models import Conversation, Customer, Direction, Message, Ticket, TicketStatus

OPEN_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS)


@dataclass(frozen=True)
class CustomerMemory:
    """The context a greeting (and later an agent) starts from."""

    earlier_visits: int
    open_tickets: list[Ticket]
    earlier_tickets: int
    regular: bool

    @property
    def returning(self) -> bool:
        """They wrote to us on an earlier day."""
        return self.earlier_visits > 0


def remember(
    session: Session, *, telegram_user_id: int, today: datetime, regular_min_visits: int, regular_min_tickets: int
) -> CustomerMemory | None:
    """The customer's history before `today` (a visit is a day they wrote to us); None for someone we never met."""
    customer = session.scalar(select(Customer).where(Customer.telegram_user_id == telegram_user_id))
    if customer is None:
        return None
    start_of_today = today.replace(hour=0, minute=0, second=0, microsecond=0)
    timestamps = session.scalars(
        select(Message.created_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.customer_id == customer.id,
            Message.direction == Direction.IN,
            Message.created_at < start_of_today,
        )
    )
    earlier_visits = len({stamp.date() for stamp in timestamps})
    tickets = list(session.scalars(select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id.desc())))
    return CustomerMemory(
        earlier_visits=earlier_visits,
        open_tickets=[t for t in tickets if t.status in OPEN_STATUSES],
        earlier_tickets=len(tickets),
        regular=earlier_visits >= regular_min_visits or len(tickets) >= regular_min_tickets,
    )
