"""Per-chat ordering: updates of one chat are handled one after another, chats in parallel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram import Update

from bot.logs import bind_chat
from bot.storage.db import watch_outage

log = logging.getLogger(__name__)
# An update whose handling met the database down is handled again (handlers are idempotent: the inbox resumes
# stored updates after a crash the same way), after 1, 2, 4… up to 15 s, for about five minutes; then it stays
# in the inbox for the next start (or the next sweep, with several workers).
RETRY_FIRST = 1.0
RETRY_MAX = 15.0
RETRY_FOR = 300.0


def chat_key(update: Update) -> int:
    """The chat an update belongs to (0 for updates without one, handled in one lane)."""
    chat = update.effective_chat
    return chat.id if chat else 0


async def handle_patiently(handle: Callable[[Update], Awaitable[None]], update: Update) -> bool:
    """Handle an update, again while the database fails under it; False when it is still not done."""
    delay, waited = RETRY_FIRST, 0.0
    while True:
        with watch_outage() as outage:
            try:
                await handle(update)
            except Exception:
                if not outage.failed:
                    log.exception("update %s failed outside its handlers", update.update_id)
                    return True  # a bug, not an outage: trying again would fail the same way
        if not outage.failed:
            return True
        if waited >= RETRY_FOR:
            log.error(
                "update %s: the database still fails (%s); it stays in the inbox", update.update_id, outage.reason
            )
            return False
        log.warning(
            "update %s met the database failing (%s): handling it again in %.0f s",
            update.update_id,
            outage.reason,
            delay,
        )
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, RETRY_MAX)


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
                await handle_patiently(self._handle, queue.get_nowait())
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
