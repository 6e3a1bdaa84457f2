"""The figures the dashboard and /stats share, the questions the bot did not understand and agents' flags, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from bot.admin import insights
from bot.storage import figures, flags
from bot.storage.models import (
    Agent,
    Conversation,
    Customer,
    Direction,
    Handoff,
    HandoffStatus,
    Message,
    Ticket,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
TODAY = figures.day_start(NOW, UTC)
WEEK = figures.week_start(NOW, UTC)


def at(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=minute)


async def customer(session: AsyncSession, number: int, first_name: str, username: str | None = None) -> Conversation:
    person = Customer(telegram_user_id=1000 + number, first_name=first_name, last_name="Doe", username=username)
    session.add(person)
    await session.flush()
    conversation = Conversation(customer_id=person.id, chat_id=1000 + number)
    session.add(conversation)
    await session.flush()
    return conversation


def said(
    conversation: Conversation,
    when: datetime,
    text: str,
    direction: Direction = Direction.IN,
    update_id: int | None = None,
    kind: str = "text",
) -> Message:
    return Message(
        conversation_id=conversation.id,
        chat_id=conversation.chat_id,
        direction=direction,
        text=text,
        kind=kind,
        created_at=when,
        update_id=update_id,
    )


async def handed(
    session: AsyncSession,
    conversation: Conversation,
    reason: str,
    queued: datetime,
    *,
    wait: int | None = None,
    reply: int | None = None,
    csat: int | None = None,
) -> Handoff:
    """A handoff queued then, claimed `wait` seconds later, answered `reply` seconds after the claim, rated `csat`."""
    ticket = Ticket(
        idempotency_key=f"k{conversation.id}-{queued.timestamp()}",
        customer_id=conversation.customer_id,
        conversation_id=conversation.id,
        category="other",
        description="help",
        desired_resolution="talk_to_person",
    )
    session.add(ticket)
    await session.flush()
    claimed = queued + timedelta(seconds=wait) if wait is not None else None
    handoff = Handoff(
        conversation_id=conversation.id,
        ticket_id=ticket.id,
        reason=reason,
        queued_at=queued,
        claimed_at=claimed,
        first_reply_at=claimed + timedelta(seconds=reply) if claimed and reply else None,
        status=HandoffStatus.CLOSED if csat else HandoffStatus.CANCELLED,
        closed_at=(claimed or queued) + timedelta(minutes=20),
        csat=csat,
    )
    session.add(handoff)
    await session.flush()
    return handoff


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Today: Ann (the bot alone), Ben (asked for a person: 4 min wait, 1 min to reply, rated 5), Cy (not understood:
    10 min wait, 2 min to reply, rated 3). Monday: Ann again, Dee asked for a person and left the queue. Ten days
    ago: Eve."""
    async with sessions.begin() as session:
        ann, ben = await customer(session, 1, "Ann", "ann_w"), await customer(session, 2, "Ben")
        cy, dee, eve = (
            await customer(session, 3, "Cy"),
            await customer(session, 4, "Dee"),
            await customer(session, 5, "Eve"),
        )
        session.add_all(
            [
                said(ann, at(0, 9), "where is my parcel"),
                said(ann, at(0, 9, 1), "thanks"),
                said(ann, at(0, 9, 1), "You're welcome", Direction.OUT),
                said(ben, at(0, 9, 55), "I want a person"),
                said(cy, at(0, 10, 50), "blorp"),
                said(ann, at(2, 8), "hello"),
                said(dee, at(2, 15), "a person please"),
                said(eve, at(10, 14), "do you sell bikes"),
                said(eve, at(0, 8), "reminder", Direction.OUT),
            ]
        )
        await handed(session, ben, "customer_request", at(0, 10), wait=240, reply=60, csat=5)
        await handed(session, cy, "fallbacks", at(0, 11), wait=600, reply=120, csat=3)
        await handed(session, dee, "customer_request", at(2, 15, 1))


async def test_todays_and_this_weeks_figures(sessions) -> None:
    await seed(sessions)
    async with sessions() as session:
        today = await session.run_sync(figures.figures, TODAY, NOW)
        week = await session.run_sync(figures.figures, WEEK, NOW)
        month = await session.run_sync(figures.figures, NOW - timedelta(days=30), NOW)
    assert (today.conversations, today.handed_over, today.handoffs) == (3, 2, 2)
    assert today.containment == 1 / 3
    assert today.by_reason == [("customer_request", 1), ("fallbacks", 1)]
    assert (today.median_wait, today.median_first_reply) == (420, 90)
    assert today.ratings == {1: 0, 2: 0, 3: 1, 4: 0, 5: 1} and (today.rated, today.rating) == (2, 4.0)
    assert (week.conversations, week.handed_over, week.handoffs) == (4, 3, 3)
    assert week.by_reason == [("customer_request", 2), ("fallbacks", 1)]
    assert week.containment == 1 / 4 and week.median_wait == 420
    assert (month.conversations, month.handed_over) == (5, 3)


async def test_an_empty_period_has_no_rates() -> None:
    empty = figures.Figures()
    assert (empty.containment, empty.rating, empty.rated) == (None, None, 0)


async def test_conversations_per_day_count_each_conversation_once_a_day(sessions) -> None:
    await seed(sessions)
    async with sessions() as session:
        days = await session.run_sync(figures.conversations_per_day, 30, UTC, NOW)
        berlin = await session.run_sync(figures.conversations_per_day, 2, ZoneInfo("Europe/Berlin"), at(1, 23, 30))
    assert len(days) == 30 and days[0][0] == date(2026, 10, 27) and days[-1][0] == date(2026, 11, 25)
    assert {day: count for day, count in days if count} == {
        date(2026, 11, 25): 3,
        date(2026, 11, 23): 2,
        date(2026, 11, 15): 1,
    }
    # 23:30 UTC on the 24th is already the 25th in Berlin: today there, with today's three.
    assert berlin == [(date(2026, 11, 24), 0), (date(2026, 11, 25), 3)]


def test_questions_are_grouped_by_their_normalised_text() -> None:
    assert insights.normalised("  Where is MY parcel?? ") == "where is my parcel"
    grouped = insights.group_questions(
        [
            ("where is my parcel??", 10.0),
            ("Where is my  parcel", 30.0),
            ("where is my parcel??", 20.0),
            ("bikes?", 5.0),
            ("/start", 50.0),
            ("!!", 60.0),
        ]
    )
    assert [(q.text, q.count, q.last_seen.timestamp()) for q in grouped] == [
        ("where is my parcel??", 3, 30.0),
        ("bikes?", 1, 5.0),
    ]


def _tracker_url(sessions: async_sessionmaker[AsyncSession]) -> str:
    return sessions.kw["bind"].url.render_as_string(hide_password=False)


async def make_tracker(url: str, rows: list[tuple[str, str | None, str, int]]) -> None:
    """Rasa's tracker table `events` with these (type, intent, text, days ago) events of one conversation."""
    engine = create_async_engine(url, poolclass=NullPool)
    metadata = sa.MetaData()
    events = sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_id", sa.String(255)),
        sa.Column("type_name", sa.String(255)),
        sa.Column("timestamp", sa.Float),
        sa.Column("intent_name", sa.String(255)),
        sa.Column("action_name", sa.String(255)),
        sa.Column("data", sa.Text),
    )
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        await connection.execute(
            events.insert(),
            [
                {
                    "sender_id": "tg-1",
                    "type_name": kind,
                    "intent_name": intent,
                    "timestamp": (NOW - timedelta(days=days)).timestamp(),
                    "data": json.dumps(
                        {
                            "event": kind,
                            "text": said_text,
                            "parse_data": {"intent": {"name": intent, "confidence": 0.3}},
                        }
                    ),
                }
                for kind, intent, said_text, days in rows
            ],
        )
    await engine.dispose()


async def test_the_questions_rasa_did_not_understand_most_often(sessions) -> None:
    url = _tracker_url(sessions)
    assert await insights.not_understood(url, NOW - timedelta(days=30)) == [], "no tracker table yet: nothing"
    rows = [
        ("user", "nlu_fallback", "Where is my parcel??", 1),
        ("user", "nlu_fallback", "where is my parcel", 2),
        ("user", "out_of_scope", "do you sell bikes", 3),
        ("user", "nlu_fallback", "/start", 1),
        ("user", "greet", "hello", 1),
        ("bot", None, "Sorry?", 1),
        ("user", "nlu_fallback", "ancient question", 40),
        ("user", "nlu_fallback", "where is my parcel", 0),
    ]
    await make_tracker(url, rows)
    found = await insights.not_understood(url, NOW - timedelta(days=30))
    assert [(q.text, q.count, q.last_seen) for q in found] == [
        ("where is my parcel", 3, NOW),
        ("do you sell bikes", 1, NOW - timedelta(days=3)),
    ]
    assert len(await insights.not_understood(url, NOW - timedelta(days=30), limit=1)) == 1


async def test_an_unreachable_tracker_store_shows_no_questions() -> None:
    assert await insights.not_understood("postgresql+asyncpg://nobody@127.0.0.1:1/rasa", NOW) == []


async def flagged_conversation(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """Fay asked about delivery, the bot answered about returns, she asked for a person; (ticket id, agent id)."""
    async with sessions.begin() as session:
        fay = await customer(session, 6, "Fay")
        session.add_all(
            [
                said(fay, at(0, 9), "when will my sofa get here", update_id=1),
                said(fay, at(0, 9), "You can return anything within 30 days.", Direction.OUT, update_id=1),
                said(fay, at(0, 9, 1), "that's not what I asked, I want a person", update_id=2),
            ]
        )
        await session.flush()
        session.add(said(fay, at(0, 9, 1), "Of course, I'm bringing in a person.", Direction.OUT, update_id=2))
        await session.flush()
        session.add(said(fay, at(0, 9, 1), "", Direction.OUT, update_id=2, kind="handoff"))
        await session.flush()
        session.add(said(fay, at(0, 9, 1), "You're number 1 in line.", Direction.OUT, update_id=2))
        handoff = await handed(session, fay, "customer_request", at(0, 9, 1), wait=30)
        agent = Agent(telegram_user_id=5151, first_name="Alex")
        session.add(agent)
        await session.flush()
        return handoff.ticket_id, agent.id


async def test_a_flag_records_the_answer_before_the_handoff_until_resolved(sessions) -> None:
    ticket_id, agent_id = await flagged_conversation(sessions)
    async with sessions.begin() as session:
        ticket, agent = await session.get(Ticket, ticket_id), await session.get(Agent, agent_id)
        made = await session.run_sync(flags.flag, ticket=ticket, agent=agent, note="she asked about delivery times")
    async with sessions() as session:
        [shown] = await session.run_sync(flags.flagged)
    assert (shown.question, shown.answer, shown.agent, shown.ticket, shown.customer.first_name, shown.flag.note) == (
        "when will my sofa get here",
        "You can return anything within 30 days.",
        "Alex",
        f"T{ticket_id:06d}",
        "Fay",
        "she asked about delivery times",
    )
    async with sessions.begin() as session:
        assert await session.run_sync(flags.resolve, made.id, "alice")
        assert not await session.run_sync(flags.resolve, made.id, "alice"), "once"
        assert not await session.run_sync(flags.resolve, made.id + 1, "alice"), "unknown"
    async with sessions() as session:
        assert await session.run_sync(flags.flagged) == []
        [done] = await session.run_sync(flags.flagged, resolved=True)
    assert done.flag.resolved_by == "alice" and done.flag.resolved_at is not None


async def test_nothing_to_flag_where_the_bot_said_nothing(sessions) -> None:
    async with sessions.begin() as session:
        gus = await customer(session, 7, "Gus")
        session.add(said(gus, at(0, 9), "I want a person", update_id=1))
        await session.flush()
        session.add(said(gus, at(0, 9), "", Direction.OUT, update_id=1, kind="handoff"))
        handoff = await handed(session, gus, "customer_request", at(0, 9))
        agent = Agent(telegram_user_id=5151, first_name="Alex")
        session.add(agent)
        await session.flush()
        ticket = await session.get(Ticket, handoff.ticket_id)
        assert await session.run_sync(flags.flag, ticket=ticket, agent=agent, note="x") is None
