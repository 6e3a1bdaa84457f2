"""What the records say about the support: conversations, how many the bot handled alone, handoffs and their waits,
ratings, the questions the bot did not understand, and the answers agents flagged as wrong.

Read by the console's dashboard and the agents' /stats; agents' flags are recorded and resolved here too. A
conversation counts on a day when the customer wrote that day; it is contained when no handoff was queued for it
in the period.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path

from sqlalchemy import bindparam, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from bot.desk.cards import customer_name
from bot.storage.models import Agent, Customer, Direction, Flag, Handoff, Message, Ticket, utcnow

log = logging.getLogger(__name__)
NOT_UNDERSTOOD = ("nlu_fallback", "out_of_scope")  # the intents Rasa gives what it did not understand
SCORES = (1, 2, 3, 4, 5)
TICKET = re.compile(r"^#?T(\d{1,9})$", re.IGNORECASE)  # a ticket's number as agents quote it (T000123); fits an int


@dataclass
class Figures:
    """One period's figures; durations in seconds, None when nothing was measured."""

    conversations: int = 0
    handed_over: int = 0  # of those conversations, the ones a handoff was queued for
    handoffs: int = 0
    by_reason: list[tuple[str, int]] = field(default_factory=list)  # most frequent first
    median_wait: float | None = None  # queued → claimed
    median_first_reply: float | None = None  # claimed → the agent's first message
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


async def figures(session: AsyncSession, since: datetime, until: datetime | None = None) -> Figures:
    """The figures of [since, until)."""
    until = until or utcnow()
    talked = set(await session.scalars(
        select(Message.conversation_id).distinct()
        .where(Message.direction == Direction.IN, Message.created_at >= since, Message.created_at < until)))
    rows = (await session.execute(
        select(Handoff.conversation_id, Handoff.reason, Handoff.queued_at, Handoff.claimed_at, Handoff.first_reply_at)
        .where(Handoff.queued_at >= since, Handoff.queued_at < until))).all()
    reasons = collections.Counter(row.reason for row in rows)
    waits = [_seconds(row.queued_at, row.claimed_at) for row in rows if row.claimed_at is not None]
    replies = [_seconds(row.claimed_at, row.first_reply_at) for row in rows
               if row.claimed_at is not None and row.first_reply_at is not None]
    result = Figures(conversations=len(talked), handed_over=len(talked & {row.conversation_id for row in rows}),
                     handoffs=len(rows), by_reason=sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
                     median_wait=statistics.median(waits) if waits else None,
                     median_first_reply=statistics.median(replies) if replies else None)
    scores = await session.scalars(select(Handoff.csat).where(
        Handoff.csat.is_not(None), Handoff.closed_at >= since, Handoff.closed_at < until))
    for score in scores:
        if score in result.ratings:
            result.ratings[score] += 1
    return result


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


async def conversations_per_day(session: AsyncSession, days: int, zone: tzinfo, now: datetime | None = None) -> list[tuple[date, int]]:
    """Conversations on each of the last `days` days (today included, days as `zone` counts them), oldest first."""
    today = (now or utcnow()).astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), zone)
    rows = await session.execute(select(Message.conversation_id, Message.created_at)
                                 .where(Message.direction == Direction.IN, Message.created_at >= start))
    seen = {(created.astimezone(zone).date(), conversation) for conversation, created in rows}
    counts = collections.Counter(day for day, _ in seen)
    return [(first + timedelta(days=n), counts[first + timedelta(days=n)]) for n in range(days)]


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


def day_start(moment: datetime, zone: tzinfo) -> datetime:
    """Midnight of the moment's day in `zone`."""
    local = moment.astimezone(zone)
    return datetime.combine(local.date(), datetime.min.time(), zone)


def week_start(moment: datetime, zone: tzinfo) -> datetime:
    """Monday midnight of the moment's week in `zone`."""
    return day_start(moment, zone) - timedelta(days=moment.astimezone(zone).weekday())


# --- what the bot did not understand (Rasa's tracker store) ----------------------------------------------------


@dataclass
class Unanswered:
    """A question the bot did not understand, as customers wrote it (grouped by its normalised text)."""

    text: str  # the most frequent spelling
    count: int
    last_seen: datetime


def normalised(question: str) -> str:
    """Lower case, single spaces, no punctuation around words: the key questions are grouped by."""
    words = (re.sub(r"^\W+|\W+$", "", word) for word in question.casefold().split())
    return " ".join(word for word in words if word)


async def not_understood(tracker_url: str, since: datetime, limit: int = 20) -> list[Unanswered]:
    """The questions Rasa classified as not understood since then, most frequent first."""
    if tracker_url.startswith("sqlite") and not Path(tracker_url.split(":///", 1)[1]).exists():
        return []  # Rasa has not written its store yet (and opening it would create the file)
    # A plain engine, not ours: our SQLite pragmas (WAL) would change Rasa's file for good.
    engine = create_async_engine(tracker_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            if not await connection.run_sync(lambda sync: inspect(sync).has_table("events")):
                return []
            rows = (await connection.execute(
                text("SELECT data, timestamp FROM events WHERE type_name = 'user' AND intent_name IN :intents "
                     "AND timestamp >= :since").bindparams(bindparam("intents", expanding=True)),
                {"intents": list(NOT_UNDERSTOOD), "since": since.timestamp()})).all()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("could not read Rasa's tracker store for the questions it did not understand: %s", exc)
        return []
    finally:
        await engine.dispose()
    return group_questions((json.loads(data).get("text") or "", stamp) for data, stamp in rows)[:limit]


def group_questions(questions: Iterable[tuple[str, float]]) -> list[Unanswered]:
    """(text, unix time) pairs grouped by normalised text; commands (/start, button payloads) left out."""
    spellings: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    newest: dict[str, float] = {}
    for question, stamp in questions:
        key = normalised(question)
        if not key or question.lstrip().startswith("/"):
            continue
        spellings[key][" ".join(question.split())] += 1
        newest[key] = max(newest.get(key, 0.0), stamp or 0.0)
    found = [Unanswered(text=counter.most_common(1)[0][0], count=sum(counter.values()),
                        last_seen=datetime.fromtimestamp(newest[key], timezone.utc))
             for key, counter in spellings.items()]
    return sorted(found, key=lambda item: (-item.count, -item.last_seen.timestamp()))


# --- flags: answers agents reported as wrong -----------------------------------------------------------------


async def flaggable_answer(session: AsyncSession, conversation_id: int) -> Message | None:
    """The bot's last answer before the conversation's newest handoff (not the handoff's own words); its last
    answer so far when no handoff was asked of the bot."""
    request = await session.scalar(
        select(Message).where(Message.conversation_id == conversation_id, Message.kind == "handoff")
        .order_by(Message.id.desc()).limit(1))
    query = select(Message).where(
        Message.conversation_id == conversation_id, Message.direction == Direction.OUT, Message.kind == "text",
        Message.update_id.is_not(None))
    if request is not None:
        query = query.where(Message.id < request.id, Message.update_id != request.update_id)
    return await session.scalar(query.order_by(Message.id.desc()).limit(1))


async def flag(session: AsyncSession, *, ticket: Ticket, agent: Agent, note: str) -> Flag | None:
    """Record that the bot answered wrongly in the ticket's conversation; None when the bot said nothing there."""
    if ticket.conversation_id is None:
        return None
    answer = await flaggable_answer(session, ticket.conversation_id)
    if answer is None:
        return None
    again = await session.scalar(select(Flag).where(  # the same update handled again after a restart
        Flag.message_id == answer.id, Flag.agent_id == agent.id, Flag.note == note, Flag.resolved_at.is_(None)).limit(1))
    if again is not None:
        return again
    made = Flag(message_id=answer.id, conversation_id=ticket.conversation_id, ticket_id=ticket.id, agent_id=agent.id,
                note=note)
    session.add(made)
    await session.flush()
    return made


async def question_of(session: AsyncSession, answer: Message) -> str:
    """What the customer wrote that the bot answered so."""
    return await session.scalar(select(Message.text).where(
        Message.conversation_id == answer.conversation_id, Message.update_id == answer.update_id,
        Message.direction == Direction.IN).limit(1)) or ""


@dataclass
class Flagged:
    """A flag as the console shows it."""

    flag: Flag
    question: str  # what the customer wrote
    answer: str  # what the bot said
    agent: str
    ticket: str
    customer: str


async def flagged(session: AsyncSession, *, resolved: bool = False, limit: int = 50) -> list[Flagged]:
    """Open flags (or resolved ones), newest first."""
    query = select(Flag).where(Flag.resolved_at.is_not(None) if resolved else Flag.resolved_at.is_(None))
    found = []
    for made in await session.scalars(query.order_by(Flag.id.desc()).limit(limit)):
        answer = await session.get(Message, made.message_id)
        question = await question_of(session, answer)
        agent = await session.get(Agent, made.agent_id) if made.agent_id else None
        ticket = await session.get(Ticket, made.ticket_id) if made.ticket_id else None
        customer = await session.get(Customer, ticket.customer_id) if ticket and ticket.customer_id else None
        found.append(Flagged(flag=made, question=question, answer=answer.text, agent=agent.first_name if agent else "",
                             ticket=ticket.reference if ticket else "",
                             customer=customer_name(customer)))
    return found


async def resolve(session: AsyncSession, flag_id: int, who: str) -> bool:
    """Mark a flag resolved; False when it is unknown or already resolved."""
    made = await session.get(Flag, flag_id)
    if made is None or made.resolved_at is not None:
        return False
    made.resolved_at, made.resolved_by = utcnow(), who
    return True
