"""What the records say about the support: conversations, how many the bot handled alone, handoffs and their
waits, ratings. Shared by the console's dashboard and the agents' /stats.

Plain functions of a Session (run with `await session.run_sync(fn, …)` or `await sessions.read(fn, …)`), and the
periods and durations they are read in. A conversation counts on a day when the customer wrote that day; it is
contained when no handoff was queued for it in the period.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from bot.storage.models import Agent, Direction, Handoff, Message, utcnow

SCORES = (1, 2, 3, 4, 5)


@dataclass
class AgentFigures:
    """One agent's part of a period: the handoffs they held (a transferred one counts for its last holder), their
    median first reply from the claim and from the request, and the average rating of those closed in the period."""

    agent_id: int
    name: str
    handled: int = 0
    median_first_reply: float | None = None  # claimed → their first message
    median_first_response: float | None = None  # queued → their first message
    rating: float | None = None
    rated: int = 0


@dataclass
class Figures:
    """One period's figures; durations in seconds, None when nothing was measured."""

    conversations: int = 0
    handed_over: int = 0  # of those conversations, the ones a handoff was queued for
    handoffs: int = 0
    by_reason: list[tuple[str, int]] = field(default_factory=list)  # most frequent first
    median_wait: float | None = None  # queued → claimed
    median_first_reply: float | None = None  # claimed → the agent's first message
    median_first_response: float | None = None  # queued (the request) → the agent's first message
    agents: list[AgentFigures] = field(default_factory=list)  # most handled first
    ratings: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SCORES, 0))

    @property
    def containment(self) -> float | None:
        """The share of conversations no person had to take (None without conversations)."""
        return (self.conversations - self.handed_over) / self.conversations if self.conversations else None

    @property
    def rated(self) -> int:
        return sum(self.ratings.values())

    @property
    def rating(self) -> float | None:
        """The average rating, 1–5."""
        return sum(score * count for score, count in self.ratings.items()) / self.rated if self.rated else None


def figures(session: Session, since: datetime, until: datetime | None = None) -> Figures:
    """The figures of [since, until)."""
    until = until or utcnow()
    talked = set(
        session.scalars(
            select(Message.conversation_id)
            .distinct()
            .where(Message.direction == Direction.IN, Message.created_at >= since, Message.created_at < until)
        )
    )
    rows = session.execute(
        select(
            Handoff.conversation_id,
            Handoff.reason,
            Handoff.queued_at,
            Handoff.claimed_at,
            Handoff.first_reply_at,
            Handoff.agent_id,
        ).where(Handoff.queued_at >= since, Handoff.queued_at < until)
    ).all()
    reasons = collections.Counter(row.reason for row in rows)
    waits = [_seconds(row.queued_at, row.claimed_at) for row in rows if row.claimed_at is not None]
    replies = [
        _seconds(row.claimed_at, row.first_reply_at)
        for row in rows
        if row.claimed_at is not None and row.first_reply_at is not None
    ]
    result = Figures(
        conversations=len(talked),
        handed_over=len(talked & {row.conversation_id for row in rows}),
        handoffs=len(rows),
        by_reason=sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
        median_wait=statistics.median(waits) if waits else None,
        median_first_reply=_median(replies),
        median_first_response=_median(
            [_seconds(row.queued_at, row.first_reply_at) for row in rows if row.first_reply_at is not None]
        ),
    )
    scores = session.execute(
        select(Handoff.agent_id, Handoff.csat).where(
            Handoff.csat.is_not(None), Handoff.closed_at >= since, Handoff.closed_at < until
        )
    ).all()
    for _, score in scores:
        if score in result.ratings:
            result.ratings[score] += 1
    result.agents = _per_agent(session, rows, scores)
    return result


def _per_agent(session: Session, rows: Sequence[Row[Any]], scores: Sequence[Row[Any]]) -> list[AgentFigures]:
    """Each agent's figures, from the period's handoffs and its ratings."""
    held: dict[int, list[Row[Any]]] = collections.defaultdict(list)
    for row in rows:
        if row.agent_id is not None and row.claimed_at is not None:
            held[row.agent_id].append(row)
    marks: dict[int, list[int]] = collections.defaultdict(list)
    for agent_id, score in scores:
        if agent_id is not None and score in SCORES:
            marks[agent_id].append(score)
    ids = set(held) | set(marks)
    agents = {a.id: a for a in session.scalars(select(Agent).where(Agent.id.in_(ids)))} if ids else {}
    result = []
    for agent_id in ids:
        answered = [row for row in held[agent_id] if row.first_reply_at is not None]
        agent = agents.get(agent_id)
        name = (agent.first_name or f"agent {agent_id}") if agent is not None else f"agent {agent_id}"
        if agent is not None and agent.username:
            name = f"{name} (@{agent.username})"
        result.append(
            AgentFigures(
                agent_id=agent_id,
                name=name,
                handled=len(held[agent_id]),
                median_first_reply=_median([_seconds(r.claimed_at, r.first_reply_at) for r in answered]),
                median_first_response=_median([_seconds(r.queued_at, r.first_reply_at) for r in answered]),
                rating=sum(marks[agent_id]) / len(marks[agent_id]) if marks[agent_id] else None,
                rated=len(marks[agent_id]),
            )
        )
    return sorted(result, key=lambda a: (-a.handled, a.name.lower(), a.agent_id))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def conversations_per_day(
    session: Session, days: int, zone: tzinfo, now: datetime | None = None
) -> list[tuple[date, int]]:
    """Conversations on each of the last `days` days (today included, days as `zone` counts them), oldest first."""
    today = (now or utcnow()).astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), zone)
    rows = session.execute(
        select(Message.conversation_id, Message.created_at).where(
            Message.direction == Direction.IN, Message.created_at >= start
        )
    )
    seen = {(created.astimezone(zone).date(), conversation) for conversation, created in rows}
    counts = collections.Counter(day for day, _ in seen)
    return [(first + timedelta(days=n), counts[first + timedelta(days=n)]) for n in range(days)]


def day_start(moment: datetime, zone: tzinfo) -> datetime:
    """Midnight of the moment's day in `zone`."""
    local = moment.astimezone(zone)
    return datetime.combine(local.date(), datetime.min.time(), zone)


def week_start(moment: datetime, zone: tzinfo) -> datetime:
    """Monday midnight of the moment's week in `zone`."""
    return day_start(moment, zone) - timedelta(days=moment.astimezone(zone).weekday())


def duration(seconds: float | None) -> str:
    """A wait for people: '45 s', '4 min 20 s', '2 h 5 min'; '–' when nothing was measured."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
