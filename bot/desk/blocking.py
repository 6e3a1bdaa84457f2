"""Blocking an abusive customer: `/block <reason>` in a ticket's topic or in the agent's private chat; `/unblock`
in the topic, or `/unblock T000012` in the private chat or the group (the console lifts a block too,
bot/admin/blocks.py).

A blocked customer's messages are still stored, but reach neither the agents nor Rasa (bot/chat/handlers.py);
they are told once, when the block is made. Their open tickets and handoff close with the reason, and the topics
say so. Every block and unblock is in the audit log (bot/storage/blocks.py writes it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telegram import Message, Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, filters

from bot import replies
from bot.desk import cards
from bot.desk.desk import Desk, target
from bot.desk.texts import (
    ALREADY_BLOCKED,
    BLOCK_USAGE,
    BLOCKED_AGENT,
    BLOCKED_NOTICE,
    NO_CUSTOMER,
    NOT_BLOCKED,
    UNBLOCK_USAGE,
    UNBLOCKED,
    UNBLOCKED_NOTICE,
)
from bot.desk.unit import DONE, Unit, record_number
from bot.storage import blocks, handoffs, tickets
from bot.storage.models import Agent, HandoffStatus, Ticket, TicketStatus

GONE = "This topic's customer is no longer on record."
# What to tell the agent when it could not be done, and the Rasa conversation to start afresh once committed.
Outcome = tuple[str | None, str | None]


class BlockCommands:
    """/block and /unblock, in an agent's private chat and in the agents' group."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    def handlers(self, agent_chats: filters.BaseFilter) -> list[BaseHandler[Any, Any, Any]]:
        """The handlers to add before the other agents' commands (which answer unknown ones with the help)."""
        found: list[BaseHandler[Any, Any, Any]] = [
            CommandHandler("block", self.on_block, filters=agent_chats),
            CommandHandler("unblock", self.on_private_unblock, filters=agent_chats),
        ]
        if self._desk.enabled:
            group = filters.Chat(self._desk.group) & filters.UpdateType.MESSAGE
            found += [
                CommandHandler("block", self.on_group_block, filters=group),
                CommandHandler("unblock", self.on_group_unblock, filters=group),
            ]
        return found

    async def on_block(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/block <reason> in the private chat: the customer the agent is helping (see desk.target)."""
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not await self._desk.still_an_agent(update):
            return
        reason = _rest(message)
        if not reason:
            await self._desk.direct(chat.id, BLOCK_USAGE)
            return
        agent = await self._desk.agent(update)
        problem = await self._blocked(block_helped, agent.id, message, reason, update_id=update.update_id)
        if problem:
            await self._desk.direct(chat.id, problem)

    async def on_private_unblock(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unblock T000012 in the private chat: that ticket's customer may write again."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or not await self._desk.still_an_agent(update):
            return
        told, _ = await self._desk.step(
            unblock, None, _rest(message), user.first_name, user.id, update_id=update.update_id
        )
        await self._desk.direct(message.chat_id, told)

    async def on_group_block(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/block <reason> in a ticket's topic: that ticket's customer."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        reason = _rest(message)
        if not message.is_topic_message or not reason:
            await self._desk.answer_in_place(message, BLOCK_USAGE)
            return
        problem = await self._blocked(
            block_in_topic, message.message_thread_id, reason, user.first_name, user.id, update_id=update.update_id
        )
        if problem:
            await self._desk.answer_in_place(message, problem)

    async def on_group_unblock(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unblock in a ticket's topic: that ticket's customer may write again."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        topic = message.message_thread_id if message.is_topic_message else None
        told, done = await self._desk.step(
            unblock, topic, _rest(message), user.first_name, user.id, update_id=update.update_id
        )
        if not (done and topic):  # done in the customer's topic: the notice there says so
            await self._desk.answer_in_place(message, told)

    async def _blocked(self, work: Callable[..., Outcome], *args: Any, update_id: int) -> str | None:
        """Run a block step; the bot's conversation starts afresh when a handoff closed (as after /close)."""
        chats, (problem, restart) = await self._desk.commit(work, *args, update_id=update_id)
        if restart is not None:
            await self._desk.rasa.restart(restart)
        await self._desk.flush(chats)
        return problem


def _rest(message: Message) -> str:
    """What follows the command."""
    return (message.text or "").partition(" ")[2].strip()


def block_helped(u: Unit, agent_id: int, message: Message, reason: str) -> Outcome:
    """/block in an agent's private chat: the customer the agent is helping (with several, the one replied to)."""
    agent = u.session.get(Agent, agent_id)
    if agent is None:
        return NO_CUSTOMER, None
    handoff, problem = target(u, agent, message)
    if handoff is None:
        return problem, None
    return block(u, handoff.ticket, reason, agent.first_name, agent.telegram_user_id)


def block_in_topic(u: Unit, topic_id: int | None, reason: str, by: str, by_user_id: int) -> Outcome:
    """/block in a ticket's topic: that ticket's customer."""
    ticket = handoffs.ticket_in_topic(u.session, topic_id)
    if ticket is None or ticket.conversation is None:
        return GONE, None
    return block(u, ticket, reason, by, by_user_id)


def block(u: Unit, ticket: Ticket, reason: str, by: str, by_user_id: int) -> Outcome:
    """Block the customer of `ticket`: their handoff and open tickets close with the reason (the topics, this one's
    too, say so), no next-day check follows, and they are told once. What to tell the agent when it could not be
    done, and the Rasa conversation to start afresh once this has committed (when a handoff closed)."""
    conversation = ticket.conversation
    if conversation is None:
        return GONE, None
    customer, name = conversation.customer, u.name(conversation)
    made = blocks.block(
        u.session, telegram_user_id=customer.telegram_user_id, reason=reason, by=by, by_user_id=by_user_id
    )
    if made is None:
        return ALREADY_BLOCKED.format(name=name, ticket=ticket.reference), None
    restart, holder = None, None
    handoff = handoffs.active_for(u.session, conversation.id)
    if handoff is not None:
        holder = handoff.agent
        handoffs.finish(u.session, handoff, HandoffStatus.CLOSED, resolution=blocks.RESOLUTION + made.reason)
        restart = conversation.sender_id
    blocks.drop_followups(u.session, conversation.id)
    closing = [t for t in tickets.for_customer(u.session, customer.id) if t.status not in DONE]
    why = cards.clip(made.reason)
    for shown in {t.id: t for t in [ticket, *closing]}.values():
        u.to_topic(conversation, shown, BLOCKED_NOTICE.format(agent=by, name=name, reason=why, ticket=shown.reference))
    for closed in closing:
        u.set_status(conversation, closed, TicketStatus.CLOSED)
    u.tell(conversation, replies.BLOCKED)
    refs = ", ".join(t.reference for t in closing) or "no ticket was open"
    u.to_agent(holder, conversation, BLOCKED_AGENT.format(name=name, reason=why, closed=refs, ticket=ticket.reference))
    return None, restart


def unblock(u: Unit, topic_id: int | None, reference: str, by: str, by_user_id: int) -> tuple[str, bool]:
    """/unblock in a ticket's topic, or /unblock T000012 anywhere: what the customer sends reaches the bot again.
    What to tell the agent, and whether it was done."""
    number = record_number(reference.upper().removeprefix("T")) if reference else None
    ticket = u.session.get(Ticket, number) if number else handoffs.ticket_in_topic(u.session, topic_id)
    if ticket is None:
        return UNBLOCK_USAGE, False
    if ticket.conversation is None:
        return GONE, False
    conversation = ticket.conversation
    name = u.name(conversation)
    if blocks.unblock(u.session, conversation.customer.telegram_user_id, by=by, by_user_id=by_user_id) is None:
        return NOT_BLOCKED.format(name=name), False
    u.to_topic(conversation, ticket, UNBLOCKED_NOTICE.format(agent=by, name=name))
    return UNBLOCKED.format(name=name, ticket=ticket.reference), True
