"""Fetching updates from Telegram: each is stored in the inbox before the next poll confirms it."""

from __future__ import annotations

import asyncio
import hmac
import logging
import warnings
from typing import Any

from aiohttp import web
from telegram import Bot, Update
from telegram.error import Conflict, TelegramError

from bot import metrics
from bot.storage import inbox
from bot.storage.db import Sessions
from bot.telegram.dispatch import ChatDispatcher, chat_key

log = logging.getLogger(__name__)
# getUpdates is fetched raw on purpose (see Intake.run); python-telegram-bot would suggest its parsing method each poll.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates' instead")
POLL_TIMEOUT = 25
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram"


def update_kind(payload: dict[str, Any]) -> str:
    """What an update carries (message, edited_message, callback_query, chat_member, ...), for counting."""
    kind = next((key for key in payload if key != "update_id"), "")
    return kind if kind in Update.ALL_TYPES else "other"


class Intake:
    """Long-polls getUpdates itself, because Telegram drops updates an offset has confirmed."""

    def __init__(self, bot: Bot, sessions: Sessions, dispatcher: ChatDispatcher) -> None:
        self._bot = bot
        self._sessions = sessions
        self._dispatcher = dispatcher
        self.last_error: str | None = None  # why the last getUpdates failed, until one succeeds

    async def resume(self) -> int | None:
        """Hand stored but unprocessed updates to the dispatcher; return the offset to poll from."""
        async with self._sessions() as session:
            for row in await session.run_sync(inbox.pending):
                update = self._read(row.payload)
                if update is not None:
                    self._dispatcher.submit(update)
            newest = await session.run_sync(inbox.newest_update_id)
        return None if newest is None else newest + 1

    def _read(self, raw: dict) -> Update | None:
        """The update, or None when python-telegram-bot cannot read it (a newer Bot API shape, say)."""
        try:
            return Update.de_json(raw, self._bot)
        except Exception:
            log.warning(
                "an update this python-telegram-bot cannot read was stored and skipped: %.300r", raw, exc_info=True
            )
            return None

    async def accept_raw(self, raw: dict) -> None:
        """Store an update as Telegram sent it; one the library cannot read is kept, marked done and skipped, so it
        neither stops the updates after it nor comes back."""
        update = self._read(raw)
        if update is not None:
            await self.accept(update, raw)
            return
        async with self._sessions.begin() as session:
            if await session.run_sync(inbox.store, update_id=int(raw["update_id"]), chat_id=None, payload=raw):
                await session.run_sync(inbox.mark_done, int(raw["update_id"]))

    async def accept(self, update: Update, raw: dict | None = None) -> None:
        """Store one update (as Telegram sent it, when `raw` is given) and hand it on, unless it was stored before."""
        is_new = await self._sessions.run(
            inbox.store,
            update_id=update.update_id,
            chat_id=chat_key(update) or None,
            payload=raw if raw is not None else update.to_dict(),
        )
        if is_new:
            metrics.current().updates.labels(update_kind(raw or update.to_dict())).inc()
            self._dispatcher.submit(update)

    def problem(self) -> str | None:
        """None unless the last poll of Telegram failed (a long poll in progress is fine)."""
        return self.last_error

    async def run(self) -> None:
        """Poll until cancelled."""
        offset = await self.resume()
        backoff = store_backoff = 1.0
        while True:
            try:
                # Raw, then read one by one: python-telegram-bot's get_updates fails the whole batch on one update
                # it cannot read, and polling would stop at it for good.
                updates = await self._bot.do_api_request(
                    "getUpdates",
                    api_kwargs={"offset": offset, "timeout": POLL_TIMEOUT, "allowed_updates": Update.ALL_TYPES},
                    read_timeout=POLL_TIMEOUT + 10,
                )
            except Conflict as exc:
                # Another process polls this bot (one on another database: the polling lease cannot see it), or a
                # webhook is set. Telegram ends the older poll each time the other polls: say so, and keep trying.
                self.last_error = f"Telegram's getUpdates failed: {exc}"
                log.error(
                    "getUpdates: %s. Another process is polling this bot (or a webhook is set): stop it, or this "
                    "instance and that one will split the bot's updates. Retrying in %.0f s",
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except TelegramError as exc:
                self.last_error = f"Telegram's getUpdates failed: {exc}"
                log.warning("getUpdates failed, retrying in %.0f s: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            self.last_error = None
            try:
                for raw in updates:
                    await self.accept_raw(raw)
                    offset = int(raw["update_id"]) + 1
            except Exception as exc:  # noqa: BLE001 (whatever failed, the update is polled again)
                # Not stored, so not confirmed: the next poll from this offset brings it (and those after it) again.
                # (/ready names the database as what fails.)
                log.warning("storing update %s failed, polling it again in %.0f s: %s", offset, store_backoff, exc)
                await asyncio.sleep(store_backoff)
                store_backoff = min(store_backoff * 2, 10.0)
                continue
            store_backoff = 1.0


class WebhookIntake(Intake):
    """Webhook mode: Telegram POSTs each update; it is stored before the 200 that confirms it."""

    def __init__(self, bot: Bot, sessions: Sessions, dispatcher: ChatDispatcher, *, url: str, secret: str) -> None:
        super().__init__(bot, sessions, dispatcher)
        self._url = url
        self._secret = secret

    async def run(self) -> None:
        """Hand on what is stored, point Telegram at the webhook, then serve until cancelled."""
        await self.resume()
        while True:
            try:
                await self._bot.set_webhook(self._url, secret_token=self._secret, allowed_updates=Update.ALL_TYPES)
                self.last_error = None
                break
            except TelegramError as exc:
                self.last_error = f"Telegram's setWebhook failed: {exc}"
                log.warning("setWebhook failed, retrying in 5 s: %s", exc)
                await asyncio.sleep(5)
        log.info("webhook set: %s", self._url)
        await asyncio.Event().wait()

    async def handle(self, request: web.Request) -> web.Response:
        """POST /telegram: check the secret, store the update, then answer 200 (Telegram resends until then)."""
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, ""), self._secret):
            log.warning("webhook call without the right secret token from %s", request.remote)
            return web.Response(status=403)
        try:
            raw = await request.json()
            int(raw["update_id"])
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400, text="not an update")
        await self.accept_raw(raw)
        return web.Response(status=200)
