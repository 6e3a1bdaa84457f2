"""Agents' presence and whose turn it is: online or away, idle since when, the round robin's order, who is free."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.storage.models import Agent, Handoff, HandoffStatus


def set_online(session: Session, agent: Agent, online: bool, now: datetime) -> bool:
    """/online or /away; whether it changed anything."""
    changed = agent.online != online
    agent.online, agent.last_active_at = online, now
    return changed


def touch(session: Session, telegram_user_id: int, now: datetime) -> None:
    """An agent did something on the desk: they are active now."""
    agent = session.scalar(select(Agent).where(Agent.telegram_user_id == telegram_user_id))
    if agent is not None:
        agent.last_active_at = now


def gone_away(session: Session, now: datetime, minutes: float) -> list[int]:
    """Online agents idle for `minutes` are away now; the private chats to tell."""
    idle = list(
        session.scalars(
            select(Agent).where(
                Agent.online.is_(True),
                (Agent.last_active_at.is_(None)) | (Agent.last_active_at < now - timedelta(minutes=minutes)),
            )
        )
    )
    for agent in idle:
        agent.online = False
    return [a.private_chat_id for a in idle if a.private_chat_id]


def load(session: Session) -> dict[int, int]:
    """How many conversations each agent holds now, by agent id."""
    rows = session.execute(
        select(Handoff.agent_id, func.count())
        .where(Handoff.status == HandoffStatus.CLAIMED, Handoff.agent_id.is_not(None))
        .group_by(Handoff.agent_id)
    )
    return {agent_id: count for agent_id, count in rows.tuples() if agent_id is not None}


def free_agents(session: Session, limit: int, exclude: Collection[int] = ()) -> list[Agent]:
    """Online agents with a private chat and fewer than `limit` conversations, whose turn is next first: the one given
    a request longest ago (never: first), then by id."""
    # The online agents' rows locked first (on PostgreSQL; SQLite runs one write at a time anyway), then their load
    # counted: two requests assigned at once cannot both see an agent's last free place.
    online = list(
        session.scalars(
            select(Agent)
            .where(Agent.online.is_(True), Agent.in_group.is_(True), Agent.private_chat_id.is_not(None))
            .order_by(Agent.last_assigned_at.is_not(None), Agent.last_assigned_at, Agent.id)
            .with_for_update()
        )
    )
    held = load(session)
    return [a for a in online if a.id not in exclude and held.get(a.id, 0) < limit]


def online_count(session: Session) -> int:
    """Agents online now."""
    return session.scalar(select(func.count()).select_from(Agent).where(Agent.online.is_(True))) or 0


def latest_turn(session: Session) -> datetime | None:
    """When the last request was given or offered to anyone."""
    return session.scalar(select(func.max(Agent.last_assigned_at)))
