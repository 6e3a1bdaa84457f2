"""Requests for a person: opened once per conversation at a time, claimed by one agent, closed with timings kept."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from bot.storage import alerts
from bot.storage.base import affected
from bot.storage.models import (
    ACTIVE_HANDOFF,
    Agent,
    Conversation,
    ConversationState,
    Handoff,
    HandoffStatus,
    Message,
    Promise,
    Ticket,
    TicketPriority,
    utcnow,
)

# The queue's order: a ticket's priority as a number, highest first (bot/storage/models.py's TicketPriority).
PRIORITY_RANK = case(
    {TicketPriority.URGENT: 3, TicketPriority.HIGH: 2, TicketPriority.NORMAL: 1, TicketPriority.LOW: 0},
    value=Ticket.priority,
    else_=1,
)

# A handoff with the people and records every desk step needs: one query, not a lookup for each.
WITH_PEOPLE = (
    joinedload(Handoff.ticket),
    joinedload(Handoff.agent),
    joinedload(Handoff.conversation).joinedload(Conversation.customer),
)


def load(session: Session, handoff_id: int) -> Handoff | None:
    """A handoff with its ticket, conversation, customer and agent."""
    return session.scalar(select(Handoff).where(Handoff.id == handoff_id).options(*WITH_PEOPLE))


def active_for(session: Session, conversation_id: int) -> Handoff | None:
    """The conversation's handoff that is waiting or being handled, if any."""
    return session.scalar(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.status.in_(ACTIVE_HANDOFF))
        .order_by(Handoff.id.desc())
        .limit(1)
        .options(*WITH_PEOPLE)
    )


def open_handoff(
    session: Session, *, conversation: Conversation, ticket: Ticket, reason: str, context: dict[str, Any]
) -> tuple[Handoff, bool]:
    """Queue the conversation for a person, unless it already is (a customer is never transferred twice)."""
    existing = active_for(session, conversation.id)
    if existing is not None:
        return existing, False
    handoff = Handoff(conversation_id=conversation.id, ticket_id=ticket.id, reason=reason, context=context)
    session.add(handoff)
    conversation.state = ConversationState.QUEUED
    session.flush()
    return handoff, True


def place_in_line(session: Session, handoff: Handoff) -> int:
    """1 for the next customer an agent will pick up: the queue's order is the ticket's priority (highest first), then
    the time waited (see `queued`)."""
    rank = session.scalar(select(PRIORITY_RANK).where(Ticket.id == handoff.ticket_id))
    ahead = session.scalar(
        select(func.count())
        .select_from(Handoff)
        .join(Ticket, Ticket.id == Handoff.ticket_id)
        .where(
            Handoff.status == HandoffStatus.QUEUED,
            Handoff.id != handoff.id,
            or_(
                PRIORITY_RANK > rank,
                and_(
                    PRIORITY_RANK == rank,
                    or_(
                        Handoff.queued_at < handoff.queued_at,
                        and_(Handoff.queued_at == handoff.queued_at, Handoff.id < handoff.id),
                    ),
                ),
            ),
        )
    )
    return (ahead or 0) + 1


def _queued() -> tuple[ColumnElement[bool], ...]:
    return (Handoff.status == HandoffStatus.QUEUED,)


def queued(session: Session) -> list[Handoff]:
    """Everyone waiting for a person, in the queue's order: the ticket's priority (highest first), then the longest
    waiting first."""
    return list(
        session.scalars(
            select(Handoff)
            .join(Ticket, Ticket.id == Handoff.ticket_id)
            .where(*_queued())
            .order_by(PRIORITY_RANK.desc(), Handoff.queued_at, Handoff.id)
            .options(*WITH_PEOPLE)
        )
    )


def wait_update_due(session: Session, told_before: datetime) -> bool:
    """Whether anyone waiting was never told their place, or last told before `told_before`: one indexed read, so
    the desk's round reads the whole queue only when somebody may be due a wait update."""
    due = or_(Handoff.told_at.is_(None), Handoff.told_at <= told_before)
    return session.scalar(select(Handoff.id).where(*_queued(), due).limit(1)) is not None


def claim(session: Session, handoff_id: int, agent: Agent) -> bool:
    """Give a waiting handoff to an agent; False if someone else was quicker (or it is no longer waiting)."""
    now = utcnow()
    result = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status == HandoffStatus.QUEUED)
        .values(
            status=HandoffStatus.CLAIMED,
            agent_id=agent.id,
            claimed_at=now,
            holder_since=now,
            updated_at=now,
            reminded_at=None,
            noted_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if affected(result) != 1:
        return False
    handoff = session.get(Handoff, handoff_id, populate_existing=True)
    session.expire(handoff, ["agent"])  # the UPDATE set its agent behind the ORM's back
    conversation = session.get(Conversation, handoff.conversation_id)
    conversation.state = ConversationState.HUMAN
    return True


def finish(
    session: Session,
    handoff: Handoff,
    status: HandoffStatus,
    *,
    resolution: str | None = None,
    followup_after: timedelta | None = None,
) -> bool:
    """End an active handoff (closed, returned to the bot, or cancelled); the conversation goes back to the bot."""
    if handoff.status not in ACTIVE_HANDOFF:
        return False
    now = utcnow()
    handoff.status = status
    handoff.closed_at = now
    handoff.resolution = resolution
    if followup_after is not None:
        handoff.followup_due_at = now + followup_after
    conversation = session.get(Conversation, handoff.conversation_id)
    conversation.state = ConversationState.BOT
    return True


def claimed_by(session: Session, agent_id: int) -> list[Handoff]:
    """The conversations an agent is handling now, oldest claim first."""
    return list(
        session.scalars(
            select(Handoff)
            .where(Handoff.agent_id == agent_id, Handoff.status == HandoffStatus.CLAIMED)
            .order_by(Handoff.claimed_at)
            .options(*WITH_PEOPLE)
        )
    )


def agent(session: Session, *, telegram_user_id: int, first_name: str, username: str | None) -> Agent:
    """The agent with this Telegram account, created on first sight, name kept current."""
    found = session.scalar(select(Agent).where(Agent.telegram_user_id == telegram_user_id))
    if found is None:
        found = Agent(telegram_user_id=telegram_user_id)
        session.add(found)
    found.first_name = first_name or ""
    found.username = username
    session.flush()
    return found


def _without_topic() -> tuple[ColumnElement[bool], ...]:
    return Ticket.topic_id.is_(None), Ticket.conversation_id.is_not(None)


def tickets_without_topic(session: Session) -> list[Ticket]:
    """Tickets the agents' group has not seen yet, oldest first."""
    return list(session.scalars(select(Ticket).where(*_without_topic()).order_by(Ticket.id)))


def for_ticket(session: Session, ticket_id: int) -> Handoff | None:
    """The newest handoff of a ticket."""
    return session.scalar(select(Handoff).where(Handoff.ticket_id == ticket_id).order_by(Handoff.id.desc()).limit(1))


def _followup_due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return Handoff.followup_due_at <= now, Handoff.followup_sent_at.is_(None)


def due_followups(session: Session, now: datetime | None = None) -> list[Handoff]:
    """Closed handoffs whose next-day check is due and not sent."""
    return list(
        session.scalars(select(Handoff).where(*_followup_due(now or utcnow())).order_by(Handoff.followup_due_at))
    )


def latest_rated(session: Session, conversation_id: int) -> Handoff | None:
    """The conversation's most recently rated handoff, whose comment may follow."""
    return session.scalar(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.csat.is_not(None))
        .order_by(Handoff.id.desc())
        .limit(1)
    )


def ticket_in_topic(session: Session, topic_id: int | None) -> Ticket | None:
    """The ticket whose forum topic this is."""
    if not topic_id:
        return None
    return session.scalar(select(Ticket).where(Ticket.topic_id == topic_id).limit(1))


def relayed_message(session: Session, *, chat_id: int, telegram_message_id: int) -> Message | None:
    """The message the bot delivered into an agent's chat as this Telegram message (to map a reply to its customer)."""
    return session.scalar(
        select(Message)
        .where(Message.chat_id == chat_id, Message.telegram_message_id == telegram_message_id)
        .order_by(Message.id.desc())
        .limit(1)
    )


_LATEST = (
    select(Handoff).where(Handoff.conversation_id == bindparam("conversation_id")).order_by(Handoff.id.desc()).limit(1)
)  # on every message's way: built once (see bot/storage/inbox.py)


def latest(session: Session, conversation_id: int) -> Handoff | None:
    """The conversation's most recent handoff, whatever its state."""
    return session.scalar(_LATEST, {"conversation_id": conversation_id})


def previous_end(session: Session, conversation_id: int, before: int | None) -> datetime | None:
    """When the conversation's last handoff before handoff `before` (or before now, with None) ended."""
    query = select(Handoff.closed_at).where(Handoff.conversation_id == conversation_id, Handoff.closed_at.is_not(None))
    if before is not None:
        query = query.where(Handoff.id < before)
    return session.scalar(query.order_by(Handoff.id.desc()).limit(1))


def requeue(session: Session, handoff: Handoff) -> None:
    """Back to waiting for anyone (the holder passed it on); its place in line is kept, and it never goes back to
    the holder automatically (bot/desk/assign.py)."""
    if handoff.agent_id is not None and handoff.agent_id not in (handoff.offered_to or []):
        handoff.offered_to = [*(handoff.offered_to or []), handoff.agent_id]
    handoff.status = HandoffStatus.QUEUED
    assign(handoff, None)
    handoff.announced_at = utcnow()
    conversation = session.get(Conversation, handoff.conversation_id)
    conversation.state = ConversationState.QUEUED


def assign(handoff: Handoff, agent: Agent | None) -> None:
    """Hand the conversation to another agent (or none), keeping the loaded relationship and the key in step."""
    handoff.agent = agent
    handoff.agent_id = agent.id if agent is not None else None


def agents_with_chats(session: Session) -> list[Agent]:
    """Agents who can take a conversation (they have a private chat with the bot)."""
    return list(session.scalars(select(Agent).where(Agent.private_chat_id.is_not(None)).order_by(Agent.first_name)))


def promise(
    session: Session, *, ticket: Ticket, conversation: Conversation, agent: Agent, what: str, due_at: datetime
) -> Promise:
    """Record an agent's promise to a customer."""
    made = Promise(ticket_id=ticket.id, conversation_id=conversation.id, agent_id=agent.id, what=what, due_at=due_at)
    session.add(made)
    session.flush()
    return made


def open_promises(session: Session, agent_id: int) -> list[Promise]:
    """An agent's promises not kept yet, soonest due first."""
    return list(
        session.scalars(
            select(Promise).where(Promise.agent_id == agent_id, Promise.kept_at.is_(None)).order_by(Promise.due_at)
        )
    )


def _promise_due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return Promise.due_at <= now, Promise.kept_at.is_(None), Promise.reminded_at.is_(None)


def due_promises(session: Session, now: datetime) -> list[Promise]:
    """Promises that fell due, not kept, and not reminded of yet."""
    return list(session.scalars(select(Promise).where(*_promise_due(now))))


class DueWork(NamedTuple):
    """What the desk's round has to do (each True when there is any): its usual answer is nothing at all."""

    tickets_without_topic: bool
    queued: bool
    promises: bool
    followups: bool
    alerts: bool = False  # a customer's unanswered stretch may bring a reminder or holding message (bot/desk/alerts.py)


def due_work(session: Session, now: datetime) -> DueWork:
    """One read of what the desk's round would find, so that a round with nothing to do costs one query."""
    row = session.execute(
        select(
            exists().where(*_without_topic()),
            exists().where(*_queued()),
            exists().where(*_promise_due(now)),
            exists().where(*_followup_due(now)),
            exists().where(alerts.pending()),
        )
    ).one()
    return DueWork(*(bool(flag) for flag in row))


def summary(session: Session, now: datetime) -> dict[str, Any]:
    """The desk at a glance: waiting (and the longest wait), being handled, closed today and their average rating."""
    waiting = queued(session)
    handled = session.scalar(select(func.count()).select_from(Handoff).where(Handoff.status == HandoffStatus.CLAIMED))
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    closed = session.execute(
        select(func.count(), func.avg(Handoff.csat)).where(
            Handoff.status == HandoffStatus.CLOSED, Handoff.closed_at >= start
        )
    )
    count, rating = closed.one()
    longest = max(((now - h.queued_at).total_seconds() // 60 for h in waiting), default=0)
    return {
        "waiting": len(waiting),
        "longest": int(longest),
        "handled": handled or 0,
        "closed": count or 0,
        "rating": float(rating) if rating is not None else None,
    }
