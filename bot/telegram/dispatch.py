"""Per-chat ordering: updates of one chat are handled one after another, chats in parallel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram import Update

from bot.logs import bind_chat

log = logging.getLogger(__name__)


def chat_key(update: Update) -> int:
    """The chat an update belongs to (0 for updates without one, handled in one lane)."""
    chat = update.effective_chat
    return chat.id if chat else 0


class ChatDispatcher:
    """Runs a handler for each update, in order within a chat, concurrently across chats."""

    def __init__(self, handle: Callable[[Update], Awaitable[None]]) -> None:
        self._handle = handle
        self._queues: dict[int, asyncio.Queue[Update]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}

    def submit(self, update: Update) -> None:
        """Queue an update behind the earlier ones of its chat."""
        key = chat_key(update)
        self._queues.setdefault(key, asyncio.Queue()).put_nowait(update)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._drain(key), name=f"chat-{key}")

    async def _drain(self, key: int) -> None:
        queue = self._queues[key]
        bind_chat(key)  # this task's log lines carry the conversation id (tasks it starts inherit it)
        try:
            while not queue.empty():
                update = queue.get_nowait()
                try:
                    await self._handle(update)
                except Exception:
                    log.exception("update %s failed outside its handlers", update.update_id)
        finally:
            del self._workers[key]
            if queue.empty():
                del self._queues[key]
            else:
                self._workers[key] = asyncio.create_task(self._drain(key), name=f"chat-{key}")

    async def join(self) -> None:
        """Wait until every queued update has been handled."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)
