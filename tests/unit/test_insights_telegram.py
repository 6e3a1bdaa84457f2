"""/stats for the agents' group admins, run whole: the app against the emulator's agents' group."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.desk import insights as desk_insights
from bot.desk.texts import ADMINS_ONLY
from bot.storage.figures import Figures
from bot.storage.models import Handoff, HandoffStatus, utcnow
from tests.unit import test_desk
from tests.unit.chat_harness import Harness
from tests.unit.test_desk import ALEX, BO, _claimed, _last, _new

desk = test_desk.desk  # the app with an agents' group, and a Rasa that hands over on "I want a person"
INES = 5353
PERIOD = "1 conversation, 0 % without a person, 1 handoff, median wait 4 min, rating 5.0/5 (1)"
STATS = desk_insights.STATS.format(today=PERIOD, week=PERIOD)


def test_a_period_in_a_line() -> None:
    assert desk_insights.period_text(Figures()) == "no conversations"
    figures = Figures(conversations=4, handed_over=1, handoffs=1)
    assert desk_insights.period_text(figures) == "4 conversations, 75 % without a person, 1 handoff"


async def _rated_today(harness: Harness) -> None:
    """Maya asked for a person; the database says Alex took her after 4 minutes, closed it, and she rated 5."""
    await _claimed(harness)
    async with harness.sessions.begin() as session:
        handoff = await session.scalar(select(Handoff))
        handoff.claimed_at = handoff.queued_at + timedelta(minutes=4)
        handoff.status, handoff.closed_at, handoff.csat = HandoffStatus.CLOSED, utcnow(), 5


async def test_admins_get_the_figures_in_the_group_others_are_refused(desk: Harness) -> None:
    await _rated_today(desk)
    group_start = await _last(desk, desk.group_id)
    await desk.emulator.send_text(BO, "/stats", chat_id=desk.group_id)
    *_, refused = await _new(desk, desk.group_id, group_start, ADMINS_ONLY)
    await desk.emulator.add_user("Ines", user_id=INES)
    await desk.emulator.set_member(desk.group_id, INES, admin=True)
    await desk.emulator.send_text(INES, "/stats", chat_id=desk.group_id)
    *_, stats = await _new(desk, desk.group_id, refused["seq"], "📊")
    assert stats["text"] == STATS


async def test_an_admin_who_is_an_agent_asks_in_private(desk: Harness) -> None:
    await _rated_today(desk)
    start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/stats")
    *_, refused = await _new(desk, ALEX, start, ADMINS_ONLY)
    await desk.emulator.set_member(desk.group_id, ALEX, admin=True)
    await desk.emulator.send_text(ALEX, "/stats")
    *_, stats = await _new(desk, ALEX, refused["seq"], "📊")
    assert stats["text"] == STATS


async def test_a_customer_gets_no_figures(desk: Harness) -> None:
    messages = await desk.say("/stats")
    assert messages and not any("📊" in (m.get("text") or "") for m in messages)
