"""One customer message's trip to Rasa: asked once per update (recovered from Rasa's tracker after a restart),
the answer recorded with the update marked done in one transaction, then sent; a handoff in it goes to the desk."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import ContextTypes

from bot import metrics, replies
from bot.chat.records import claim_trip, metadata, queue_reply, record_answer
from bot.config import Settings
from bot.desk.desk import Desk
from bot.faults import failpoint
from bot.rasa import RasaClient, RasaReply, RasaUnavailable
from bot.storage import inbox, transcript
from bot.storage.db import Sessions
from bot.storage.models import Conversation, utcnow
from bot.telegram.outbox import Outbox
from bot.telegram.typing_action import typing_shown

log = logging.getLogger(__name__)
RECOVERY_POLL = 0.5  # how often Rasa's tracker is read while a restarted app waits to learn whether Rasa got a message


class RasaTrip:
    """Asks Rasa for the answer to a customer's update and delivers it, exactly once."""

    def __init__(self, settings: Settings, sessions: Sessions, rasa: RasaClient, outbox: Outbox, desk: Desk) -> None:
        self._settings = settings
        self._sessions = sessions
        self._rasa = rasa
        self._outbox = outbox
        self._desk = desk

    async def ask(
        self,
        update: Update,
        conversation: Conversation,
        text: str,
        context: ContextTypes.DEFAULT_TYPE,
        attachments: list[dict[str, str]] | None = None,
        claimed: bool = False,
    ) -> None:
        """Ask Rasa once per update (`claimed`: the trip was claimed with the arrival), and record its answer."""
        first_trip = claimed
        if not claimed:
            first_trip, answered = await self._sessions.run(claim_trip, update.update_id)
            if answered:
                await self._outbox.flush(conversation.chat_id)
                return
        if not first_trip:
            # The trip was claimed before a restart: never ask twice; answer with what Rasa said then, if it got it.
            recovered = await self._recover(update, conversation)
            if recovered is not None:
                await self.reply(update, conversation, recovered or [{"text": replies.TROUBLE}])
                return
            log.info("Rasa never got update %s (the app stopped after claiming it): asking now", update.update_id)
        async with typing_shown(self._outbox, conversation.chat_id):
            started, outcome = time.monotonic(), "unavailable"
            try:
                about = metadata(update)
                if attachments:
                    about["attachments"] = attachments
                answer = await self._rasa.send(conversation.sender_id, text, about)
                outcome = "answered"
            except RasaUnavailable as exc:
                log.warning("no answer from Rasa for update %s: %s", update.update_id, exc)
                answer = []
            finally:
                metrics.current().rasa_seconds.labels(outcome).observe(time.monotonic() - started)
        if not answer and self._desk.enabled:
            # Rasa or the action server failed: a person answers instead of nobody.
            answer = [{"custom": {"handoff": {"reason": "bot_unavailable", "message": text}}}]
        await self.reply(update, conversation, answer or [{"text": replies.TROUBLE}], unanswered=first_trip)

    async def _recover(self, update: Update, conversation: Conversation) -> list[RasaReply] | None:
        """What Rasa said to an update whose trip was claimed before a restart, from its tracker; None when Rasa
        never got the message. Rasa may still be at it: its tracker is read until the claim is as old as the app
        would have waited for an answer (RASA_TIMEOUT)."""
        async with self._sessions() as session:
            claimed_at = await session.run_sync(inbox.claimed_at, update.update_id)
        while True:
            recovered = await self._rasa.replies_after(conversation.sender_id, update.update_id)
            left = 0.0 if claimed_at is None else self._settings.rasa_timeout - (utcnow() - claimed_at).total_seconds()
            if recovered is not None or left <= 0:
                return recovered
            await asyncio.sleep(min(RECOVERY_POLL, left))

    async def reply(
        self, update: Update, conversation: Conversation, answer: list[RasaReply], *, unanswered: bool = False
    ) -> None:
        """Record the answer to an update (unless replies to it are recorded already: `unanswered` says the caller
        knows there are none) and mark the update done in the same transaction; then send."""
        if not any(reply.get("custom") for reply in answer):  # the usual answer: messages only
            await self._outbox.record_and_flush(
                conversation.chat_id, record_answer, conversation, update.update_id, answer, unanswered=unanswered
            )
            return
        # Rasa paused the conversation for a person, but no agents' group is configured: it listens again.
        resume = not self._desk.enabled and any(
            isinstance((r.get("custom") or {}).get("handoff"), dict) for r in answer
        )
        desk_chats: set[int] = set()  # an agent's private chat that a request was given or offered to, at once
        async with self._sessions.begin() as session:
            if unanswered or not await session.run_sync(transcript.replies_to, update.update_id):
                for reply in answer:
                    desk_chats |= await self._decide(session, conversation, update.update_id, reply)
                    await session.run_sync(queue_reply, conversation, update.update_id, reply)
            if not resume:
                # What is left is the outbox's, which delivers whatever is recorded, after a restart too.
                await session.run_sync(inbox.mark_done, update.update_id)
        failpoint(self._settings, "before-send")
        for chat_id in desk_chats - {conversation.chat_id}:
            self._outbox.flush_soon(chat_id)
        await self._outbox.flush(conversation.chat_id)
        if resume:
            await self._rasa.resume(conversation.sender_id)

    async def _decide(
        self, session: AsyncSession, conversation: Conversation, update_id: int, reply: RasaReply
    ) -> set[int]:
        """A decision for the app in a reply (the handoff payload): kept with the transcript; the desk acts on it.
        The chats other than the customer's that the desk wrote to."""
        if not reply.get("custom"):
            return set()
        kind = "handoff" if "handoff" in reply["custom"] else "custom"
        await session.run_sync(
            transcript.record_event, conversation=conversation, kind=kind, payload=reply["custom"], update_id=update_id
        )
        request = reply["custom"].get("handoff")
        if isinstance(request, dict):
            return await session.run_sync(
                self._desk.escalate,
                conversation.id,
                update_id=update_id,
                reason=str(request.get("reason") or "customer_request")[:32],
                context=request,
            )
        return set()
