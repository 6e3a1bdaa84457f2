"""The agent desk: escalations become tickets in the agents' forum group; claimed conversations run in private.

Everything the desk sends goes through the outbox (recorded first, delivered in order, retried), so a crash or a
Telegram outage loses nothing. The agents' group only carries low-volume events: a ticket's card, claimed,
closed, ratings. The live conversation of a claimed ticket runs in the claiming agent's private chat with the
bot; a reply there goes to the customer whose message it answers (or to the only customer the agent is helping).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes, filters

from bot import replies
from bot.config import Settings
from bot.desk import cards
from bot import hours as hours_module
from bot.rasa import RasaClient
from bot.storage import buttons, handoffs, memory, tickets, transcript
from bot.storage.db import Sessions
from bot.storage.models import (
    Agent,
    Conversation,
    ConversationState,
    Customer,
    Handoff,
    HandoffStatus,
    Promise,
    Ticket,
    TicketPriority,
    TicketStatus,
    utcnow,
)
from bot.telegram.formatting import split_text
from bot.telegram.locks import LocalLocks, Locks
from bot.telegram.outbox import Outbox

log = logging.getLogger(__name__)
PREFIX = "desk:"
CSAT_PREFIX = "app:csat:"
FOLLOWUP_PREFIX = "app:followup:"
ROUND_SECONDS = 2.0
MEMBER_STATUSES = ("creator", "administrator", "member")

AGENT_WELCOME = (
    "You're set up as an agent. When you claim a ticket in the agents' group, the customer's messages arrive here "
    "and what you write here goes to them.\n"
    "With several customers at once, reply to one of their messages so I know who it's for.\n\n"
    "/close <note> closes the conversation (the customer gets a rating request and a check the next day)\n"
    "/return hands the customer back to the bot\n"
    "/transfer passes the customer to another agent, or back to the queue\n"
    "/note <text> adds an internal note (never shown to the customer)\n"
    "/promise <when> <what> records a promise, e.g. /promise tomorrow 10:00 call you back about the refund\n"
    "/promises lists your open promises; /kept <number> tells the customer one is done\n"
    "/flag <what was wrong> reports the bot's last answer to your customer as wrong (/flag T000012 … for another ticket)\n"
    "/queue shows who is waiting"
)
NOT_AN_AGENT = "Sorry, this is only for members of the agents' group."
START_PRIVATE_FIRST = "Open a private chat with me and press Start first, then tap Claim again."
ALREADY_CLAIMED = "Already claimed by {agent}."
NO_CUSTOMER = "You're not talking with any customer right now. Claim a ticket in the agents' group first."
WHICH_CUSTOMER = "You're helping {count} customers. Reply to one of their messages (swipe left on it) so I know who this is for."
NOT_YOURS = "That customer's conversation isn't yours any more (it was closed or handed on), so nothing was sent."
CLAIMED_INTRO = "You're now talking with {name} about {ticket}. Write here to reply; they see your first name.\n\n{recent}"
CLAIMED_NOTICE = "✋ Claimed by {agent}."
CLOSED_NOTICE = "✅ Closed by {agent}{note}."
RETURNED_NOTICE = "↩️ {agent} handed {name} back to the bot."
CANCELLED_NOTICE = "🚪 {name} left the queue and is back with the bot. The ticket stays open."
HANDOFF_NOTICE = "🙋 {name} needs a person: {reason}."
CSAT_NOTICE = "⭐ Rated {score}/5."
COMMENT_NOTICE = "💬 Comment: {comment}"
NOTE_SAVED = "📝 Note saved on {ticket} (never shown to the customer)."
CLOSED_AGENT = "Closed {ticket}. The customer gets a rating request now and a check tomorrow."
RETURNED_AGENT = "{name} is back with the bot; {ticket} stays open."
QUEUE_EMPTY = "Nobody is waiting."
RELAY_HEADER = "💬 {name} · {ticket}"
STILL_WAITING = "⏰ {name} has been waiting {minutes} min."
REOPENED_AGENT = "↪️ {name} wrote again soon after you closed {ticket}, so the conversation is open with you again."
REOPENED_NOTICE = "↪️ Reopened: {name} wrote again after the close."
TRANSFER_CHOOSE = "Pass {name} ({ticket}) to whom?"
TRANSFER_NOBODY = "No other agent has a private chat with me yet, so you can only put {name} back in the queue."
TRANSFERRED_NOTICE = "🔀 {old} passed the conversation to {new}."
REQUEUED_NOTICE = "🔀 {old} put {name} back in the queue."
TRANSFERRED_AGENT = "{name} ({ticket}) is now with {new}."
PROMISE_USAGE = "Usage: /promise <when> <what>, e.g. /promise in 2h call you back, or /promise 2026-12-01 16:00 refund the fee."
PROMISE_SAVED = "🤝 Promise #{number} on {ticket}: {what}, due {due}. I'll remind you then."
PROMISE_NOTICE = "🤝 {agent} promised: {what}, due {due}."
PROMISE_DUE = "⏰ Promise #{number} on {ticket} is due: {what}. When it's done, /kept {number}."
PROMISE_KEPT_NOTICE = "✅ {agent} kept promise #{number}: {what}."
NO_PROMISES = "You have no open promises."
AGENT_EDIT = "Edits don't reach the customer: send the correction as a new message."
MEMBERSHIP_RECHECK = timedelta(minutes=5)
COMMENT_WINDOW = timedelta(minutes=30)  # a text this soon after a rating is a comment on it
ADMINS_ONLY = "Only the agents' group admins can do that."
RELEASED_NOTICE = "🔓 {admin} released {ticket} from {agent}: it is back in the queue."
SUMMARY = "📊 {waiting} waiting (longest {longest} min) · {handled} with an agent · today: {closed} closed, rating {rating}"
REANNOUNCE_PER_MINUTE = 3  # the group gets about 20 bot messages a minute; reminders take only a few


@dataclass
class Deliveries:
    """The chats a step queued messages for, flushed once its transaction has committed."""

    chats: set[int] = field(default_factory=set)


class Desk:
    """The agents' side of the bot, and the customer's side of a handoff."""

    def __init__(
        self, settings: Settings, sessions: Sessions, outbox: Outbox, bot: Bot, rasa: RasaClient
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._outbox = outbox
        self._bot = bot
        self._rasa = rasa
        self.group = settings.agent_chat_id
        self.shared: Locks = LocalLocks()  # the app sets the cross-worker locks when it runs several workers
        # The private chats of registered agents; the app routes them to the desk, not to Rasa.
        self.agent_chats = filters.Chat(chat_id=[], allow_empty=False)
        self._announced: collections.deque[datetime] = collections.deque()  # re-announcements in the last minute
        self._membership_checked: dict[int, datetime] = {}
        self._summarised_at = utcnow()

    @property
    def enabled(self) -> bool:
        """Whether an agents' group is configured."""
        return self.group is not None

    async def load_agents(self) -> None:
        """Route the private chats of known agents to the desk."""
        async with self._sessions() as session:
            self.agent_chats.add_chat_ids(await handoffs.agent_chats(session))

    # --- the customer's side -------------------------------------------------------------------------------

    async def escalate(
        self, session: AsyncSession, conversation: Conversation, *, update_id: int | None, reason: str,
        context: dict[str, Any],
    ) -> None:
        """Queue the customer for a person (once), opening a ticket when the request has none, and tell them so."""
        conversation = await session.get(Conversation, conversation.id)
        active = await handoffs.active_for(session, conversation.id)
        if active is not None:
            await self._say_where_they_stand(session, conversation, active, update_id)
            return
        ticket = await self._ticket_for(session, conversation, update_id=update_id, reason=reason, context=context)
        if not self.enabled:
            await self._tell(session, conversation, replies.HANDOFF_NO_DESK.format(ticket=ticket.reference), update_id)
            return
        handoff, _ = await handoffs.open_handoff(session, conversation=conversation, ticket=ticket, reason=reason, context=context)
        hours, now = self._settings.business_hours, utcnow()
        if hours.is_open(now):
            text = await self._place_text(session, handoff, replies.HANDOFF_QUEUED)
        else:
            # No wait estimate out of hours: say when the team is back, and keep the customer first in line for them.
            text = replies.HANDOFF_AFTER_HOURS.format(back=hours.describe_next(now), ticket=ticket.reference)
        bot_down = reason == "bot_unavailable"
        await self._tell(session, conversation, (replies.HANDOFF_BOT_DOWN if bot_down else "") + text, update_id)
        if ticket.topic_id is not None:
            # The ticket is already in the group (a complaint first, a person asked for later): say so in its topic.
            customer = await session.get(Customer, conversation.customer_id)
            await self._to_topic(session, conversation, ticket, HANDOFF_NOTICE.format(
                name=cards.customer_name(customer), reason=cards.REASONS.get(reason, reason)), claim_button=handoff)

    async def _place_text(self, session: AsyncSession, handoff: Handoff, template: str) -> str:
        """The customer's place in line and the usual wait, remembered so a big change can be told."""
        position = await handoffs.place_in_line(session, handoff)
        wait = await handoffs.typical_wait(session)
        handoff.told_wait_seconds = int(wait.total_seconds()) if wait else None
        words = cards.wait_text(wait)
        return template.format(position=position, wait=replies.HANDOFF_WAIT.format(wait=words) if words else "")

    def may_reopen(self, last: Handoff | None) -> bool:
        """Whether a message from the customer now reopens `last`, their conversation's latest handoff: it was
        closed within REOPEN_MINUTES and not rated."""
        window = timedelta(minutes=self._settings.reopen_minutes)
        return (self.enabled and last is not None and last.status is HandoffStatus.CLOSED and last.csat is None
                and utcnow() - handoffs.aware(last.closed_at) <= window)

    async def reopen_if_recent(self, update: Update, conversation: Conversation) -> bool:
        """A customer writing again soon after a close (without rating it) gets the same ticket and agent back."""
        if not self.enabled:
            return False
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            last = await session.run_sync(handoffs.latest, conversation.id)
            if not self.may_reopen(last):
                return False
            if await session.run_sync(transcript.replies_to, update.update_id):
                return False
            conversation = await session.get(Conversation, conversation.id)
            ticket = await session.get(Ticket, last.ticket_id)
            customer = await session.get(Customer, conversation.customer_id)
            agent = await session.get(Agent, last.agent_id) if last.agent_id else None
            handoff, _ = await handoffs.open_handoff(session, conversation=conversation, ticket=ticket, reason="reopened", context={})
            ticket.status = TicketStatus.IN_PROGRESS
            name = cards.customer_name(customer)
            if agent is not None and agent.private_chat_id and await handoffs.claim(session, handoff.id, agent):
                await self._tell(session, conversation, replies.REOPENED.format(agent=agent.first_name), None)
                await _queue(session, conversation, agent.private_chat_id,
                             REOPENED_AGENT.format(name=name, ticket=ticket.reference), None, None)
                deliveries.chats.add(agent.private_chat_id)
            else:
                await self._tell(session, conversation, await self._place_text(session, handoff, replies.HANDOFF_QUEUED), None)
            await self._to_topic(session, conversation, ticket, REOPENED_NOTICE.format(name=name),
                                 claim_button=None if handoff.agent_id else handoff)
            await self._relay(session, update, conversation, await session.get(Handoff, handoff.id), deliveries)
            deliveries.chats |= {conversation.chat_id, self.group}
        await self._flush(deliveries)
        return True

    async def relay_from_customer(self, update: Update, conversation: Conversation) -> bool:
        """A customer's message while a person is (about to be) in charge: to the agent, or to the ticket's topic.

        False when the handoff ended meanwhile (an agent closed it as the customer wrote): the bot answers instead.
        """
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            if await session.run_sync(transcript.replies_to, update.update_id):
                pass  # relayed before a restart: only the delivery may be left to do
            elif (handoff := await handoffs.active_for(session, conversation.id)) is not None:
                await self._relay(session, update, conversation, handoff, deliveries)
            else:
                conversation = await session.get(Conversation, conversation.id)
                conversation.state = ConversationState.BOT
                return False
        await self._flush(deliveries, extra=(conversation.chat_id,))
        return True

    async def _relay(
        self, session: AsyncSession, update: Update, conversation: Conversation, handoff: Handoff, deliveries: Deliveries
    ) -> None:
        ticket = await session.get(Ticket, handoff.ticket_id)
        customer = await session.get(Customer, conversation.customer_id)
        header = RELAY_HEADER.format(name=cards.customer_name(customer), ticket=ticket.reference)
        agent = await session.get(Agent, handoff.agent_id) if handoff.agent_id else None
        target, thread = (agent.private_chat_id, None) if agent is not None and agent.private_chat_id else (self.group, ticket.topic_id)
        message = update.effective_message
        if message.text:
            # All of a long message reaches the agents, in as many Telegram messages as it takes.
            for part in split_text(f"{header}\n{message.text}"):
                await _queue(session, conversation, target, part, update.update_id, {"thread_id": thread} if thread else {},
                             kind="relay")
        else:
            payload: dict[str, Any] = {"copy": {"from_chat_id": conversation.chat_id, "message_id": message.message_id}}
            if thread:
                payload["thread_id"] = thread
            text = f"{header}\n{message.caption or ''}".strip()[:1024]
            await _queue(session, conversation, target, text, update.update_id, payload, kind="relay")
        deliveries.chats.add(target)

    async def cancel(self, update: Update, conversation: Conversation) -> None:
        """/cancel: leave the queue (not a conversation an agent already took) and go back to the bot."""
        deliveries = Deliveries()
        restart = False
        async with self._sessions.begin() as session:
            if await session.run_sync(transcript.replies_to, update.update_id):
                pass
            elif (handoff := await handoffs.active_for(session, conversation.id)) is None:
                await self._tell(session, conversation, replies.NOTHING_TO_CANCEL, update.update_id)
            elif handoff.status is HandoffStatus.CLAIMED:
                agent = await session.get(Agent, handoff.agent_id)
                await self._tell(session, conversation, replies.HANDOFF_WITH_AGENT.format(agent=agent.first_name), update.update_id)
            else:
                await handoffs.finish(session, handoff, HandoffStatus.CANCELLED)
                ticket = await session.get(Ticket, handoff.ticket_id)
                customer = await session.get(Customer, conversation.customer_id)
                await self._tell(session, conversation, replies.CANCELLED.format(ticket=ticket.reference), update.update_id)
                await self._to_topic(session, conversation, ticket, CANCELLED_NOTICE.format(name=cards.customer_name(customer)))
                deliveries.chats.add(self.group)
                restart = True
        if restart:
            await self._rasa.restart(conversation.sender_id)
        await self._flush(deliveries, extra=(conversation.chat_id,))

    async def take_comment(self, update: Update, conversation: Conversation) -> bool:
        """The text soon after a rating is the customer's comment on it; then the bot answers again.

        False when it is not a comment (too late, or already given): the bot answers the message itself.
        """
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, conversation.id)
            rated = await handoffs.latest_rated(session, conversation.id)
            conversation.state = ConversationState.BOT
            fresh = rated is not None and rated.csat_comment is None and utcnow() - handoffs.aware(rated.updated_at) < COMMENT_WINDOW
            if not fresh:
                return False
            if not await session.run_sync(transcript.replies_to, update.update_id):
                rated.csat_comment = (update.effective_message.text or "")[:4000]
                await self._tell(session, conversation, replies.CSAT_COMMENT_THANKS, update.update_id)
                ticket = await session.get(Ticket, rated.ticket_id)
                await self._to_topic(session, conversation, ticket, COMMENT_NOTICE.format(comment=cards.clip(rated.csat_comment)))
                deliveries.chats.add(self.group)
        await self._flush(deliveries, extra=(conversation.chat_id,))
        return True

    async def on_customer_button(self, update: Update, conversation: Conversation, payload: str) -> bool:
        """The rating and follow-up buttons; False when the payload is not the desk's."""
        if payload.startswith(CSAT_PREFIX):
            handoff_id, _, score = payload.removeprefix(CSAT_PREFIX).partition(":")
            await self._rate(update, conversation, int(handoff_id), int(score))
            return True
        if payload.startswith(FOLLOWUP_PREFIX):
            handoff_id, _, answer = payload.removeprefix(FOLLOWUP_PREFIX).partition(":")
            await self._followup_answer(update, conversation, int(handoff_id), answer)
            return True
        return False

    async def _rate(self, update: Update, conversation: Conversation, handoff_id: int, score: int) -> None:
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            handoff = await session.get(Handoff, handoff_id)
            if handoff is None or handoff.conversation_id != conversation.id or not 1 <= score <= 5:
                return
            if handoff.csat is None:
                handoff.csat = score
                conversation = await session.get(Conversation, conversation.id)
                if conversation.state is ConversationState.BOT:
                    conversation.state = ConversationState.CLOSED  # the next text is the comment
                await self._tell(session, conversation, replies.CSAT_THANKS.format(score=score), update.update_id)
                ticket = await session.get(Ticket, handoff.ticket_id)
                await self._to_topic(session, conversation, ticket, CSAT_NOTICE.format(score=score))
                deliveries.chats.add(self.group)
        await self._flush(deliveries, extra=(conversation.chat_id,))

    async def _followup_answer(self, update: Update, conversation: Conversation, handoff_id: int, answer: str) -> None:
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            handoff = await session.get(Handoff, handoff_id)
            if handoff is None or handoff.conversation_id != conversation.id:
                return
            conversation = await session.get(Conversation, conversation.id)
            if await session.run_sync(transcript.replies_to, update.update_id):
                pass
            elif answer == "ok":
                await self._tell(session, conversation, replies.FOLLOWUP_GLAD, update.update_id)
            else:
                ticket = await session.get(Ticket, handoff.ticket_id)
                ticket.status = TicketStatus.OPEN
                await self.escalate(session, conversation, update_id=update.update_id, reason="followup",
                                    context={"ticket_id": ticket.reference})
                deliveries.chats.add(self.group)
        await self._flush(deliveries, extra=(conversation.chat_id,))

    async def delete_topics(self, topics: list[int]) -> None:
        """A forgotten customer's ticket topics go, with the cards and messages that quote them."""
        for topic in topics if self.enabled else []:
            try:
                await self._bot.delete_forum_topic(self.group, topic)
            except TelegramError as exc:
                log.warning("could not delete topic %s of a forgotten customer: %s", topic, exc)

    # --- the agents' side ----------------------------------------------------------------------------------

    async def is_agent(self, user_id: int) -> bool:
        """Whether this Telegram user is a member of the agents' group (asked of Telegram, which knows)."""
        if not self.enabled:
            return False
        try:
            member = await self._bot.get_chat_member(self.group, user_id)
        except TelegramError as exc:
            log.warning("could not check whether user %s is an agent: %s", user_id, exc)
            return False
        return member.status in MEMBER_STATUSES

    async def register_agent(self, update: Update) -> None:
        """/start from a member of the agents' group: their private chat becomes their desk."""
        user = update.effective_user
        async with self._sessions.begin() as session:
            agent = await handoffs.agent(session, telegram_user_id=user.id, first_name=user.first_name, username=user.username)
            agent.private_chat_id = update.effective_chat.id
        self.agent_chats.add_chat_ids(update.effective_chat.id)
        await self._direct(update.effective_chat.id, AGENT_WELCOME)

    async def still_an_agent(self, update: Update) -> bool:
        """Re-checked every few minutes: someone who left the agents' group stops being an agent (and is told)."""
        user_id, now = update.effective_user.id, utcnow()
        checked = self._membership_checked.get(user_id)
        if checked is not None and now - checked < MEMBERSHIP_RECHECK:
            return True
        if await self.is_agent(user_id):
            self._membership_checked[user_id] = now
            return True
        self._membership_checked.pop(user_id, None)
        self.agent_chats.remove_chat_ids(update.effective_chat.id)
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            agent = await self._agent(session, update)
            agent.private_chat_id = None
            for handoff in await handoffs.claimed_by(session, agent.id):
                # Their customers go back in the queue, for the others to claim.
                conversation = await session.get(Conversation, handoff.conversation_id)
                ticket = await session.get(Ticket, handoff.ticket_id)
                await handoffs.requeue(session, handoff)
                await self._tell(session, conversation, replies.BACK_IN_QUEUE, None)
                await self._to_topic(session, conversation, ticket, RELEASED_NOTICE.format(
                    admin="The desk", ticket=ticket.reference, agent=agent.first_name), claim_button=handoff)
                deliveries.chats |= {conversation.chat_id, self.group}
        await self._flush(deliveries)
        log.warning("user %s is no longer in the agents' group: their private chat is a customer chat again", user_id)
        await self._direct(update.effective_chat.id, NOT_AN_AGENT)
        return False

    async def is_admin(self, user_id: int) -> bool:
        """An administrator of the agents' group (admin commands are theirs)."""
        try:
            member = await self._bot.get_chat_member(self.group, user_id)
        except TelegramError as exc:
            log.warning("could not check whether user %s is an admin: %s", user_id, exc)
            return False
        return member.status in ("creator", "administrator")

    def is_agent_chat(self, update: Update) -> bool:
        """Whether the update comes from a registered agent's private chat (their desk, never a customer chat)."""
        chat = update.effective_chat
        return chat is not None and chat.id in self.agent_chats.chat_ids

    async def on_agent_edit(self, update: Update) -> None:
        """An agent edited a message in their desk chat: what was relayed cannot change, so say so."""
        await self._direct(update.effective_chat.id, AGENT_EDIT)

    async def on_agent_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An agent writes in their private chat: to the customer it answers (or the only one they are helping)."""
        if not await self.still_an_agent(update):
            return
        message = update.effective_message
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            agent = await self._agent(session, update)
            handoff, problem = await self._target(session, agent, update)
            if handoff is None:
                await self._direct(update.effective_chat.id, problem)
                return
            conversation = await session.get(Conversation, handoff.conversation_id)
            if not await session.run_sync(transcript.replies_to, update.update_id):
                await self._from_agent(session, agent, conversation, handoff, message, update.update_id, update.effective_chat.id)
            deliveries.chats.add(conversation.chat_id)
        await self._flush(deliveries)

    async def _from_agent(
        self, session: AsyncSession, agent: Agent, conversation: Conversation, handoff: Handoff | None, message: Any,
        update_id: int, from_chat_id: int,
    ) -> None:
        """One message of an agent to a customer, recorded in the customer's transcript."""
        meta = {"agent_id": agent.id, "agent_name": agent.first_name}
        if message.text:
            for part in split_text(f"{agent.first_name}: {message.text}"):  # the name may push it past one message
                await _queue(session, conversation, conversation.chat_id, part, update_id, meta, kind="agent")
        else:
            caption = f"{agent.first_name}: {message.caption}" if message.caption else f"{agent.first_name}:"
            await _queue(session, conversation, conversation.chat_id, caption[:1024], update_id,
                         {**meta, "copy": {"from_chat_id": from_chat_id, "message_id": message.message_id}}, kind="agent")
        if handoff is not None and handoff.first_reply_at is None:
            handoff.first_reply_at = utcnow()

    async def on_agent_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/close, /return, /note, /queue and /help in an agent's private chat."""
        if not await self.still_an_agent(update):
            return
        text = update.effective_message.text or ""
        command, _, rest = text.partition(" ")
        command = command.split("@")[0].lower()
        if command == "/queue":
            await self._direct(update.effective_chat.id, await self.queue_text())
            return
        if command in ("/help", "/start"):
            await self._direct(update.effective_chat.id, AGENT_WELCOME)
            return
        if command in ("/promises", "/kept"):
            await self._promises_command(update, command, rest.strip())
            return
        if command not in ("/close", "/return", "/note", "/transfer", "/promise"):
            await self._direct(update.effective_chat.id, f"Unknown command {command}.\n\n{AGENT_WELCOME}")
            return
        async with self._sessions() as session:
            agent = await self._agent(session, update)
            handoff, problem = await self._target(session, agent, update)
        if handoff is None:
            await self._direct(update.effective_chat.id, problem)
            return
        if command == "/note":
            await self._note(update, agent, handoff, rest.strip())
        elif command == "/transfer":
            await self._offer_transfer(update, agent, handoff)
        elif command == "/promise":
            await self._promise(update, agent, handoff, rest.strip())
        else:
            await self.finish(handoff.id, agent, HandoffStatus.CLOSED if command == "/close" else HandoffStatus.RETURNED,
                              note=rest.strip() or None)

    async def on_group_queue(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/queue in the agents' group: who is waiting, answered where it was asked."""
        message = update.effective_message
        with contextlib.suppress(TelegramError):
            await self._bot.send_message(message.chat_id, await self.queue_text(),
                                         message_thread_id=message.message_thread_id if message.is_topic_message else None)

    async def on_group_admin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Admin commands in the agents' group: /agents (who holds what), /release T000001 (back to the queue)."""
        message = update.effective_message
        where = {"message_thread_id": message.message_thread_id if message.is_topic_message else None}
        if update.effective_user is None or not await self.is_admin(update.effective_user.id):  # no sender: not an admin
            with contextlib.suppress(TelegramError):
                await self._bot.send_message(message.chat_id, ADMINS_ONLY, **where)
            return
        command, _, rest = (message.text or "").partition(" ")
        if command.split("@")[0].lower() == "/agents":
            text = await self._agents_text()
        else:
            text = await self._release(update, rest.strip()) or ""
        if text:
            with contextlib.suppress(TelegramError):
                await self._bot.send_message(message.chat_id, text, **where)

    async def _agents_text(self) -> str:
        async with self._sessions() as session:
            lines = []
            for agent in await handoffs.agents_with_chats(session):
                holding = await handoffs.claimed_by(session, agent.id)
                refs = [(await session.get(Ticket, h.ticket_id)).reference for h in holding]
                lines.append(f"{agent.first_name}: {len(holding)} conversation(s)" + (f" ({', '.join(refs)})" if refs else ""))
        return "\n".join(lines) or "No agent has a private chat with me yet."

    async def _release(self, update: Update, reference: str) -> str | None:
        """Put a claimed conversation back in the queue (its agent went off shift, say)."""
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            ticket = await session.get(Ticket, number) if (number := record_number(reference[1:])) else None
            handoff = await handoffs.for_ticket(session, ticket.id) if ticket else None
            if handoff is None or handoff.status is not HandoffStatus.CLAIMED:
                return "Usage: /release T000001, for a ticket an agent is handling."
            holder = await session.get(Agent, handoff.agent_id) if handoff.agent_id else None
            conversation = await session.get(Conversation, handoff.conversation_id)
            await handoffs.requeue(session, handoff)
            await self._tell(session, conversation, replies.BACK_IN_QUEUE, None)
            await self._to_topic(session, conversation, ticket, RELEASED_NOTICE.format(
                admin=update.effective_user.first_name, ticket=ticket.reference, agent=holder.first_name if holder else "its agent"),
                claim_button=handoff)
            deliveries.chats |= {conversation.chat_id, self.group}
        await self._flush(deliveries)
        return None

    async def on_group_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An agent writes in a ticket's topic: it reaches the customer while nobody has claimed the ticket."""
        message = update.effective_message
        if message is None or not message.is_topic_message or update.effective_user is None or update.effective_user.is_bot:
            return
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            ticket = await handoffs.ticket_in_topic(session, message.message_thread_id)
            if (ticket is None or ticket.conversation_id is None
                    or await session.run_sync(transcript.replies_to, update.update_id)):
                return
            handoff = await handoffs.active_for(session, ticket.conversation_id)
            if handoff is not None and handoff.status is HandoffStatus.CLAIMED:
                return  # claimed: the conversation runs in the agent's private chat; the topic is for the team
            user = update.effective_user
            agent = await handoffs.agent(session, telegram_user_id=user.id, first_name=user.first_name, username=user.username)
            conversation = await session.get(Conversation, ticket.conversation_id)
            await self._from_agent(session, agent, conversation, handoff, message, update.update_id, self.group)
            if ticket.status is TicketStatus.OPEN:
                ticket.status = TicketStatus.IN_PROGRESS
            deliveries.chats.add(conversation.chat_id)
        await self._flush(deliveries)

    async def on_button(self, update: Update, payload: str) -> None:
        """Claim, close and return-to-bot buttons (issued only to the agents' group and agents' chats)."""
        query = update.callback_query
        action, _, number = payload.removeprefix(PREFIX).partition(":")
        user = query.from_user
        async with self._sessions.begin() as session:
            agent = await handoffs.agent(session, telegram_user_id=user.id, first_name=user.first_name, username=user.username)
        if action == "claim":
            answer = await self.claim(int(number), agent)
        elif action == "offer":
            answer = await self._offer_from_button(update, int(number), agent)
        elif action == "transfer":
            handoff_id, _, to = number.partition(":")
            answer = await self.transfer(int(handoff_id), agent, int(to) or None)
        elif action in ("close", "return"):
            answer = await self.finish(int(number), agent, HandoffStatus.CLOSED if action == "close" else HandoffStatus.RETURNED)
        else:
            answer = "Unknown action."
        with contextlib.suppress(TelegramError):
            await query.answer(answer, show_alert=bool(answer))

    async def _offer_from_button(self, update: Update, handoff_id: int, agent: Agent) -> str | None:
        async with self._sessions() as session:
            handoff = await session.get(Handoff, handoff_id)
        if handoff is None or handoff.status is not HandoffStatus.CLAIMED or handoff.agent_id != agent.id:
            return "This conversation isn't yours to pass on any more."
        await self._offer_transfer(update, agent, handoff)
        return None

    async def claim(self, ticket_id: int, agent: Agent) -> str | None:
        """An agent takes a ticket: the customer is told who is helping them; the conversation moves to the agent's chat."""
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            agent = await session.get(Agent, agent.id)
            if agent.private_chat_id is None:
                return START_PRIVATE_FIRST
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None or ticket.conversation_id is None:
                return "This ticket's customer is no longer on record."
            conversation = await session.get(Conversation, ticket.conversation_id)
            handoff = await handoffs.active_for(session, conversation.id)
            if handoff is None:
                # A complaint no one asked a person for yet: the agent reaches out.
                handoff, _ = await handoffs.open_handoff(session, conversation=conversation, ticket=ticket, reason="agent", context={})
            if handoff.ticket_id != ticket.id:
                return f"This customer is being helped on {(await session.get(Ticket, handoff.ticket_id)).reference}."
            if not await handoffs.claim(session, handoff.id, agent):
                holder = await session.get(Agent, handoff.agent_id) if handoff.agent_id else None
                return ALREADY_CLAIMED.format(agent=holder.first_name if holder else "someone else")
            ticket.status = TicketStatus.IN_PROGRESS
            customer = await session.get(Customer, conversation.customer_id)
            await self._tell(session, conversation, replies.CLAIMED.format(agent=agent.first_name), None)
            await self._to_topic(session, conversation, ticket, CLAIMED_NOTICE.format(agent=agent.first_name))
            await self._introduce(session, conversation, ticket, customer, handoff, agent)
            deliveries.chats |= {conversation.chat_id, self.group, agent.private_chat_id}
        await self._flush(deliveries)
        return None

    async def finish(self, handoff_id: int, agent: Agent, status: HandoffStatus, note: str | None = None) -> str | None:
        """Close (rating and next-day check follow) or hand back to the bot; the bot starts afresh either way."""
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            handoff = await session.get(Handoff, handoff_id)
            if handoff is None or handoff.status is not HandoffStatus.CLAIMED:
                return "This conversation has already ended."
            if handoff.agent_id != agent.id:
                return "This conversation is with another agent now."  # an old button of a previous holder
            agent = await session.get(Agent, agent.id)
            conversation = await session.get(Conversation, handoff.conversation_id)
            ticket = await session.get(Ticket, handoff.ticket_id)
            customer = await session.get(Customer, conversation.customer_id)
            closing = status is HandoffStatus.CLOSED
            followup = timedelta(hours=self._settings.followup_hours) if closing else None
            await handoffs.finish(session, handoff, status, resolution=note, followup_after=followup)
            if closing:
                ticket.status = TicketStatus.RESOLVED
                await self._tell(session, conversation, replies.CLOSED.format(agent=agent.first_name), None)
                scores = [(str(n), f"{CSAT_PREFIX}{handoff.id}:{n}") for n in range(1, 6)]
                await _queue(session, conversation, conversation.chat_id, replies.CSAT_QUESTION, None,
                             await _buttons(session, conversation.chat_id, scores))
                await self._to_topic(session, conversation, ticket, CLOSED_NOTICE.format(
                    agent=agent.first_name, note=f": {cards.clip(note)}" if note else ""))
                told = CLOSED_AGENT.format(ticket=ticket.reference)
            else:
                await self._tell(session, conversation, replies.RETURNED.format(ticket=ticket.reference), None)
                await self._to_topic(session, conversation, ticket, RETURNED_NOTICE.format(
                    agent=agent.first_name, name=cards.customer_name(customer)))
                told = RETURNED_AGENT.format(name=cards.customer_name(customer), ticket=ticket.reference)
            if agent.private_chat_id:
                await _queue(session, conversation, agent.private_chat_id, told, None, None)
                deliveries.chats.add(agent.private_chat_id)
            deliveries.chats |= {conversation.chat_id, self.group}
        await self._rasa.restart(conversation.sender_id)
        await self._flush(deliveries)
        return None

    async def _offer_transfer(self, update: Update, agent: Agent, handoff: Handoff) -> None:
        """Buttons: each other agent who can take the conversation, and the queue."""
        async with self._sessions.begin() as session:
            others = [a for a in await handoffs.agents_with_chats(session) if a.id != agent.id]
            conversation = await session.get(Conversation, handoff.conversation_id)
            customer = await session.get(Customer, conversation.customer_id)
            ticket = await session.get(Ticket, handoff.ticket_id)
            name = cards.customer_name(customer)
            choices = [(a.first_name or f"agent {a.id}", f"{PREFIX}transfer:{handoff.id}:{a.id}") for a in others]
            choices.append(("Back to the queue", f"{PREFIX}transfer:{handoff.id}:0"))
            text = TRANSFER_CHOOSE.format(name=name, ticket=ticket.reference) if others else TRANSFER_NOBODY.format(name=name)
            await _queue(session, conversation, update.effective_chat.id, text, update.update_id,
                         await _buttons(session, update.effective_chat.id, choices))
        await self._outbox.flush(update.effective_chat.id)

    async def transfer(self, handoff_id: int, agent: Agent, to_agent_id: int | None) -> str | None:
        """The holder passes the conversation to another agent, or back to the queue for anyone to claim."""
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            handoff = await session.get(Handoff, handoff_id)
            if handoff is None or handoff.status is not HandoffStatus.CLAIMED or handoff.agent_id != agent.id:
                return "This conversation isn't yours to pass on any more."
            target = await session.get(Agent, to_agent_id) if to_agent_id else None
            if to_agent_id and (target is None or target.private_chat_id is None):
                return "That agent can't take conversations right now."
            conversation = await session.get(Conversation, handoff.conversation_id)
            ticket = await session.get(Ticket, handoff.ticket_id)
            customer = await session.get(Customer, conversation.customer_id)
            name = cards.customer_name(customer)
            if target is not None:
                handoff.agent_id = target.id
                await self._tell(session, conversation, replies.TRANSFERRED.format(agent=target.first_name), None)
                await self._introduce(session, conversation, ticket, customer, handoff, target)
                await self._to_topic(session, conversation, ticket, TRANSFERRED_NOTICE.format(old=agent.first_name, new=target.first_name))
                told = TRANSFERRED_AGENT.format(name=name, ticket=ticket.reference, new=target.first_name)
                deliveries.chats.add(target.private_chat_id)
            else:
                await handoffs.requeue(session, handoff)
                await self._tell(session, conversation, replies.BACK_IN_QUEUE, None)
                await self._to_topic(session, conversation, ticket, REQUEUED_NOTICE.format(old=agent.first_name, name=name),
                                     claim_button=handoff)
                told = TRANSFERRED_AGENT.format(name=name, ticket=ticket.reference, new="the queue")
            await _queue(session, conversation, agent.private_chat_id, told, None, None)
            deliveries.chats |= {conversation.chat_id, self.group, agent.private_chat_id}
        await self._flush(deliveries)
        return None

    async def _introduce(
        self, session: AsyncSession, conversation: Conversation, ticket: Ticket, customer: Customer | None, handoff: Handoff,
        agent: Agent,
    ) -> None:
        """The conversation so far, in the agent's private chat, with its Close and Return buttons."""
        lines = cards.transcript(await transcript.messages(session, conversation.chat_id), customer.first_name if customer else "")
        intro = CLAIMED_INTRO.format(name=cards.customer_name(customer), ticket=ticket.reference,
                                     recent="\n".join(cards.clip(line) for line in lines[-5:]))
        await _queue(session, conversation, agent.private_chat_id, intro[:4096], None, await _buttons(session, agent.private_chat_id, [
            ("Close", f"{PREFIX}close:{handoff.id}"), ("Return to bot", f"{PREFIX}return:{handoff.id}"),
            ("Transfer", f"{PREFIX}offer:{handoff.id}")]))

    async def _promise(self, update: Update, agent: Agent, handoff: Handoff, text: str) -> None:
        """/promise <when> <what>: recorded, the customer told, the agent reminded when it falls due."""
        hours = self._settings.business_hours
        parsed = hours_module.parse_when(text, utcnow(), hours.zone)
        if parsed is None or not parsed[1] or parsed[0] <= utcnow():
            await self._direct(update.effective_chat.id, PROMISE_USAGE)
            return
        due, what = parsed
        due_text = f"{due.astimezone(hours.zone):%a %d %b %H:%M} ({hours.zone.key} time)"
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, handoff.conversation_id)
            ticket = await session.get(Ticket, handoff.ticket_id)
            if await session.run_sync(transcript.replies_to, update.update_id):
                return
            promise = await handoffs.promise(session, ticket=ticket, conversation=conversation, agent=agent, what=what[:1000], due_at=due)
            await self._tell(session, conversation, replies.PROMISED.format(agent=agent.first_name, what=what, due=due_text), update.update_id)
            await self._to_topic(session, conversation, ticket, PROMISE_NOTICE.format(agent=agent.first_name, what=cards.clip(what), due=due_text))
            await _queue(session, conversation, update.effective_chat.id,
                         PROMISE_SAVED.format(number=promise.id, ticket=ticket.reference, what=what, due=due_text), update.update_id, None)
            deliveries.chats |= {conversation.chat_id, self.group, update.effective_chat.id}
        await self._flush(deliveries)

    async def _promises_command(self, update: Update, command: str, rest: str) -> None:
        """/promises lists the agent's open promises; /kept <number> marks one kept and tells the customer."""
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            agent = await self._agent(session, update)
            if command == "/promises":
                open_ones = await handoffs.open_promises(session, agent.id)
                lines = []
                for promise in open_ones:
                    ticket = await session.get(Ticket, promise.ticket_id)
                    lines.append(f"#{promise.id} {ticket.reference}: {promise.what} (due {handoffs.aware(promise.due_at):%d %b %H:%M} UTC)")
                reply = "\n".join(lines) or NO_PROMISES
            else:
                number = record_number(rest.lstrip("#"))
                promise = await session.get(Promise, number) if number else None
                if promise is None or promise.agent_id != agent.id or promise.kept_at is not None:
                    reply = "Usage: /kept <number> of one of your open promises (/promises lists them)."
                else:
                    promise.kept_at = utcnow()
                    conversation = await session.get(Conversation, promise.conversation_id)
                    ticket = await session.get(Ticket, promise.ticket_id)
                    await self._tell(session, conversation, replies.PROMISE_KEPT.format(
                        agent=agent.first_name, what=promise.what, ticket=ticket.reference), update.update_id)
                    await self._to_topic(session, conversation, ticket, PROMISE_KEPT_NOTICE.format(
                        agent=agent.first_name, number=promise.id, what=cards.clip(promise.what)))
                    deliveries.chats |= {conversation.chat_id, self.group}
                    reply = f"Promise #{promise.id} is kept; {cards.customer_name(await session.get(Customer, conversation.customer_id))} has been told."
        await self._flush(deliveries)
        await self._direct(update.effective_chat.id, reply)

    async def _note(self, update: Update, agent: Agent, handoff: Handoff, text: str) -> None:
        """An internal note: kept with the transcript and posted to the ticket's topic, never sent to the customer."""
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, handoff.conversation_id)
            ticket = await session.get(Ticket, handoff.ticket_id)
            if text and not await session.run_sync(transcript.replies_to, update.update_id):
                await session.run_sync(
                    transcript.record_event, conversation=conversation, kind="note",
                    payload={"agent_id": agent.id, "agent_name": agent.first_name, "text": text},
                    update_id=update.update_id)
                await self._to_topic(session, conversation, ticket, f"📝 {agent.first_name}: {cards.clip(text, 3000)}")
                deliveries.chats.add(self.group)
        await self._flush(deliveries)
        await self._direct(update.effective_chat.id, NOTE_SAVED.format(ticket=ticket.reference) if text else "Usage: /note <text>")

    async def queue_text(self) -> str:
        """Who is waiting for a person, and for how long."""
        async with self._sessions() as session:
            waiting = await handoffs.queued(session)
            now = utcnow()
            lines = []
            for number, handoff in enumerate(waiting, 1):
                ticket = await session.get(Ticket, handoff.ticket_id)
                conversation = await session.get(Conversation, handoff.conversation_id)
                customer = await session.get(Customer, conversation.customer_id)
                minutes = int((now - handoffs.aware(handoff.queued_at)).total_seconds() // 60)
                lines.append(f"{number}. {ticket.reference} · {cards.customer_name(customer)} · waiting {minutes} min · "
                             f"{cards.REASONS.get(handoff.reason, handoff.reason)}")
        return "\n".join(lines) if lines else QUEUE_EMPTY

    # --- the background round: new tickets to the group, next-day checks --------------------------------------

    async def run(self) -> None:
        """Announce new tickets and send due follow-ups until cancelled."""
        while True:
            try:
                async with self.shared.try_hold("desk", 0) as held:
                    if held:  # one worker at a time runs the round
                        await self.round()
            except Exception:
                log.exception("desk round failed")
            await asyncio.sleep(ROUND_SECONDS)

    async def round(self) -> None:
        """One pass: every ticket without a topic gets one with its card; due follow-ups are sent. What is due is
        read first, in one query: most rounds find nothing to do."""
        due = await self._sessions.read(handoffs.due_work, utcnow())
        if self.enabled:
            if due.tickets_without_topic:
                async with self._sessions() as session:
                    waiting = [t.id for t in await handoffs.tickets_without_topic(session)]
                for ticket_id in waiting:
                    if not await self._announce(ticket_id):
                        break
            if due.queued:
                await self._reannounce()
            if due.promises:
                await self._remind_promises()
            await self._summarise()
        if due.followups:
            await self._send_followups()

    async def _announce(self, ticket_id: int) -> bool:
        """Open the ticket's topic and post its context card; False when Telegram should be left alone for now."""
        async with self._sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            customer = await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
            name = cards.topic_name(ticket, customer)
        try:
            topic = await self._bot.create_forum_topic(self.group, name)
            thread_id = topic.message_thread_id
        except (BadRequest, Forbidden) as exc:
            # Not a forum, or the bot may not manage topics: cards go to the group's main thread instead.
            log.error("cannot open a topic in the agents' group %s (%s); posting the card without one", self.group, exc)
            thread_id = 0
        except TelegramError as exc:
            log.warning("could not open a topic for ticket %s yet: %s", ticket_id, exc)
            return False
        async with self._sessions.begin() as session:
            ticket = await session.get(Ticket, ticket_id)
            ticket.topic_id = thread_id
            conversation = await session.get(Conversation, ticket.conversation_id)
            await self._post_card(session, ticket, conversation)
        await self._outbox.flush(self.group)
        return True

    async def _post_card(self, session: AsyncSession, ticket: Ticket, conversation: Conversation) -> None:
        customer = await session.get(Customer, conversation.customer_id)
        handoff = await handoffs.active_for(session, conversation.id)
        if handoff is not None and handoff.ticket_id != ticket.id:
            handoff = None
        remembered = await memory.remember(
            session, telegram_user_id=customer.telegram_user_id, today=utcnow(),
            regular_min_visits=self._settings.regular_min_visits, regular_min_tickets=self._settings.regular_min_tickets,
        ) if customer is not None else None
        lines = cards.transcript(await transcript.messages(session, conversation.chat_id), customer.first_name if customer else "")
        text = cards.card(cards.CardFacts(ticket=ticket, customer=customer, memory=remembered, handoff=handoff, lines=lines))
        if handoff is not None:
            handoff.announced_at = utcnow()
        await self._to_topic(session, conversation, ticket, text, claim_button=handoff or ticket)
        for photo in ticket.photos or []:
            await _queue(session, conversation, self.group, f"{ticket.reference}: photo from the customer", None,
                         _thread(ticket, {"photo": photo}), kind="photo")
        if len(lines) > cards.CARD_MESSAGES:
            content = cards.full_transcript(ticket, customer, lines, utcnow())
            await _queue(session, conversation, self.group, f"{ticket.reference}: the whole transcript", None,
                         _thread(ticket, {"file_name": f"{ticket.reference}-transcript.txt", "content": content}), kind="document")

    async def _reannounce(self) -> None:
        """Unclaimed handoffs are brought up again in their topic after a while (a few a minute at most), and a
        customer whose expected wait changed a lot is told the new one."""
        now = utcnow()
        if not self._settings.business_hours.is_open(now):
            return
        while self._announced and now - self._announced[0] > timedelta(minutes=1):
            self._announced.popleft()
        every = timedelta(minutes=self._settings.reannounce_minutes)
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            wait = await handoffs.typical_wait(session, now)
            for handoff in await handoffs.queued(session):
                if len(self._announced) >= REANNOUNCE_PER_MINUTE:
                    break
                if now - handoffs.aware(handoff.announced_at or handoff.queued_at) < every:
                    continue
                ticket = await session.get(Ticket, handoff.ticket_id)
                if ticket.topic_id is None:
                    continue
                conversation = await session.get(Conversation, handoff.conversation_id)
                customer = await session.get(Customer, conversation.customer_id)
                minutes = int((now - handoffs.aware(handoff.queued_at)).total_seconds() // 60)
                await self._to_topic(session, conversation, ticket, STILL_WAITING.format(
                    name=cards.customer_name(customer), minutes=minutes), claim_button=handoff)
                handoff.announced_at = now
                self._announced.append(now)
                told = handoff.told_wait_seconds
                if wait is not None and (told is None or abs(wait.total_seconds() - told) > max(300, told / 2)):
                    await self._tell(session, conversation, await self._place_text(session, handoff, replies.WAIT_UPDATE), None)
                    deliveries.chats.add(conversation.chat_id)
                deliveries.chats.add(self.group)
        await self._flush(deliveries)

    async def _summarise(self) -> None:
        """Every SUMMARY_MINUTES, while anything is open, one line in the group's main thread."""
        now = utcnow()
        if now - self._summarised_at < timedelta(minutes=self._settings.summary_minutes):
            return
        self._summarised_at = now
        async with self._sessions() as session:
            facts = await handoffs.summary(session, now)
        if not facts["waiting"] and not facts["handled"]:
            return
        rating = f"{facts['rating']:.1f}/5" if facts["rating"] is not None else "none yet"
        with contextlib.suppress(TelegramError):
            await self._bot.send_message(self.group, SUMMARY.format(**{**facts, "rating": rating}))

    async def _remind_promises(self) -> None:
        """Promises falling due: the agent is reminded in private and the team in the ticket's topic, once."""
        deliveries = Deliveries()
        async with self._sessions.begin() as session:
            for promise in await handoffs.due_promises(session, utcnow()):
                promise.reminded_at = utcnow()
                conversation = await session.get(Conversation, promise.conversation_id)
                ticket = await session.get(Ticket, promise.ticket_id)
                agent = await session.get(Agent, promise.agent_id) if promise.agent_id else None
                text = PROMISE_DUE.format(number=promise.id, ticket=ticket.reference, what=promise.what)
                if agent is not None and agent.private_chat_id:
                    await _queue(session, conversation, agent.private_chat_id, text, None, None)
                    deliveries.chats.add(agent.private_chat_id)
                await self._to_topic(session, conversation, ticket, text)
                deliveries.chats.add(self.group)
        await self._flush(deliveries)

    async def _send_followups(self) -> None:
        async with self._sessions.begin() as session:
            due = await handoffs.due_followups(session)
            chats = set()
            for handoff in due:
                handoff.followup_sent_at = utcnow()
                conversation = await session.get(Conversation, handoff.conversation_id)
                customer = await session.get(Customer, conversation.customer_id)
                ticket = await session.get(Ticket, handoff.ticket_id)
                text = replies.FOLLOWUP.format(name=customer.first_name or "there", ticket=ticket.reference)
                choices = [(replies.FOLLOWUP_OK, f"{FOLLOWUP_PREFIX}{handoff.id}:ok"),
                           (replies.FOLLOWUP_HELP, f"{FOLLOWUP_PREFIX}{handoff.id}:help")]
                await _queue(session, conversation, conversation.chat_id, text, None, await _buttons(session, conversation.chat_id, choices))
                chats.add(conversation.chat_id)
        await self._flush(Deliveries(chats))

    # --- helpers -------------------------------------------------------------------------------------------

    async def _ticket_for(
        self, session: AsyncSession, conversation: Conversation, *, update_id: int | None, reason: str, context: dict[str, Any]
    ) -> Ticket:
        """The ticket the request is about (the customer's own, by reference), or a new one for it."""
        reference = str(context.get("ticket_id") or "")
        if number := record_number(reference[1:]):
            found = await session.get(Ticket, number)
            if found is not None and found.customer_id == conversation.customer_id:
                return found
        collected = context.get("collected") or {}
        description = collected.get("complaint_description") or context.get("message") or "Asked to talk to a person"
        photos = collected.get("complaint_photos")
        ticket, _ = await tickets.create(
            session,
            idempotency_key=f"handoff:{conversation.chat_id}:{update_id if update_id is not None else utcnow().timestamp()}",
            conversation=conversation,
            category=collected.get("complaint_category") or "other",
            description=str(description)[:4000],
            desired_resolution=collected.get("desired_resolution") or "talk_to_person",
            priority=TicketPriority.HIGH if reason in ("frustration", "bot_unavailable") else TicketPriority.NORMAL,
            order_number=_value(collected.get("order_number")),
            contact=_value(collected.get("contact")),
            photos=photos if isinstance(photos, list) else [],
        )
        return ticket

    async def _say_where_they_stand(
        self, session: AsyncSession, conversation: Conversation, handoff: Handoff, update_id: int | None
    ) -> None:
        if handoff.status is HandoffStatus.CLAIMED:
            agent = await session.get(Agent, handoff.agent_id)
            text = replies.HANDOFF_WITH_AGENT.format(agent=agent.first_name if agent else "Someone")
        else:
            text = replies.HANDOFF_STILL_QUEUED.format(position=await handoffs.place_in_line(session, handoff))
        await self._tell(session, conversation, text, update_id)

    async def _tell(self, session: AsyncSession, conversation: Conversation, text: str, update_id: int | None) -> None:
        await _queue(session, conversation, conversation.chat_id, text, update_id, None)

    async def _to_topic(
        self, session: AsyncSession, conversation: Conversation, ticket: Ticket, text: str,
        claim_button: Handoff | Ticket | None = None,
    ) -> None:
        """A message in the ticket's topic (once the topic exists; the card, posted later, carries the story)."""
        if not self.enabled or ticket.topic_id is None:
            return
        payload = _thread(ticket, {})
        if claim_button is not None:
            payload.update(await _buttons(session, self.group, [("Claim", f"{PREFIX}claim:{ticket.id}")]))
        await _queue(session, conversation, self.group, text, None, payload)

    async def _agent(self, session: AsyncSession, update: Update) -> Agent:
        user = update.effective_user
        return await handoffs.agent(session, telegram_user_id=user.id, first_name=user.first_name, username=user.username)

    async def _target(self, session: AsyncSession, agent: Agent, update: Update) -> tuple[Handoff | None, str]:
        """The handoff an agent's message is for: the customer whose message it replies to, or their only one."""
        mine = await handoffs.claimed_by(session, agent.id)
        replied = update.effective_message.reply_to_message
        if replied is not None:
            relayed = await handoffs.relayed_message(session, chat_id=update.effective_chat.id, telegram_message_id=replied.message_id)
            if relayed is not None:
                match = next((h for h in mine if h.conversation_id == relayed.conversation_id), None)
                return (match, "") if match is not None else (None, NOT_YOURS)
        if len(mine) == 1:
            return mine[0], ""
        if not mine:
            return None, NO_CUSTOMER
        return None, WHICH_CUSTOMER.format(count=len(mine))

    async def _direct(self, chat_id: int, text: str) -> None:
        """A service message to an agent, not part of any customer's transcript."""
        with contextlib.suppress(TelegramError):
            await self._bot.send_message(chat_id, text)

    async def _flush(self, deliveries: Deliveries, extra: tuple[int, ...] = ()) -> None:
        for chat_id in deliveries.chats | set(extra):
            if chat_id is not None:
                await self._outbox.flush(chat_id)


async def _queue(
    session: AsyncSession, conversation: Conversation, chat_id: int, text: str, update_id: int | None,
    payload: dict[str, Any] | None, kind: str = "text",
) -> int:
    """Record a message for any chat (the customer's, the group, an agent's) in the customer's transcript, to send."""
    return await session.run_sync(transcript.queue_outgoing, conversation=conversation, text=text, update_id=update_id,
                                  payload=payload, kind=kind, chat_id=chat_id)


async def _buttons(session: AsyncSession, chat_id: int, choices: list[tuple[str, str]]) -> dict[str, Any]:
    return {"buttons": [
        {"title": title, "callback_data": await session.run_sync(buttons.register, chat_id=chat_id, title=title,
                                                                 payload=payload)}
        for title, payload in choices
    ]}


def _thread(ticket: Ticket, payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "thread_id": ticket.topic_id} if ticket.topic_id else dict(payload)


def record_number(text: str) -> int | None:
    """The number of a ticket or promise as typed (`000012`): ASCII digits only, in a database id's range.

    Python's `isdigit` and `int` take other scripts' digits too (and `int` refuses some, like "²"); a database refuses
    numbers beyond 64 bits: either would fail the command instead of saying how to use it.
    """
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > 18:
        return None
    return int(text) or None


def _value(value: Any) -> str | None:
    return None if value in (None, "", "none") else str(value)

