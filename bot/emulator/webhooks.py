"""Delivering updates to a webhook, as Telegram does once `setWebhook` is set.

Each update is POSTed as JSON with the secret token header; it leaves the queue when the bot answers 2xx and is
retried otherwise. Updates of one chat go one at a time, in order; different chats in parallel, up to the
webhook's `max_connections` (our reading of Telegram's behaviour: a chat's next update waits for the previous).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from bot.emulator.state import JSON, EmulatorState

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _chat_of(update: JSON) -> int:
    for value in update.values():
        if isinstance(value, dict):
            chat = value.get("chat") or (value.get("message") or {}).get("chat")
            if isinstance(chat, dict) and "id" in chat:
                return int(chat["id"])
    return 0


class WebhookDelivery:
    """Runs beside the emulator's server while a webhook is set."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._busy: set[int] = set()
        self._http: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        """Deliver until cancelled."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not self._state.closing:
                ready = await self._state.changed.wait_until(self._next_batch, 1.0)
                for update in ready or []:
                    chat = _chat_of(update)
                    self._busy.add(chat)
                    task = asyncio.create_task(self._deliver(update, chat))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            await self._http.close()

    def _next_batch(self) -> list[JSON] | None:
        webhook = self._state.webhook
        if not webhook.get("url"):
            return None
        room = int(webhook.get("max_connections") or 40) - len(self._busy)
        batch: list[JSON] = []
        seen: set[int | None] = set()
        for update in self._state.deliverable_updates(len(self._state.updates) or 1):
            chat = _chat_of(update)
            if chat in self._busy or chat in seen:
                seen.add(chat)
                continue
            seen.add(chat)
            if len(batch) < room:
                batch.append(update)
        return batch or None

    async def _deliver(self, update: JSON, chat: int) -> None:
        try:
            while not self._state.closing:
                webhook = self._state.webhook
                if not webhook.get("url"):
                    return
                headers = {SECRET_HEADER: webhook["secret_token"]} if webhook.get("secret_token") else {}
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with self._http.post(webhook["url"], json=update, headers=headers) as response:
                        if 200 <= response.status < 300:
                            self._state.updates = [
                                u for u in self._state.updates if u["update_id"] != update["update_id"]
                            ]
                            return
                        log.info("webhook answered %s for update %s; retrying", response.status, update["update_id"])
                await asyncio.sleep(RETRY_SECONDS)
        finally:
            self._busy.discard(chat)
            self._state.changed.notify()
