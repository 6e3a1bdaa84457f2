"""Delivering recorded replies: in order per chat, marked sent only after Telegram accepted them."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId
from telegram import Message as TelegramMessage
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot import clock, metrics
from bot.faults import failpoint
from bot.storage import copies, transcript
from bot.storage.db import Sessions
from bot.storage.models import Message
from bot.telegram import group_queue
from bot.telegram.group_pace import GroupPace
from bot.telegram.locks import LocalLocks, Locks
from bot.telegram.pace import ANSWER, FOLLOW_UP, Pace

log = logging.getLogger(__name__)
RETRY_INTERVAL = 2.0
RESUME_MARGIN = 0.02  # seconds after Telegram's "retry after" that a flooded chat is flushed again
Refused = Callable[[Message, str], Awaitable[None]]


def keyboard(payload: dict[str, Any] | None) -> InlineKeyboardMarkup | None:
    """The inline keyboard stored with a reply, one button per row."""
    buttons = (payload or {}).get("buttons") or []
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b["title"], callback_data=b["callback_data"])] for b in buttons])


def document_file(payload: dict[str, Any] | None) -> InputFile:
    """The file stored with a document reply: a JSON document (`json`) or text (`content`), with its name."""
    payload = payload or {}
    if "json" in payload:
        data = json.dumps(payload["json"], indent=2, ensure_ascii=False).encode()
    else:
        data = str(payload.get("content", "")).encode()
    return InputFile(data, filename=payload.get("file_name") or "document.txt")


def _record_then_read(
    session: Session, record: Callable[..., object], chat_id: int | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[Message]:
    record(session, *args, **kwargs)
    return transcript.outbox(session, chat_id) if chat_id is not None else []


def retry_seconds(exc: RetryAfter) -> float:
    """How long Telegram asked to wait, in seconds."""
    with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def _mark_all(session: Session, delivered: Sequence[tuple[int, int | None, str | None]]) -> None:
    """Messages sent together (an album, merged relays) marked sent in one transaction."""
    for message_id, sent_as, file_id in delivered:
        transcript.mark_delivered(session, message_id, telegram_message_id=sent_as, file_id=file_id)


def _count_sent(messages: Sequence[Message]) -> None:
    counter = metrics.current().messages_out
    for each in messages:
        counter.labels(each.kind).inc()


def _messages(message: Message, together: Sequence[Message], album: bool) -> int:
    """How many messages Telegram counts for this send: an album's parts each; an edit or a topic change none."""
    payload = message.payload or {}
    if "edit" in payload or "topic" in payload:
        return 0
    if album:
        return 1 + len(together)
    if "copy_many" in payload:
        return len(payload["copy_many"]["message_ids"])
    return 1


def _priority(chat_id: int) -> int:
    """A private chat's messages are customers' (or an agent's) answers; a group's wait for them."""
    return ANSWER if chat_id > 0 else FOLLOW_UP


class Outbox:
    """Sends pending replies; a chat is flushed by one task at a time so order is kept."""

    def __init__(
        self, bot: Bot, sessions: Sessions, shared: Locks | None = None, group_rate: int = 0, rate: Pace | None = None
    ) -> None:
        self._bot = bot
        self._sessions = sessions
        # Sent, but the database failed as they were being marked sent: marked when it is back, never sent again.
        self._unmarked: dict[int, tuple[int | None, str | None]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.shared: Locks = shared or LocalLocks()  # with several workers: one sender per chat among them
        # Telegram's "retry after" is per chat: a flooded agents' group must not hold up customers' replies.
        self._not_before: dict[int, float] = {}
        self.pace = GroupPace(group_rate)  # groups: messages a minute, counted as Telegram counts them
        self.rate = rate or Pace(0)  # overall and per private chat (bot/telegram/pace.py); Pace(0): none
        self._served: dict[int, int] = {}  # per group: the conversation whose message went last (round robin)
        self._background: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        self._closed = False
        self.refused: Refused | None = None  # told of a message Telegram refused for good, with the reason

    def _waiting(self, chat_id: int) -> bool:
        """Whether Telegram's last "retry after" for this chat has not yet passed."""
        return asyncio.get_running_loop().time() < self._not_before.get(chat_id, 0.0)

    def _lock(self, chat_id: int) -> asyncio.Lock:
        return self._locks.setdefault(chat_id, asyncio.Lock())

    async def flush(self, chat_id: int) -> None:
        """Deliver everything pending for one chat, stopping at the first transient failure."""
        async with self._lock(chat_id), self.shared.try_hold("outbox", chat_id) as held:
            # Asked only once the lock is ours: the flush it waited for may just have been told to wait.
            if self._waiting(chat_id):
                return  # Telegram asked us to wait with this chat; the retry round comes back to it
            if not held:
                return  # another worker is sending this chat's messages; the retry round catches any it missed
            if group_queue.is_group(chat_id):
                await self._flush_group(chat_id)
                return
            pending = await self._sessions.read(transcript.outbox, chat_id)
            await self._deliver_in_order(pending)

    async def _deliver_in_order(self, pending: Sequence[Message]) -> None:
        """A private chat's pending messages in order, stopping at the first that must wait; an album's copies
        (recorded one by one, as Telegram delivers an album's parts) go as one album once they are due."""
        now, done = clock.now().timestamp(), 0
        for index, message in enumerate(pending):
            if index < done:
                continue  # sent with an album
            album = (message.payload or {}).get("album")
            together: list[Message] = []
            if album is not None:
                if not group_queue.due_now(message, now):
                    return  # the album's other parts may still be on their way: the next flush sends it whole
                for follower in pending[index + 1 :]:
                    if (follower.payload or {}).get("album") != album:
                        break
                    together.append(follower)
                done = index + 1 + len(together)
            if not await self._deliver(message, together=together, album=bool(together)):
                return

    async def _flush_group(self, chat_id: int) -> None:
        """A group's messages in the order of bot/telegram/group_queue.py, read afresh after each send: a card
        recorded meanwhile goes before what was already waiting."""
        while True:
            pending = await self._sessions.read(transcript.outbox, chat_id)
            batch = group_queue.next_batch(pending, clock.now().timestamp(), self._served.get(chat_id))
            if not batch:
                return
            count, card = group_queue.messages_in(batch[0]), batch[0].kind == "card"
            if self.pace.wait(chat_id, count, card=card) > 0:
                return  # the group's minute is spent (for this kind of message): the retry round comes back
            self.pace.spend(chat_id, count)
            if not await self._deliver(batch[0], together=batch[1:]):
                return
            self._served[chat_id] = batch[0].conversation_id

    def flush_soon(self, chat_id: int) -> None:
        """Deliver a chat's messages in the background: a customer's handler must not wait for the agents' group,
        which Telegram paces at 20 messages a minute."""
        if chat_id in self._background:
            self._again.add(chat_id)  # the running flush may have read before the newest message: go once more
            return
        self._background[chat_id] = asyncio.create_task(self._flush_in_background(chat_id))

    def _resume(self, chat_id: int) -> None:
        if not self._closed:
            self.flush_soon(chat_id)

    async def close(self) -> None:
        """Stop the background deliveries (what they had not sent stays recorded, for the next start)."""
        self._closed = True
        for task in list(self._background.values()):
            task.cancel()
        await asyncio.gather(*self._background.values(), return_exceptions=True)

    async def _flush_in_background(self, chat_id: int) -> None:
        try:
            while True:
                self._again.discard(chat_id)
                await self.flush(chat_id)
                if chat_id not in self._again:
                    return
        except Exception:
            log.exception("delivering to chat %s failed; the retry round will try again", chat_id)
        finally:
            self._background.pop(chat_id, None)

    async def record_and_flush(self, chat_id: int, record: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Record replies to a chat (`record(session, *args, **kwargs)`, one transaction) and deliver what is then
        pending there, read in that same transaction: one transaction fewer on every message's way than recording,
        then flushing. The chat's lock is taken first, so no other sender can be delivering what is read."""
        async with self._lock(chat_id), self.shared.try_hold("outbox", chat_id) as held:
            # Recorded whatever happens; read only when this sender may deliver now (see flush).
            readable = chat_id if held and not self._waiting(chat_id) else None
            pending = await self._sessions.run(_record_then_read, record, readable, args, kwargs)
            failpoint(None, "before-send", chat_id)  # tests: the reply stored, not sent
            await self._deliver_in_order(pending)

    async def flush_all(self) -> None:
        """Deliver whatever is pending in any chat (after a restart, or a transient failure)."""
        chats = {m.chat_id for m in await self._sessions.read(transcript.outbox)}
        await asyncio.gather(*(self.flush(chat_id) for chat_id in chats))

    async def run(self) -> None:
        """Retry pending deliveries until cancelled."""
        while True:
            try:
                await self.flush_all()
            except Exception:
                log.exception("outbox retry round failed")
            await asyncio.sleep(RETRY_INTERVAL)

    async def chat_action(self, chat_id: int, action: str) -> None:
        """Show the customer an action (typing…), never in a reply's way.

        Nothing is shown while the chat waits out a "retry after", while a reply is being sent to it (the reply is
        what the customer waits for), or while messages wait for room to be sent (bot/telegram/pace.py); the chat's
        lock is not held over the call, so a reply never waits for it. A "retry after" it is given holds the chat's
        replies back too.
        """
        if self._lock(chat_id).locked() or self._waiting(chat_id) or not self.rate.has_room():
            return
        try:
            await self._bot.send_chat_action(chat_id, action)
        except RetryAfter as exc:
            self._wait(chat_id, exc)
        except TelegramError as exc:
            log.debug("chat action for chat %s failed: %s", chat_id, exc)

    def _wait(self, chat_id: int, exc: RetryAfter) -> None:
        """Hold this chat's messages back for as long as Telegram asked."""
        wait = retry_seconds(exc)
        metrics.current().retry_after.labels("group" if group_queue.is_group(chat_id) else "private").inc()
        loop = asyncio.get_running_loop()
        self._not_before[chat_id] = max(self._not_before.get(chat_id, 0.0), loop.time() + wait)
        # Sent again as soon as the wait is over (an agent's cards one a second), not at the next retry round.
        loop.call_later(self._not_before[chat_id] - loop.time() + RESUME_MARGIN, self._resume, chat_id)
        log.warning("chat %s is flooded: waiting %.0f s before its next message", chat_id, wait)

    async def _send(self, message: Message, text: str | None = None) -> TelegramMessage | MessageId | None:
        """One recorded message to Telegram: a copy of a user's message, a photo, a document (with caption), or a text.

        The payload may name a forum topic (`thread_id`) and carry buttons.
        """
        payload = message.payload or {}
        where = {"message_thread_id": payload.get("thread_id"), "reply_markup": keyboard(payload)}
        caption = message.text or None
        if "edit" in payload:
            return await self._edit(message.chat_id, payload["edit"], message.text)
        if "copy" in payload:
            source = payload["copy"]
            return await self._bot.copy_message(
                message.chat_id, source["from_chat_id"], source["message_id"], caption=caption, **where
            )
        if "topic" in payload:  # a forum topic renamed, closed or reopened: nothing is posted
            await self._change_topic(message.chat_id, payload["thread_id"], payload["topic"])
            return None
        if "copy_many" in payload:  # an album stays one album
            source = payload["copy_many"]
            copied = await self._bot.copy_messages(
                message.chat_id,
                source["from_chat_id"],
                source["message_ids"],
                message_thread_id=payload.get("thread_id"),
            )
            if not copied:
                raise BadRequest("none of the messages could be copied")
            return copied[0]
        if message.kind == "photo":
            return await self._bot.send_photo(message.chat_id, payload["photo"], caption=caption, **where)
        if message.kind == "document":
            return await self._bot.send_document(message.chat_id, document_file(payload), caption=caption, **where)
        return await self._bot.send_message(message.chat_id, text or message.text, **where)

    async def _edit(self, chat_id: int, edit: dict[str, Any], text: str) -> TelegramMessage | None:
        """An edit of a message delivered earlier (`of`: its record): its text, or its caption."""
        target = await self._sessions.read(copies.delivered_as, int(edit["of"]))
        if target is None:
            raise BadRequest("the message to edit never reached the chat")
        try:
            if edit.get("caption"):
                sent = await self._bot.edit_message_caption(chat_id, target, caption=text)
            else:
                sent = await self._bot.edit_message_text(text, chat_id, target)
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return None  # it already reads so (an edit sent again after a restart)
            raise
        return sent if isinstance(sent, TelegramMessage) else None

    async def _send_album(self, messages: Sequence[Message]) -> list[MessageId]:
        """Copies of an album's parts as one album; each part keeps its caption."""
        first = messages[0].payload or {}
        source = first["copy"]
        copied = await self._bot.copy_messages(
            messages[0].chat_id,
            source["from_chat_id"],
            [(m.payload or {})["copy"]["message_id"] for m in messages],
        )
        if len(copied) != len(messages):
            raise BadRequest("some of the album's messages could not be copied")
        return list(copied)

    async def _change_topic(self, chat_id: int, thread_id: int, change: dict[str, Any]) -> None:
        """Rename the topic, then close or reopen it; a step already done (TOPIC_NOT_MODIFIED) is skipped."""
        steps: list[Any] = []
        if change.get("name"):
            steps.append(lambda: self._bot.edit_forum_topic(chat_id, thread_id, name=change["name"]))
        if "closed" in change:
            toggle = self._bot.close_forum_topic if change["closed"] else self._bot.reopen_forum_topic
            steps.append(lambda: toggle(chat_id, thread_id))
        for step in steps:
            try:
                await step()
            except BadRequest as exc:
                if "not_modified" not in str(exc).lower().replace(" ", "_"):
                    raise

    async def _deliver(self, message: Message, together: Sequence[Message] = (), album: bool = False) -> bool:
        """Send one recorded message (with `together`: relayed texts merged into it, or with `album` the rest of an
        album copied with it, marked sent with it); False when it should be tried again later."""
        if message.id in self._unmarked:
            # Telegram has it: only marking it sent failed (the database went away). Mark it; never send it again.
            await self._mark([(message, *self._unmarked[message.id])])
            return True
        already = [each for each in together if each.id in self._unmarked]
        if already:
            await self._mark([(each, *self._unmarked[each.id]) for each in already])
            together = [each for each in together if each.id not in self._unmarked]
            album = album and bool(together)
        room = self.rate.room(message.chat_id, _messages(message, together, album), _priority(message.chat_id))
        try:
            if album:
                async with room:
                    ids = await self._send_album([message, *together])
                _count_sent((message, *together))
                await self._mark(
                    [(each, copied.message_id, None) for each, copied in zip((message, *together), ids, strict=True)]
                )
                return True
            async with room:
                sent = await self._send(message, group_queue.merged_text([message, *together]) if together else None)
        except (Forbidden, BadRequest) as exc:
            log.warning("reply %s to chat %s refused for good: %s", message.id, message.chat_id, exc)
            for each in (message, *together):
                await self._sessions.run(transcript.mark_undeliverable, each.id)
                if self.refused is not None:
                    await self.refused(each, exc.message)
            return True
        except RetryAfter as exc:
            self._wait(message.chat_id, exc)
            return False
        except (NetworkError, TelegramError) as exc:
            log.warning("reply %s to chat %s not delivered yet: %s", message.id, message.chat_id, exc)
            return False
        _count_sent((message, *together))
        failpoint(None, "after-send", message.chat_id)  # tests: sent, not yet marked sent (a restart sends it again)
        document = getattr(sent, "document", None)
        sent_as, file_id = getattr(sent, "message_id", None), document.file_id if document else None
        await self._mark([(each, sent_as, file_id) for each in (message, *together)])
        return True

    async def _mark(self, delivered: Sequence[tuple[Message, int | None, str | None]]) -> None:
        """Mark messages Telegram accepted as sent (as which message, a document's file id). Kept in memory until
        that is stored: a database failing right after a send must not make the app send the same message again."""
        for each, sent_as, file_id in delivered:
            self._unmarked[each.id] = (sent_as, file_id)
        await self._sessions.run(_mark_all, [(each.id, sent_as, file_id) for each, sent_as, file_id in delivered])
        for each, _, _ in delivered:
            del self._unmarked[each.id]
