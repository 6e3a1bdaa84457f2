"""Per-chat order across worker processes: the inbox is the queue, a chat's try-lock says who drains it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, Update

from bot.logs import bind_chat
from bot.storage.models import InboxStatus, InboxUpdate
from bot.telegram.dispatch import chat_key, handle_patiently
from bot.telegram.locks import Locks

log = logging.getLogger(__name__)
SWEEP_SECONDS = 5.0


class ChatDrainer:
    """Handles a chat's stored updates in update order, in whichever worker holds the chat's lock.

    A worker that stores an update then tries the chat's lock. If another worker holds it, that one will
    find the update: it looks for more after each update, and once more after letting go of the lock.
    A sweep every few seconds catches whatever a crash left behind.
    """

    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        locks: Locks,
        handle: Callable[[Update], Awaitable[None]],
    ) -> None:
        self._bot = bot
        self._sessions = sessions
        self._locks = locks
        self._handle = handle
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()

    def submit(self, update: Update) -> None:
        """An update was stored: make sure its chat is drained."""
        self.kick(chat_key(update))

    def kick(self, key: int) -> None:
        """Drain a chat now, or once more after the drain in progress here."""
        if key in self._tasks:
            self._again.add(key)
            return
        self._tasks[key] = asyncio.create_task(self._drain(key), name=f"drain-{key}")

    async def _drain(self, key: int) -> None:
        bind_chat(key)  # this task's log lines carry the conversation id
        try:
            while True:
                self._again.discard(key)
                async with self._locks.try_hold("chat", key) as held:
                    if held:
                        while (update := await self._next(key)) is not None:
                            if not await handle_patiently(self._handle, update):
                                return  # still pending: the sweep brings it back
                if not held or not (key in self._again or await self._next(key) is not None):
                    return
        except Exception:
            log.exception("draining chat %s failed; the sweep will try again", key)
        finally:
            del self._tasks[key]

    async def _next(self, key: int) -> Update | None:
        async with self._sessions() as session:
            query = select(InboxUpdate).where(InboxUpdate.status == InboxStatus.PENDING)
            query = query.where(InboxUpdate.chat_id == key) if key else query.where(InboxUpdate.chat_id.is_(None))
            row = await session.scalar(query.order_by(InboxUpdate.update_id).limit(1))
        return Update.de_json(row.payload, self._bot) if row is not None else None

    async def sweep(self) -> None:
        """Every few seconds: drain every chat with stored, unhandled updates."""
        while True:
            try:
                async with self._sessions() as session:
                    chats = set(
                        await session.scalars(
                            select(InboxUpdate.chat_id).where(InboxUpdate.status == InboxStatus.PENDING).distinct()
                        )
                    )
                for chat in chats:
                    self.kick(chat or 0)
            except Exception:
                log.exception("inbox sweep failed")
            await asyncio.sleep(SWEEP_SECONDS)

    async def join(self) -> None:
        """Wait for the drains in progress here."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
