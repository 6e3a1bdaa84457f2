"""The agents' commands for the queue and their presence, in their private chat: /next claims the top of the queue,
/online and /away, /pass hands a request on (bot/desk/assign.py, bot/desk/presence.py)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, TypeHandler, filters

from bot.desk import assign, presence
from bot.desk.desk import Desk, target
from bot.desk.texts import PASS_USAGE
from bot.desk.unit import Unit

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
ACTIVITY_GROUP = -1  # the handler group that notes an agent's activity, before any other handler sees the update


class QueueCommands:
    """/next, /online, /away and /pass for agents."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    def handlers(self, agent_chats: filters.BaseFilter) -> list[BaseHandler[Any, Any, Any]]:
        """The commands' handlers (added before the agents' commands' catch-all for unknown commands)."""
        commands: dict[str, Handler] = {
            "next": self.on_next,
            "online": self.on_online,
            "away": self.on_away,
            "pass": self.on_pass,
        }
        return [
            CommandHandler(name, self._as_agent(callback), filters=agent_chats) for name, callback in commands.items()
        ]

    def activity(self) -> BaseHandler[Any, Any, Any]:
        """Notes each update of an agent on the desk as activity (to add in ACTIVITY_GROUP)."""

        async def noted(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await presence.on_activity(self._desk, update, context)

        return TypeHandler(Update, noted)

    def _as_agent(self, callback: Handler) -> Handler:
        async def checked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if await self._desk.still_an_agent(update):
                await callback(update, context)

        return checked

    async def on_next(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/next: claim the top of the queue (highest priority, then longest waiting), as the Claim button does."""
        if (chat := update.effective_chat) is None:
            return
        agent = await self._desk.agent(update)
        told = await self._desk.step(assign.claim_next, agent.id, update_id=update.update_id)
        await self._desk.direct(chat.id, told)

    async def on_online(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/online: new requests come to this agent in turn."""
        await self._presence(update, online=True)

    async def on_away(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/away: no new requests for this agent; the customers they help stay with them."""
        await self._presence(update, online=False)

    async def _presence(self, update: Update, *, online: bool) -> None:
        if (chat := update.effective_chat) is None:
            return
        agent = await self._desk.agent(update)
        told = await self._desk.step(presence.go_online, agent.id, online)
        await self._desk.direct(chat.id, told)

    async def on_pass(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/pass: the customer this agent helps (the one replied to, with several) goes to the next free agent who has
        not had them, or back to the queue."""
        chat, message = update.effective_chat, update.effective_message
        if chat is None or message is None:
            return
        agent = await self._desk.agent(update)
        handoff, problem = await self._desk.sessions.read(
            lambda session: target(Unit(session, self._desk.settings), agent, message)
        )
        if handoff is None:
            await self._desk.direct(chat.id, problem or PASS_USAGE)
            return
        problem = await self._desk.step(assign.pass_back, handoff.id, agent.id, update_id=update.update_id)
        if problem:
            await self._desk.direct(chat.id, problem)
