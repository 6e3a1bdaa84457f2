"""Agents' presence: /online and /away, activity (any message, command or button of theirs on the desk), and away by
itself after AWAY_AFTER_MINUTES without activity, the agent told."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from telegram import Update
from telegram.ext import ContextTypes

from bot.desk import assign
from bot.desk.desk import Desk
from bot.desk.texts import AWAY, AWAY_AUTO, NOT_AN_AGENT, ONLINE, ONLINE_LIMIT
from bot.desk.unit import Unit
from bot.storage import presence
from bot.storage.models import Agent, utcnow

log = logging.getLogger(__name__)


def go_online(u: Unit, agent_id: int, online: bool) -> str:
    """/online or /away; what to tell the agent. Going online, the queue may have something for them at once."""
    agent = u.session.get(Agent, agent_id)
    if agent is None:
        return NOT_AN_AGENT
    presence.set_online(u.session, agent, online, utcnow())
    if not online:
        return AWAY
    settings = u.settings
    limit = ONLINE_LIMIT.format(limit=settings.max_chats_per_agent) if settings.auto_assign else ""
    minutes = f"{settings.away_after_minutes:g}"
    return ONLINE.format(limit=limit, minutes=minutes)


async def on_activity(desk: Desk, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anything an agent does in their private chat or the agents' group keeps them active."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or user.is_bot:
        return
    if chat.id != desk.group and not desk.is_agent_chat(update):
        return
    try:
        await desk.sessions.run(presence.touch, user.id, utcnow())
    except Exception:  # activity is a hint: never in the way of the update itself
        log.exception("could not note agent %s's activity", user.id)


class People:
    """The desk round's part for agents: who went away (checked every CHECK_EVERY), and the queue's requests given or
    offered to the free ones (bot/desk/assign.py) whenever anyone waits."""

    CHECK_EVERY = timedelta(seconds=20)

    def __init__(self, desk: Desk) -> None:
        self._desk = desk
        self._checked_at: datetime | None = None

    async def run(self, queued: bool) -> None:
        """One pass of the round (`queued`: whether anyone waits in the queue)."""
        desk, now = self._desk, utcnow()
        if self._checked_at is None or now - self._checked_at >= self.CHECK_EVERY:
            self._checked_at = now
            minutes = desk.settings.away_after_minutes
            for chat_id in await desk.sessions.run(presence.gone_away, now, minutes):
                await desk.direct(chat_id, AWAY_AUTO.format(minutes=f"{minutes:g}"))
        if queued:
            await desk.step(assign.assign_round)
