"""Customer chat: every private message is stored, answered by Rasa, and the reply recorded before it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NamedTuple

from sqlalchemy.orm import Session
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import replies
from bot.chat.blocked import Blocked, ForTheDesk, silent_when_blocked
from bot.chat.records import (
    attachment_record,
    file_id_of,
    is_picture,
    media_kind,
)
from bot.chat.trip import RasaTrip
from bot.config import Settings
from bot.desk.desk import Desk
from bot.desk.texts import CSAT_PREFIX, FOLLOWUP_PREFIX
from bot.desk.texts import PREFIX as DESK_PREFIX
from bot.faults import failpoint
from bot.rasa import RasaClient, escape_customer_text
from bot.storage import blocks, buttons, forget_log, handoffs, inbox, members, privacy, transcript
from bot.storage.db import Sessions
from bot.storage.models import Conversation, ConversationState, utcnow
from bot.telegram.outbox import Outbox

log = logging.getLogger(__name__)
COMMAND_NAME = re.compile(r"/[A-Za-z0-9_]{1,64}")
APP_PREFIX = "app:"
FORGET_YES = "app:forget:yes"
FORGET_NO = "app:forget:no"
PHOTO_INTENT = "/attach_photo"  # a photo without words: Rasa attaches it to a complaint, or asks what it is about


Handler = Callable[["CustomerChat", Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class Arrival(NamedTuple):
    """A customer's update recorded: their conversation; whether it reopens the latest handoff; whether the one
    trip to Rasa was claimed in the same transaction (for a message Rasa is about to be asked)."""

    conversation: Conversation
    reopens: bool
    claimed: bool


def customers_only(handler: Handler) -> Handler:
    """An update from an agent's desk chat that reached a customer handler (an edit: the desk takes new messages
    only) is the desk's, never a customer's message for Rasa."""

    @functools.wraps(handler)
    async def guarded(self: CustomerChat, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if self._desk.is_agent_chat(update):
            await self._desk.on_agent_edit(update)
            return
        try:
            await silent_when_blocked(handler)(self, update, context)
        except ForTheDesk as desk_chat:
            # This process's list of desks lagged behind the database: the update goes round again, to the desk.
            self._desk.agent_chats.add(desk_chat.chat_id)
            await context.application.process_update(update)

    return guarded


class CustomerChat:
    """The handlers of the customers' private chats with the bot."""

    def __init__(self, settings: Settings, sessions: Sessions, rasa: RasaClient, outbox: Outbox, desk: Desk) -> None:
        self._settings = settings
        self._desk = desk
        self._sessions = sessions
        self._rasa = rasa
        self._outbox = outbox
        self._trip = RasaTrip(settings, sessions, rasa, outbox, desk)
        # Button payloads the app answers itself; they never reach Rasa.
        self._app_buttons: dict[str, Callable[[Update], Awaitable[None]]] = {
            FORGET_YES: self._forget,
            FORGET_NO: self._keep,
        }

    @silent_when_blocked
    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start: greet the customer through Rasa, by name; a member of the agents' group is set up as an agent."""
        if self._desk.enabled and await self._desk.is_agent(update.effective_user.id):
            await self._desk.register_agent(update)
            return
        conversation, reopens, claimed = await self._arrive(
            update, kind="command", text=update.effective_message.text, claim=True
        )
        if await self._with_a_person(update, conversation, reopens):
            return
        await self._trip.ask(update, conversation, "/greet", context, claimed=claimed)

    @customers_only
    async def on_tickets(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/tickets: the customer's complaints and where they stand (Rasa's action knows them)."""
        conversation = await self._record(update, kind="command", text=update.effective_message.text)
        await self._trip.ask(update, conversation, "/check_ticket_status", context)

    @customers_only
    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/cancel: leave the queue for a person and go back to the bot."""
        conversation = await self._record(update, kind="command", text=update.effective_message.text)
        await self._desk.cancel(update, conversation)

    @customers_only
    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help: what the bot can do and how to ask."""
        conversation = await self._record(update, kind="command", text=update.effective_message.text)
        await self._trip.reply(update, conversation, [{"text": replies.HELP}])

    @customers_only
    async def on_mydata(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/mydata: everything stored about the customer, as a JSON file recorded in the outbox like any reply."""
        conversation = await self._record(update, kind="command", text=update.effective_message.text, blocked_ok=True)
        async with self._sessions.begin() as session:
            if not await session.run_sync(transcript.replies_to, update.update_id):
                export = await session.run_sync(privacy.export_customer, update.effective_user.id)
                payload = {"file_name": replies.MYDATA_FILE_NAME, "json": export}
                await session.run_sync(
                    transcript.queue_outgoing,
                    conversation=conversation,
                    text=replies.MYDATA_CAPTION,
                    update_id=update.update_id,
                    payload=payload,
                    kind="document",
                )
        failpoint(self._settings, "before-send")
        await self._outbox.flush(conversation.chat_id)

    @customers_only
    async def on_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/forget: ask for confirmation first, with buttons the app answers itself."""
        conversation = await self._record(update, kind="command", text=update.effective_message.text, blocked_ok=True)
        choices = [
            {"title": replies.FORGET_YES, "payload": FORGET_YES},
            {"title": replies.FORGET_NO, "payload": FORGET_NO},
        ]
        await self._trip.reply(update, conversation, [{"text": replies.FORGET_CONFIRM, "buttons": choices}])

    @customers_only
    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command we don't have: say so politely instead of guessing; while a person is in charge it is words for
        them ("/0", "/ok"), relayed like any message."""
        text = update.effective_message.text or ""
        conversation, reopens, _ = await self._arrive(update, kind="command", text=text)
        if await self._with_a_person(update, conversation, reopens):
            return
        command = COMMAND_NAME.match(text.strip())
        await self._trip.reply(
            update, conversation, [{"text": replies.UNKNOWN_COMMAND.format(command=command[0] if command else "/")}]
        )

    @customers_only
    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A customer's text (new or edited): store it and let Rasa answer."""
        message = update.effective_message
        kind = "edited" if update.edited_message else "text"
        readable = len(message.text) <= self._settings.max_nlu_chars
        conversation, reopens, claimed = await self._arrive(update, kind=kind, text=message.text, claim=readable)
        if conversation.state is ConversationState.CLOSED and await self._desk.take_comment(update, conversation):
            return
        if await self._with_a_person(update, conversation, reopens):
            return
        if not readable:
            await self._trip.reply(update, conversation, [{"text": replies.LONG_MESSAGE}])
            return
        await self._trip.ask(update, conversation, escape_customer_text(message.text), context, claimed=claimed)

    @customers_only
    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo goes to Rasa (it may be evidence for a complaint); a sticker, voice note, file…: keep it and ask for words."""
        kind = media_kind(update)
        caption = update.effective_message.caption or ""
        file_id = file_id_of(update, kind)
        readable = bool(caption) and len(caption) <= self._settings.max_nlu_chars
        picture = bool(file_id) and is_picture(update, kind)
        conversation, reopens, claimed = await self._arrive(
            update, kind=kind, text=caption, payload=attachment_record(update, kind), claim=picture or readable
        )
        if await self._with_a_person(update, conversation, reopens):
            return
        if picture:
            text = escape_customer_text(caption) if readable else PHOTO_INTENT
            await self._trip.ask(
                update,
                conversation,
                text,
                context,
                attachments=[{"kind": "photo", "file_id": file_id}],
                claimed=claimed,
            )
            return
        if readable:
            await self._trip.ask(update, conversation, escape_customer_text(caption), context, claimed=claimed)
            return
        await self._trip.reply(update, conversation, [{"text": replies.MEDIA.get(kind, replies.OTHER_MEDIA)}])

    @silent_when_blocked
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button press: resolve its server-side payload; refuse data we never issued to this chat."""
        query, chat_id = update.callback_query, (update.effective_chat.id if update.effective_chat else 0)
        async with self._sessions() as session:
            button = await session.run_sync(buttons.resolve, chat_id=chat_id, data=query.data)
            desk_button = button is not None and button.payload.startswith(DESK_PREFIX)
            at_desk = not desk_button and self._desk.enabled and await session.run_sync(members.is_desk, chat_id)
        if button is not None and desk_button:
            await self._desk.on_button(update, button.payload)  # agents' buttons: they stay for the next agent
            return
        if button is None or at_desk:  # never issued here, or a customer's button from before the chat was a desk
            log.warning("refused callback data %r from user %s in chat %s", query.data, query.from_user.id, chat_id)
            with contextlib.suppress(TelegramError):
                await query.answer(replies.EXPIRED_BUTTON)
            return
        with contextlib.suppress(TelegramError):
            await query.answer()
            await query.edit_message_reply_markup(reply_markup=None)
        if button.payload.startswith((CSAT_PREFIX, FOLLOWUP_PREFIX)):
            conversation = await self._record(
                update, kind="button", text=button.title, payload={"payload": button.payload}
            )
            await self._desk.on_customer_button(update, conversation, button.payload)
            return
        if button.payload.startswith(APP_PREFIX):
            await self._on_app_button(update, button.payload)
            return
        conversation = await self._record(update, kind="button", text=button.title, payload={"payload": button.payload})
        await self._trip.ask(update, conversation, button.payload, context)

    async def _with_a_person(self, update: Update, conversation: Conversation, reopens: bool) -> bool:
        """While a person is (about to be) in charge the bot stays silent: the message goes to the agents.

        So it does when the customer writes again soon after an agent closed the conversation (`reopens`, as
        `_arrive` found it): it reopens.
        """
        if conversation.state not in (ConversationState.QUEUED, ConversationState.HUMAN):
            return reopens and await self._desk.reopen_if_recent(update, conversation)
        return await self._desk.relay_from_customer(update, conversation)

    async def _on_app_button(self, update: Update, payload: str) -> None:
        """A button of the app's own (issued to this chat): run its handler."""
        handler = self._app_buttons.get(payload)
        if handler is None:
            log.warning("no app handler for button payload %r", payload)
            conversation = await self._record(update, kind="button", text=payload, payload={"payload": payload})
            await self._trip.reply(update, conversation, [{"text": replies.EXPIRED_BUTTON}])
            return
        await handler(update)

    async def _keep(self, update: Update) -> None:
        """The customer changed their mind about /forget."""
        conversation = await self._record(
            update, kind="button", text=replies.FORGET_NO, payload={"payload": FORGET_NO}, blocked_ok=True
        )
        await self._trip.reply(update, conversation, [{"text": replies.NOTHING_DELETED}])

    async def _forget(self, update: Update) -> None:
        """Forget the customer: Rasa's tracker, then our records; then confirm from a bare new record."""
        chat_id = update.effective_chat.id
        user_id = update.effective_user.id
        # Logged first (no personal data: a keyed hash), so a restore of an older backup forgets them again.
        try:
            await asyncio.to_thread(forget_log.record, self._settings.var_dir, user_id, utcnow())
        except OSError:  # forgetting them matters more: go on
            log.exception("could not write the forget log: a restore of an older backup would not forget them")
        # Rasa next: if our database step then failed, the customer can simply ask again.
        removed = await privacy.forget_rasa_tracker(self._settings.rasa_tracker_url, f"tg-{chat_id}")
        async with self._sessions.begin() as session:
            topics = await session.run_sync(privacy.ticket_topics, user_id)
            # What the customer writes meanwhile is stored in the inbox, still to be handled: it stays.
            chats = await session.run_sync(privacy.forget_customer, user_id, spare_after=update.update_id)
            # The confirmation goes through the outbox like every reply, so it needs a customer and a
            # conversation: a bare one, with no profile, holding only this message.
            customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=user_id, first_name="")
            conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=chat_id, customer=customer)
            await session.run_sync(
                transcript.queue_outgoing, conversation=conversation, text=replies.FORGOTTEN, update_id=update.update_id
            )
        log.info("forgot a customer on request: %d chat(s), %d Rasa tracker events", len(chats), removed)
        await self._desk.delete_topics(topics)
        await self._outbox.flush(chat_id)
        # Delivered: the bare records that carried the confirmation go too (else the desk's round takes them).
        await self._sessions.run(privacy.drop_confirmation, chat_id, replies.FORGOTTEN)

    async def _record(self, update: Update, *, kind: str, text: str | None, **more: Any) -> Conversation:
        """Record what the customer sent (`more`: its payload, and `blocked_ok`: see _arrive)."""
        return (await self._arrive(update, kind=kind, text=text, look_back=False, **more)).conversation

    async def _arrive(
        self,
        update: Update,
        *,
        kind: str,
        text: str | None,
        payload: dict[str, Any] | None = None,
        look_back: bool = True,
        claim: bool = False,
        blocked_ok: bool = False,
    ) -> Arrival:
        """Record what the customer sent, in one transaction with what comes next on a message's usual way:
        with `look_back`, whether it reopens the conversation's latest handoff (the usual answer, no, then costs
        no transaction of its own); with `claim`, the trip to Rasa, unless a person is (about to be) in charge.
        A blocked customer's update ends here, stored (raises Blocked), unless `blocked_ok` (/mydata, /forget)."""
        arrival = await self._sessions.run(
            self._record_arrival,
            update,
            kind=kind,
            text=text or "",
            payload=payload,
            look_back=look_back,
            claim=claim,
            blocked_ok=blocked_ok,
        )
        failpoint(self._settings, "after-inbox")
        if arrival is None:
            raise Blocked
        return arrival

    def _record_arrival(
        self,
        session: Session,
        update: Update,
        *,
        kind: str,
        text: str,
        payload: dict[str, Any] | None,
        look_back: bool,
        claim: bool,
        blocked_ok: bool = False,
    ) -> Arrival | None:
        """What `_arrive` records (None: the customer is blocked); raises ForTheDesk, storing nothing, when the chat is
        an agent's desk that this process does not know of yet."""
        user, chat_id = update.effective_user, update.effective_chat.id
        if self._desk.enabled and members.is_desk(session, chat_id):
            raise ForTheDesk(chat_id)
        conversation = transcript.arrival(
            session,
            chat_id=chat_id,
            telegram_user_id=user.id,
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
            language_code=user.language_code,
        )
        message = update.effective_message
        transcript.record_incoming(
            session,
            conversation=conversation,
            update_id=update.update_id,
            kind=kind,
            text=text,
            payload=payload,
            telegram_message_id=message.message_id if message and not update.callback_query else None,
        )
        if not blocked_ok and blocks.active(session, conversation.customer.telegram_user_id) is not None:
            return None
        with_the_bot = conversation.state not in (ConversationState.QUEUED, ConversationState.HUMAN)
        reopens = (
            look_back
            and self._desk.enabled
            and with_the_bot
            and self._desk.may_reopen(handoffs.latest(session, conversation.id))
        )
        claimed = (
            claim
            and with_the_bot
            and not reopens
            and inbox.mark_sent_to_rasa(session, update.update_id, unless_answered=True)
        )
        return Arrival(conversation, reopens, claimed)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The one error handler: log with the traceback, then tell the customer we had trouble."""
        log.error("handler failed for update %s", getattr(update, "update_id", None), exc_info=context.error)
        if not isinstance(update, Update) or update.effective_chat is None or update.effective_chat.type != "private":
            return
        with contextlib.suppress(Exception):
            async with self._sessions.begin() as session:
                conversation = await session.run_sync(transcript.find_conversation, update.effective_chat.id)
                if conversation is None or await session.run_sync(transcript.replies_to, update.update_id):
                    return
                await session.run_sync(
                    transcript.queue_outgoing,
                    conversation=conversation,
                    text=replies.TROUBLE,
                    update_id=update.update_id,
                )
            await self._outbox.flush(update.effective_chat.id)
