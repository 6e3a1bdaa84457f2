"""Requests for a person: opened once per conversation at a time, claimed by one agent, closed with timings kept."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

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
    utcnow,
)

WAIT_SAMPLE = 20  # claimed handoffs the wait estimate is taken from
WAIT_WINDOW = timedelta(days=7)


async def active_for(session: AsyncSession, conversation_id: int) -> Handoff | None:
    """The conversation's handoff that is waiting or being handled, if any."""
    return await session.scalar(
        select(Handoff).where(Handoff.conversation_id == conversation_id, Handoff.status.in_(ACTIVE_HANDOFF))
        .order_by(Handoff.id.desc()).limit(1)
    )


async def open_handoff(
    session: AsyncSession, *, conversation: Conversation, ticket: Ticket, reason: str, context: dict[str, Any]
) -> tuple[Handoff, bool]:
    """Queue the conversation for a person, unless it already is (a customer is never transferred twice)."""
    existing = await active_for(session, conversation.id)
    if existing is not None:
        return existing, False
    handoff = Handoff(conversation_id=conversation.id, ticket_id=ticket.id, reason=reason, context=context)
    session.add(handoff)
    conversation.state = ConversationState.QUEUED
    await session.flush()
    return handoff, True


async def place_in_line(session: AsyncSession, handoff: Handoff) -> int:
    """1 for the next customer an agent will pick up."""
    ahead = await session.scalar(
        select(func.count()).select_from(Handoff)
        .where(Handoff.status == HandoffStatus.QUEUED, Handoff.queued_at < handoff.queued_at)
    )
    return (ahead or 0) + 1


async def typical_wait(session: AsyncSession, now: datetime | None = None) -> timedelta | None:
    """The median time to be picked up over recent handoffs; None without enough history to say."""
    since = (now or utcnow()) - WAIT_WINDOW
    rows = await session.execute(
        select(Handoff.queued_at, Handoff.claimed_at)
        .where(Handoff.claimed_at.is_not(None), Handoff.claimed_at >= since)
        .order_by(Handoff.claimed_at.desc()).limit(WAIT_SAMPLE)
    )
    waits = [(claimed - queued).total_seconds() for queued, claimed in rows]
    if len(waits) < 3:
        return None
    return timedelta(seconds=statistics.median(waits))


def _queued() -> tuple[ColumnElement[bool], ...]:
    return (Handoff.status == HandoffStatus.QUEUED,)


async def queued(session: AsyncSession) -> list[Handoff]:
    """Everyone waiting for a person, longest waiting first."""
    return list(await session.scalars(select(Handoff).where(*_queued()).order_by(Handoff.queued_at)))


async def claim(session: AsyncSession, handoff_id: int, agent: Agent) -> bool:
    """Give a waiting handoff to an agent; False if someone else was quicker (or it is no longer waiting)."""
    now = utcnow()
    result = await session.execute(
        update(Handoff).where(Handoff.id == handoff_id, Handoff.status == HandoffStatus.QUEUED)
        .values(status=HandoffStatus.CLAIMED, agent_id=agent.id, claimed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    handoff = await session.get(Handoff, handoff_id, populate_existing=True)
    conversation = await session.get(Conversation, handoff.conversation_id)
    conversation.state = ConversationState.HUMAN
    return True


async def finish(
    session: AsyncSession, handoff: Handoff, status: HandoffStatus, *, resolution: str | None = None,
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
    conversation = await session.get(Conversation, handoff.conversation_id)
    conversation.state = ConversationState.BOT
    return True


async def claimed_by(session: AsyncSession, agent_id: int) -> list[Handoff]:
    """The conversations an agent is handling now, oldest claim first."""
    return list(await session.scalars(
        select(Handoff).where(Handoff.agent_id == agent_id, Handoff.status == HandoffStatus.CLAIMED)
        .order_by(Handoff.claimed_at)))


async def agent(session: AsyncSession, *, telegram_user_id: int, first_name: str, username: str | None) -> Agent:
    """The agent with this Telegram account, created on first sight, name kept current."""
    found = await session.scalar(select(Agent).where(Agent.telegram_user_id == telegram_user_id))
    if found is None:
        found = Agent(telegram_user_id=telegram_user_id)
        session.add(found)
    found.first_name = first_name or ""
    found.username = username
    await session.flush()
    return found


async def agent_chats(session: AsyncSession) -> list[int]:
    """The private chats agents have opened with the bot."""
    return list(await session.scalars(select(Agent.private_chat_id).where(Agent.private_chat_id.is_not(None))))


def _without_topic() -> tuple[ColumnElement[bool], ...]:
    return Ticket.topic_id.is_(None), Ticket.conversation_id.is_not(None)


async def tickets_without_topic(session: AsyncSession) -> list[Ticket]:
    """Tickets the agents' group has not seen yet, oldest first."""
    return list(await session.scalars(select(Ticket).where(*_without_topic()).order_by(Ticket.id)))


async def for_ticket(session: AsyncSession, ticket_id: int) -> Handoff | None:
    """The newest handoff of a ticket."""
    return await session.scalar(select(Handoff).where(Handoff.ticket_id == ticket_id).order_by(Handoff.id.desc()).limit(1))


def _followup_due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return Handoff.followup_due_at <= now, Handoff.followup_sent_at.is_(None)


async def due_followups(session: AsyncSession, now: datetime | None = None) -> list[Handoff]:
    """Closed handoffs whose next-day check is due and not sent."""
    return list(await session.scalars(
        select(Handoff).where(*_followup_due(now or utcnow())).order_by(Handoff.followup_due_at)))


async def latest_rated(session: AsyncSession, conversation_id: int) -> Handoff | None:
    """The conversation's most recently rated handoff, whose comment may follow."""
    return await session.scalar(
        select(Handoff).where(Handoff.conversation_id == conversation_id, Handoff.csat.is_not(None))
        .order_by(Handoff.id.desc()).limit(1))


async def ticket_in_topic(session: AsyncSession, topic_id: int | None) -> Ticket | None:
    """The ticket whose forum topic this is."""
    if not topic_id:
        return None
    return await session.scalar(select(Ticket).where(Ticket.topic_id == topic_id).limit(1))


async def relayed_message(session: AsyncSession, *, chat_id: int, telegram_message_id: int) -> Message | None:
    """The message the bot delivered into an agent's chat as this Telegram message (to map a reply to its customer)."""
    return await session.scalar(
        select(Message).where(Message.chat_id == chat_id, Message.telegram_message_id == telegram_message_id)
        .order_by(Message.id.desc()).limit(1))


_LATEST = (select(Handoff).where(Handoff.conversation_id == bindparam("conversation_id"))
           .order_by(Handoff.id.desc()).limit(1))  # on every message's way: built once (see bot/storage/inbox.py)


def latest(session: Session, conversation_id: int) -> Handoff | None:
    """The conversation's most recent handoff, whatever its state."""
    return session.scalar(_LATEST, {"conversation_id": conversation_id})


async def requeue(session: AsyncSession, handoff: Handoff) -> None:
    """Back to waiting for anyone (the holder passed it on); its place in line is kept."""
    handoff.status = HandoffStatus.QUEUED
    handoff.agent_id = None
    handoff.announced_at = utcnow()
    conversation = await session.get(Conversation, handoff.conversation_id)
    conversation.state = ConversationState.QUEUED


async def agents_with_chats(session: AsyncSession) -> list[Agent]:
    """Agents who can take a conversation (they have a private chat with the bot)."""
    return list(await session.scalars(select(Agent).where(Agent.private_chat_id.is_not(None)).order_by(Agent.first_name)))


async def promise(
    session: AsyncSession, *, ticket: Ticket, conversation: Conversation, agent: Agent, what: str, due_at: datetime
) -> Promise:
    """Record an agent's promise to a customer."""
    made = Promise(ticket_id=ticket.id, conversation_id=conversation.id, agent_id=agent.id, what=what, due_at=due_at)
    session.add(made)
    await session.flush()
    return made


async def open_promises(session: AsyncSession, agent_id: int) -> list[Promise]:
    """An agent's promises not kept yet, soonest due first."""
    return list(await session.scalars(
        select(Promise).where(Promise.agent_id == agent_id, Promise.kept_at.is_(None)).order_by(Promise.due_at)))


def _promise_due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return Promise.due_at <= now, Promise.kept_at.is_(None), Promise.reminded_at.is_(None)


async def due_promises(session: AsyncSession, now: datetime) -> list[Promise]:
    """Promises that fell due, not kept, and not reminded of yet."""
    return list(await session.scalars(select(Promise).where(*_promise_due(now))))


class DueWork(NamedTuple):
    """What the desk's round has to do (each True when there is any): its usual answer is nothing at all."""

    tickets_without_topic: bool
    queued: bool
    promises: bool
    followups: bool


def due_work(session: Session, now: datetime) -> DueWork:
    """One read of what the desk's round would find, so that a round with nothing to do costs one query."""
    row = session.execute(select(
        exists().where(*_without_topic()), exists().where(*_queued()),
        exists().where(*_promise_due(now)), exists().where(*_followup_due(now)))).one()
    return DueWork(*(bool(flag) for flag in row))


async def summary(session: AsyncSession, now: datetime) -> dict[str, Any]:
    """The desk at a glance: waiting (and the longest wait), being handled, closed today and their average rating."""
    waiting = await queued(session)
    handled = await session.scalar(select(func.count()).select_from(Handoff).where(Handoff.status == HandoffStatus.CLAIMED))
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    closed = await session.execute(
        select(func.count(), func.avg(Handoff.csat)).where(Handoff.status == HandoffStatus.CLOSED, Handoff.closed_at >= start))
    count, rating = closed.one()
    longest = max(((now - aware(h.queued_at)).total_seconds() // 60 for h in waiting), default=0)
    return {"waiting": len(waiting), "longest": int(longest), "handled": handled or 0, "closed": count or 0,
            "rating": float(rating) if rating is not None else None}


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
