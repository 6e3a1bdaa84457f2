"""The agents' commands in their private chat with the bot, and the group admins' commands in the agents' group:
one python-telegram-bot handler per command."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Message, Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot import hours as hours_module
from bot import replies
from bot.desk import briefing, cards, lifecycle, saved
from bot.desk.desk import Desk, target
from bot.desk.texts import (
    ADMINS_ONLY,
    AGENT_WELCOME,
    NO_PROMISES,
    NOTE_SAVED,
    PROMISE_KEPT_NOTICE,
    PROMISE_NOTICE,
    PROMISE_SAVED,
    PROMISE_USAGE,
    QUEUE_EMPTY,
    QUEUE_LINE,
)
from bot.desk.unit import Unit, record_number
from bot.storage import handoffs, transcript
from bot.storage.models import Agent, Handoff, HandoffStatus, Promise, Ticket, utcnow

MEDIA_USAGE = "Usage: /media T000012 sends you the attachments of that ticket that are not in its topic."
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class AgentCommands:
    """/close, /return, /transfer, /note, /promise, /promises, /kept, /queue, /r and /help for agents; /queue, /agents
    and /release in the agents' group."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    def handlers(self, agent_chats: filters.BaseFilter) -> list[BaseHandler[Any, Any, Any]]:
        """The handlers to add, in order: the agents' commands (unknown ones answered with the help), the group's."""
        private: dict[str, Handler] = {
            "close": self.on_close,
            "return": self.on_return,
            "transfer": self.on_transfer,
            "note": self.on_note,
            "promise": self.on_promise,
            "promises": self.on_promises,
            "kept": self.on_kept,
            "queue": self.on_queue,
            "r": self.on_saved_reply,
            "media": self.on_media,
            "reopen": self.on_reopen,
            "help": self.on_help,
            "start": self.on_help,
        }
        found: list[BaseHandler[Any, Any, Any]] = [
            CommandHandler(name, self._as_agent(callback), filters=agent_chats) for name, callback in private.items()
        ]
        found.append(MessageHandler(agent_chats & filters.COMMAND, self._as_agent(self.on_unknown)))
        if self._desk.enabled:
            group = filters.Chat(self._desk.group) & filters.UpdateType.MESSAGE
            found += [
                CommandHandler("queue", self.on_group_queue, filters=group),
                CommandHandler("reopen", self.on_reopen, filters=group),
                CommandHandler("agents", self._as_admin(self.on_agents), filters=group),
                CommandHandler("release", self._as_admin(self.on_release), filters=group),
            ]
        return found

    def _as_agent(self, callback: Handler) -> Handler:
        async def checked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if await self._desk.still_an_agent(update):
                await callback(update, context)

        return checked

    def _as_admin(self, callback: Handler) -> Handler:
        async def checked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            if user is None or not await self._desk.is_admin(user.id):  # no sender (an anonymous admin): not known
                await self._desk.answer_in_place(update.effective_message, ADMINS_ONLY)
                return
            await callback(update, context)

        return checked

    # --- in an agent's private chat ------------------------------------------------------------------------

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help (and /start again): what an agent can do."""
        await self._desk.direct(update.effective_chat.id, AGENT_WELCOME)

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Any other command: say so, with the help."""
        command = (update.effective_message.text or "").partition(" ")[0].split("@")[0].lower()
        await self._desk.direct(update.effective_chat.id, f"Unknown command {command}.\n\n{AGENT_WELCOME}")

    async def on_queue(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/queue: who is waiting, and for how long."""
        await self._desk.direct(update.effective_chat.id, await self._desk.sessions.read(queue_text))

    async def on_saved_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/r lists the saved replies, /r <name> sends one, /r <words> offers the best three (see desk/saved.py)."""
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        agent = await self._desk.agent(update)
        replied = message.reply_to_message.message_id if message.reply_to_message else None
        problem = await self._desk.step(
            saved.command, agent.id, chat.id, _rest(message), replied, update_id=update.update_id
        )
        if problem:
            await self._desk.direct(chat.id, problem)

    async def on_close(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/close <note>: the conversation ends; the customer gets a rating request and a check the next day."""
        await self._finish(update, context, HandoffStatus.CLOSED)

    async def on_return(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/return: the customer is handed back to the bot; the ticket stays open."""
        await self._finish(update, context, HandoffStatus.RETURNED)

    async def _finish(self, update: Update, context: ContextTypes.DEFAULT_TYPE, status: HandoffStatus) -> None:
        if (found := await self._handoff(update)) is not None:
            handoff, agent = found
            problem = await self._desk.finish(
                handoff.id, agent.id, status, note=_rest(update.effective_message) or None
            )
            if problem:
                await self._desk.direct(update.effective_chat.id, problem)

    async def on_transfer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/transfer: buttons for each other agent, and the queue."""
        if (found := await self._handoff(update)) is not None:
            handoff, agent = found
            await self._desk.step(
                lifecycle.offer_transfer, handoff.id, agent.id, update.effective_chat.id, update_id=update.update_id
            )

    async def on_note(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/note <text>: an internal note on the ticket, never shown to the customer."""
        if (found := await self._handoff(update)) is None:
            return
        text = _rest(update.effective_message)
        if text:
            reference = await self._desk.step(_note, found[0].id, found[1].id, text, update_id=update.update_id)
        else:
            reference = None
        await self._desk.direct(
            update.effective_chat.id, NOTE_SAVED.format(ticket=reference) if reference else "Usage: /note <text>"
        )

    async def on_promise(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/promise <when> <what>: recorded, the customer told, the agent reminded when it falls due."""
        if (found := await self._handoff(update)) is None:
            return
        zone = self._desk.settings.business_hours.zone
        parsed = hours_module.parse_when(_rest(update.effective_message), utcnow(), zone)
        if parsed is None or not parsed[1] or parsed[0] <= utcnow():
            await self._desk.direct(update.effective_chat.id, PROMISE_USAGE)
            return
        await self._desk.step(
            _promise, found[0].id, found[1].id, *parsed, update.effective_chat.id, update_id=update.update_id
        )

    async def on_promises(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/promises: the agent's open promises."""
        agent = await self._desk.agent(update)
        await self._desk.direct(update.effective_chat.id, await self._desk.sessions.read(_promises_text, agent.id))

    async def on_kept(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/kept <number>: a promise is done, and the customer is told."""
        agent = await self._desk.agent(update)
        reply = await self._desk.step(_kept, agent.id, _rest(update.effective_message), update_id=update.update_id)
        await self._desk.direct(update.effective_chat.id, reply)

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/media T000012: the attachments of a ticket that were not copied into its topic, here."""
        agent = await self._desk.agent(update)
        problem = await self._desk.step(
            _media, _rest(update.effective_message), agent.private_chat_id or update.effective_chat.id
        )
        if problem:
            await self._desk.direct(update.effective_chat.id, problem)

    async def on_reopen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/reopen T000012 (in private, or in the agents' group): a closed ticket and its topic open again."""
        user = update.effective_user
        if user is None or user.is_bot:
            return
        told = await self._desk.step(
            lifecycle.reopen_ticket, _rest(update.effective_message), user.first_name, update_id=update.update_id
        )
        await self._desk.answer_in_place(update.effective_message, told)

    async def _handoff(self, update: Update) -> tuple[Handoff, Agent] | None:
        """The conversation a command is about (see desk.target), or None once the agent has been told why not."""
        agent = await self._desk.agent(update)
        handoff, problem = await self._desk.sessions.read(
            lambda session: target(Unit(session, self._desk.settings), agent, update.effective_message)
        )
        if handoff is None:
            await self._desk.direct(update.effective_chat.id, problem)
            return None
        return handoff, agent

    # --- in the agents' group ------------------------------------------------------------------------------

    async def on_group_queue(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/queue in the agents' group: who is waiting, answered where it was asked."""
        await self._desk.answer_in_place(update.effective_message, await self._desk.sessions.read(queue_text))

    async def on_agents(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/agents: who holds which conversations."""
        await self._desk.answer_in_place(update.effective_message, await self._desk.sessions.read(_agents_text))

    async def on_release(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/release T000001: a claimed conversation back to the queue (its agent went off shift, say)."""
        problem = await self._desk.step(
            lifecycle.release, _rest(update.effective_message), update.effective_user.first_name
        )
        if problem:
            await self._desk.answer_in_place(update.effective_message, problem)


def _rest(message: Message) -> str:
    """What follows the command."""
    return (message.text or "").partition(" ")[2].strip()


def queue_text(session: Any) -> str:
    """Who is waiting for a person, in the queue's order (priority, then wait), with each one's priority and wait."""
    now = utcnow()
    lines = [
        QUEUE_LINE.format(
            number=number,
            ticket=h.ticket.reference,
            priority=h.ticket.priority.value.lower(),
            name=cards.customer_name(h.conversation.customer),
            minutes=int((now - h.queued_at).total_seconds() // 60),
            reason=cards.REASONS.get(h.reason, h.reason),
        )
        for number, h in enumerate(handoffs.queued(session), 1)
    ]
    return "\n".join(lines) if lines else QUEUE_EMPTY


def _agents_text(session: Any) -> str:
    lines = []
    for agent in handoffs.agents_with_chats(session):
        refs = [h.ticket.reference for h in handoffs.claimed_by(session, agent.id)]
        lines.append(f"{agent.first_name}: {len(refs)} conversation(s)" + (f" ({', '.join(refs)})" if refs else ""))
    return "\n".join(lines) or "No agent has a private chat with me yet."


def _note(u: Unit, handoff_id: int, agent_id: int, text: str) -> str:
    """An internal note: kept with the transcript and posted to the ticket's topic, never sent to the customer."""
    handoff, agent = handoffs.load(u.session, handoff_id), u.session.get(Agent, agent_id)
    if not u.answered():
        transcript.record_event(
            u.session,
            conversation=handoff.conversation,
            kind="note",
            update_id=u.update_id,
            payload={"agent_id": agent.id, "agent_name": agent.first_name, "text": text},
        )
        u.to_topic(handoff.conversation, handoff.ticket, f"📝 {agent.first_name}: {cards.clip(text, 3000)}")
    return handoff.ticket.reference


def _promise(u: Unit, handoff_id: int, agent_id: int, due: Any, what: str, chat_id: int) -> None:
    handoff, agent = handoffs.load(u.session, handoff_id), u.session.get(Agent, agent_id)
    conversation, ticket = handoff.conversation, handoff.ticket
    u.chats.add(chat_id)
    if u.answered():
        return
    zone = u.settings.business_hours.zone
    due_text = f"{due.astimezone(zone):%a %d %b %H:%M} ({zone.key} time)"
    made = handoffs.promise(
        u.session, ticket=ticket, conversation=conversation, agent=agent, what=what[:1000], due_at=due
    )
    u.tell(conversation, replies.PROMISED.format(agent=agent.first_name, what=what, due=due_text))
    u.to_topic(conversation, ticket, PROMISE_NOTICE.format(agent=agent.first_name, what=cards.clip(what), due=due_text))
    u.queue(
        conversation, chat_id, PROMISE_SAVED.format(number=made.id, ticket=ticket.reference, what=what, due=due_text)
    )


def _media(u: Unit, reference: str, chat_id: int) -> str | None:
    number = record_number(reference.upper().removeprefix("T"))
    ticket = u.session.get(Ticket, number) if number else None
    if ticket is None or ticket.conversation is None:
        return MEDIA_USAGE
    conversation = ticket.conversation
    handoff = handoffs.for_ticket(u.session, ticket.id)
    since = handoffs.previous_end(u.session, conversation.id, handoff.id if handoff else None)
    rest = briefing.attachments(transcript.messages(u.session, conversation.chat_id), since)[
        briefing.COPIED_PER_TICKET :
    ]
    if not rest:
        return f"Every attachment of {ticket.reference} is in its topic already."
    lifecycle.copy_attachments(u, conversation, chat_id, rest)
    return None


def _promises_text(session: Any, agent_id: int) -> str:
    lines = [
        f"#{p.id} {p.ticket.reference}: {p.what} (due {p.due_at:%d %b %H:%M} UTC)"
        for p in handoffs.open_promises(session, agent_id)
    ]
    return "\n".join(lines) or NO_PROMISES


def _kept(u: Unit, agent_id: int, number: str) -> str:
    found = record_number(number.lstrip("#"))
    promise = u.session.get(Promise, found) if found else None
    if promise is None or promise.agent_id != agent_id or promise.kept_at is not None:
        return "Usage: /kept <number> of one of your open promises (/promises lists them)."
    promise.kept_at = utcnow()
    agent, conversation, ticket = promise.agent, promise.conversation, promise.ticket
    u.tell(
        conversation, replies.PROMISE_KEPT.format(agent=agent.first_name, what=promise.what, ticket=ticket.reference)
    )
    u.to_topic(
        conversation,
        ticket,
        PROMISE_KEPT_NOTICE.format(agent=agent.first_name, number=promise.id, what=cards.clip(promise.what)),
    )
    return f"Promise #{promise.id} is kept; {u.name(conversation)} has been told."
