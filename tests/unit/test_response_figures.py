"""First response measured from the request as well as from the claim, and each agent's figures (handled, median
first response, average rating), from fixed histories with exact numbers; and the dashboard showing them. On SQLite
and PostgreSQL (the page showing them: tests/unit/test_admin_dashboard.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage import figures
from bot.storage.models import Agent, Handoff, HandoffStatus, Ticket
from tests.unit.test_insights import NOW, customer


async def history(session: AsyncSession, now: datetime) -> None:
    """An hour ago: Ann's request claimed by Alex after 2 min, first reply 1 min later, rated 5; Ben's claimed by Alex
    after 5 min, reply 30 s later, rated 3; Cy's claimed by Alex after 1 min and never answered, not rated; Dee's
    claimed by Bo after 10 min, reply 2 min later, rated 4; Eve left the queue. Forty days ago Bo helped Fay: outside
    the period."""
    alex = Agent(telegram_user_id=51, first_name="Alex", username="alex_w")
    bo = Agent(telegram_user_id=52, first_name="Bo")
    session.add_all([alex, bo])
    await session.flush()
    start = now - timedelta(hours=1)
    for number, name, agent, wait, reply, csat, queued in [
        (1, "Ann", alex, 120, 60, 5, start),
        (2, "Ben", alex, 300, 30, 3, start),
        (3, "Cy", alex, 60, None, None, start),
        (4, "Dee", bo, 600, 120, 4, start),
        (5, "Eve", None, None, None, None, start),
        (6, "Fay", bo, 30, 10, 1, now - timedelta(days=40)),
    ]:
        conversation = await customer(session, number, name)
        ticket = Ticket(
            idempotency_key=f"k{number}",
            customer_id=conversation.customer_id,
            conversation_id=conversation.id,
            category="other",
            description="help",
            desired_resolution="talk_to_person",
        )
        session.add(ticket)
        await session.flush()
        claimed = queued + timedelta(seconds=wait) if wait is not None else None
        session.add(
            Handoff(
                conversation_id=conversation.id,
                ticket_id=ticket.id,
                reason="customer_request",
                agent_id=agent.id if agent else None,
                queued_at=queued,
                claimed_at=claimed,
                first_reply_at=claimed + timedelta(seconds=reply) if claimed and reply else None,
                status=HandoffStatus.CLOSED if agent else HandoffStatus.CANCELLED,
                closed_at=queued + timedelta(minutes=30),
                csat=csat,
            )
        )
    await session.flush()


async def test_first_response_from_the_request_and_each_agents_figures(sessions) -> None:
    async with sessions.begin() as session:
        await history(session, NOW)
    async with sessions() as session:
        period = await session.run_sync(figures.figures, NOW - timedelta(days=7), NOW)
        everything = await session.run_sync(figures.figures, NOW - timedelta(days=90), NOW)
    assert period.median_first_reply == 60  # claimed → first reply: 60, 30, 120 s
    assert period.median_first_response == 330  # queued → first reply: 180, 330, 720 s
    assert [
        (a.name, a.handled, a.median_first_reply, a.median_first_response, a.rating, a.rated) for a in period.agents
    ] == [
        ("Alex (@alex_w)", 3, 45, 255, 4.0, 2),
        ("Bo", 1, 120, 720, 4.0, 1),
    ]
    assert [(a.name, a.handled, a.median_first_response, a.rating) for a in everything.agents] == [
        ("Alex (@alex_w)", 3, 255, 4.0),
        ("Bo", 2, 380, 2.5),  # Fay too: 40 s, and Dee's 720 s; ratings 4 and 1
    ]
    async with sessions() as session:
        quiet = await session.run_sync(figures.figures, NOW + timedelta(days=1), NOW + timedelta(days=2))
    assert (quiet.median_first_response, quiet.agents) == (None, [])
