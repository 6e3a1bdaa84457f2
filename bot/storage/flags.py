"""Answers agents flagged as wrong: recorded by the desk (/flag), listed and resolved in the console.

Plain functions of a Session (run with `await session.run_sync(fn, …)` or `await sessions.read(fn, …)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.desk_models import Flag
from bot.storage.models import Agent, Customer, Direction, Message, Ticket, utcnow


def flaggable_answer(session: Session, conversation_id: int) -> Message | None:
    """The bot's last answer before the conversation's newest handoff (not the handoff's own words); its last
    answer so far when no handoff was asked of the bot."""
    request = session.scalar(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.kind == "handoff")
        .order_by(Message.id.desc())
        .limit(1)
    )
    query = select(Message).where(
        Message.conversation_id == conversation_id,
        Message.direction == Direction.OUT,
        Message.kind == "text",
        Message.update_id.is_not(None),
    )
    if request is not None:
        query = query.where(Message.id < request.id, Message.update_id != request.update_id)
    return session.scalar(query.order_by(Message.id.desc()).limit(1))


def flag(session: Session, *, ticket: Ticket, agent: Agent, note: str) -> Flag | None:
    """Record that the bot answered wrongly in the ticket's conversation; None when the bot said nothing there."""
    if ticket.conversation_id is None:
        return None
    answer = flaggable_answer(session, ticket.conversation_id)
    if answer is None:
        return None
    again = session.scalar(
        select(Flag)
        .where(  # the same update handled again after a restart
            Flag.message_id == answer.id, Flag.agent_id == agent.id, Flag.note == note, Flag.resolved_at.is_(None)
        )
        .limit(1)
    )
    if again is not None:
        return again
    made = Flag(
        message_id=answer.id, conversation_id=ticket.conversation_id, ticket_id=ticket.id, agent_id=agent.id, note=note
    )
    session.add(made)
    session.flush()
    return made


def question_of(session: Session, answer: Message) -> str:
    """What the customer wrote that the bot answered so."""
    return (
        session.scalar(
            select(Message.text)
            .where(
                Message.conversation_id == answer.conversation_id,
                Message.update_id == answer.update_id,
                Message.direction == Direction.IN,
            )
            .limit(1)
        )
        or ""
    )


@dataclass
class Flagged:
    """A flag with what it is about."""

    flag: Flag
    question: str  # what the customer wrote
    answer: str  # what the bot said
    agent: str  # the flagging agent's first name
    ticket: str  # the ticket's reference
    customer: Customer | None  # None once forgotten


def flagged(session: Session, *, resolved: bool = False, limit: int = 50) -> list[Flagged]:
    """Open flags (or resolved ones), newest first."""
    query = select(Flag).where(Flag.resolved_at.is_not(None) if resolved else Flag.resolved_at.is_(None))
    found = []
    for made in session.scalars(query.order_by(Flag.id.desc()).limit(limit)).all():
        answer = session.get(Message, made.message_id)
        agent = session.get(Agent, made.agent_id) if made.agent_id else None
        ticket = session.get(Ticket, made.ticket_id) if made.ticket_id else None
        customer = session.get(Customer, ticket.customer_id) if ticket and ticket.customer_id else None
        found.append(
            Flagged(
                flag=made,
                question=question_of(session, answer),
                answer=answer.text,
                agent=agent.first_name if agent else "",
                ticket=ticket.reference if ticket else "",
                customer=customer,
            )
        )
    return found


def resolve(session: Session, flag_id: int, who: str) -> bool:
    """Mark a flag resolved; False when it is unknown or already resolved."""
    made = session.get(Flag, flag_id)
    if made is None or made.resolved_at is not None:
        return False
    made.resolved_at, made.resolved_by = utcnow(), who
    return True
