"""The figures and flags the desk shares with the console (bot/storage/figures.py, bot/storage/flags.py), called
from the desk's async sessions: /stats and /flag (bot/desk/insights.py) read them through here.

A thin bridge while the desk is being split: once its modules call the storage functions with
`await session.run_sync(…)` themselves, this module goes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage import figures as stored
from bot.storage import flags
from bot.storage.figures import Figures, day_start, duration, week_start
from bot.storage.models import Agent, Flag, Message, Ticket
from bot.storage.tickets import REFERENCE as TICKET

__all__ = ["TICKET", "Figures", "day_start", "duration", "figures", "flag", "question_of", "week_start"]


async def figures(session: AsyncSession, since: datetime, until: datetime | None = None) -> Figures:
    """The figures of [since, until)."""
    return await session.run_sync(stored.figures, since, until)


async def flag(session: AsyncSession, *, ticket: Ticket, agent: Agent, note: str) -> Flag | None:
    """Record that the bot answered wrongly in the ticket's conversation; None when the bot said nothing there."""
    return await session.run_sync(flags.flag, ticket=ticket, agent=agent, note=note)


async def question_of(session: AsyncSession, answer: Message) -> str:
    """What the customer wrote that the bot answered so."""
    return await session.run_sync(flags.question_of, answer)
