"""The agent desk: escalations become tickets in the agents' forum group; claimed conversations run in private.

Everything the desk sends goes through the outbox (recorded first, delivered in order, retried), so a crash or a
Telegram outage loses nothing. The agents' group only carries low-volume events: a ticket's card, claimed,
closed, ratings. The live conversation of a claimed ticket runs in the claiming agent's private chat with the
bot; a reply there goes to the customer whose message it answers (or to the only customer the agent is helping).

`Desk` is the desk's face to the rest of the app: Telegram's side of each step (who is asking, what to answer
in place) around the steps themselves, which are plain functions of a `Unit` (bot/desk/unit.py) in
`handoff.py` (the customer's side) and `lifecycle.py` (claim, close, transfer, release, reopen).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from telegram import Bot, Message, Update, User
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.config import Settings
from bot.desk import agent_copies, assign, handoff, lifecycle, saved
from bot.desk.members import Membership
from bot.desk.texts import (
    AGENT_WELCOME,
    CSAT_PREFIX,
    FOLLOWUP_PREFIX,
    NO_CUSTOMER,
    NOT_AN_AGENT,
    NOT_YOURS,
    PREFIX,
    TOPIC_CLOSED,
    WHICH_CUSTOMER,
)
from bot.desk.unit import DONE, Unit, thread
from bot.rasa import RasaClient
from bot.storage import handoffs, members
from bot.storage.db import Sessions
from bot.storage.models import Agent, Conversation, Handoff, HandoffStatus, TicketStatus
from bot.storage.models import Message as Record
from bot.telegram import service
from bot.telegram.locks import LocalLocks, Locks
from bot.telegram.outbox import Outbox

log = logging.getLogger(__name__)
T = TypeVar("T")


class Desk:
    """The agents' side of the bot, and the customer's side of a handoff."""

    def __init__(self, settings: Settings, sessions: Sessions, outbox: Outbox, bot: Bot, rasa: RasaClient) -> None:
        self.settings = settings
        self.sessions = sessions
        self.outbox = outbox
        self.bot = bot
        self.rasa = rasa
        self.group = settings.agent_chat_id
        self.shared: Locks = LocalLocks()  # the app sets the cross-worker locks when it runs several workers
        # Who is an agent, kept in the database (bot/desk/members.py); the private chats of agents, which the app
        # routes to the desk and not to Rasa, are read from it every few seconds for the handler filters.
        self.members = Membership(self)
        self.agent_chats = self.members.chats
        outbox.refused = self.on_refused

    @property
    def enabled(self) -> bool:
        """Whether an agents' group is configured."""
        return self.group is not None

    # --- running a step ------------------------------------------------------------------------------------

    async def step(self, work: Callable[..., T], *args: Any, update_id: int | None = None) -> T:
        """`work(unit, *args)` in one transaction; once it has committed, the chats it wrote to are delivered.

        `update_id` is the update the step answers: its replies carry it (see Unit.answered).
        """

        chats, result = await self.commit(work, *args, update_id=update_id)
        await self.flush(chats)
        return result

    async def commit(self, work: Callable[..., T], *args: Any, update_id: int | None = None) -> tuple[set[int], T]:
        """As `step`, leaving the delivery to the caller: the chats to flush, and the work's result."""

        def run(session: Session) -> tuple[set[int], T]:
            unit = Unit(session, self.settings, update_id)
            result = work(unit, *args)
            return unit.chats, result

        return await self.sessions.run(run)

    async def flush(self, chats: Iterable[int | None]) -> None:
        """Deliver what is recorded for these chats; the agents' group's in the background (it is paced, and no
        customer or agent waits for it)."""
        for chat_id in set(chats):
            if chat_id == self.group:
                self.outbox.flush_soon(chat_id)
            elif chat_id is not None:
                await self.outbox.flush(chat_id)

    async def direct(self, chat_id: int, text: str) -> None:
        """A service message to an agent (or the agents' group), not part of any customer's transcript."""
        if chat_id < 0:
            self.outbox.pace.spend(chat_id, 1)  # counted in the group's minute, as Telegram counts it
        await service.send(self.bot, chat_id, text, rate=self.outbox.rate)

    async def answer_in_place(self, message: Message, text: str) -> None:
        """A service answer where a command was given (in the group: in its topic)."""
        if message.chat_id < 0:
            self.outbox.pace.spend(message.chat_id, 1)  # counted in the group's minute, as Telegram counts it
        await service.send(
            self.bot,
            message.chat_id,
            text,
            message.message_thread_id if message.is_topic_message else None,
            rate=self.outbox.rate,
        )

    # --- the customer's side -------------------------------------------------------------------------------

    def escalate(
        self,
        session: Session,
        conversation_id: int,
        *,
        update_id: int | None,
        reason: str,
        context: dict[str, Any],
    ) -> set[int]:
        """Queue the customer for a person, inside the caller's transaction (see handoff.escalate); the chats to
        deliver to once it commits."""
        unit = Unit(session, self.settings, update_id)
        handoff.escalate(unit, session.get(Conversation, conversation_id), reason=reason, context=context)
        return unit.chats

    def may_reopen(self, last: Handoff | None) -> bool:
        """Whether a message from the customer now reopens `last` (see lifecycle.may_reopen)."""
        return lifecycle.may_reopen(self.settings, last)

    async def reopen_if_recent(self, update: Update, conversation: Conversation) -> bool:
        """A customer writing again soon after a close (without rating it) gets the same ticket and agent back."""
        if not self.enabled:
            return False
        return await self.step(handoff.reopen, conversation.id, update.effective_message, update_id=update.update_id)

    async def relay_from_customer(self, update: Update, conversation: Conversation) -> bool:
        """A customer's message while a person is (about to be) in charge (see handoff.relay_from_customer)."""
        return await self.step(
            handoff.relay_from_customer, conversation.id, update.effective_message, update_id=update.update_id
        )

    async def cancel(self, update: Update, conversation: Conversation) -> None:
        """/cancel: leave the queue (not a conversation an agent already took) and go back to the bot."""
        chats, restart = await self.commit(handoff.cancel, conversation.id, update_id=update.update_id)
        if restart:
            await self.rasa.restart(conversation.sender_id)
        await self.flush(chats)

    async def take_comment(self, update: Update, conversation: Conversation) -> bool:
        """The text soon after a rating is the customer's comment on it (see handoff.take_comment)."""
        return await self.step(
            handoff.take_comment, conversation.id, update.effective_message.text or "", update_id=update.update_id
        )

    async def on_customer_button(self, update: Update, conversation: Conversation, payload: str) -> bool:
        """The rating and follow-up buttons; False when the payload is not the desk's."""
        if payload.startswith(CSAT_PREFIX):
            handoff_id, _, score = payload.removeprefix(CSAT_PREFIX).partition(":")
            await self.step(handoff.rate, conversation.id, int(handoff_id), int(score), update_id=update.update_id)
            return True
        if payload.startswith(FOLLOWUP_PREFIX):
            handoff_id, _, answer = payload.removeprefix(FOLLOWUP_PREFIX).partition(":")
            await self.step(
                handoff.followup_answer, conversation.id, int(handoff_id), answer, update_id=update.update_id
            )
            return True
        return False

    async def delete_topics(self, topics: list[int]) -> None:
        """A forgotten customer's ticket topics go, with the cards and messages that quote them."""
        for topic in topics if self.enabled else []:
            try:
                await self.bot.delete_forum_topic(self.group, topic)
            except TelegramError as exc:
                log.warning("could not delete topic %s of a forgotten customer: %s", topic, exc)

    # --- who is an agent -----------------------------------------------------------------------------------

    async def load_agents(self) -> None:
        """Route the private chats of agents to the desk (read again every few seconds: see members.Membership)."""
        await self.agent_chats.refresh(self.sessions.read)

    async def is_agent(self, user_id: int) -> bool:
        """Whether this Telegram user is a member of the agents' group: asked of Telegram, which knows; when it
        cannot be asked, as it last said."""
        if not self.enabled:
            return False
        member = await self.members.ask(user_id)
        return member if member is not None else await self.sessions.read(members.known_member, user_id)

    async def is_admin(self, user_id: int) -> bool:
        """An administrator of the agents' group (admin commands are theirs)."""
        return await self._member_status(user_id) in ("creator", "administrator")

    async def _member_status(self, user_id: int) -> str | None:
        try:
            return (await self.bot.get_chat_member(self.group, user_id)).status
        except TelegramError as exc:
            log.warning("could not check user %s's membership of the agents' group: %s", user_id, exc)
            return None

    async def agent(self, update: Update) -> Agent:
        """The agent who sent this update, on record with their current name."""
        user = update.effective_user
        return await self.sessions.run(
            handoffs.agent, telegram_user_id=user.id, first_name=user.first_name, username=user.username
        )

    async def register_agent(self, update: Update) -> None:
        """/start from a member of the agents' group: their private chat becomes their desk."""
        user, chat_id, now = update.effective_user, update.effective_chat.id, self.members.clock()

        def register(session: Session) -> None:
            agent = handoffs.agent(
                session, telegram_user_id=user.id, first_name=user.first_name, username=user.username
            )
            agent.private_chat_id, agent.in_group, agent.membership_checked_at = chat_id, True, now

        await self.sessions.run(register)
        self.agent_chats.add(chat_id)
        await self.direct(chat_id, AGENT_WELCOME)

    async def still_an_agent(self, update: Update) -> bool:
        """Whether this private chat is still its sender's desk, as the database says now (the chat filters may lag
        by a few seconds); someone who left the agents' group is told this is for agents only."""
        chat_id = update.effective_chat.id
        if await self.sessions.read(members.has_desk, update.effective_user.id, chat_id):
            return True
        self.agent_chats.discard(chat_id)
        await self.direct(chat_id, NOT_AN_AGENT)
        return False

    def is_agent_chat(self, update: Update) -> bool:
        """Whether the update comes from a registered agent's private chat (their desk, never a customer chat)."""
        chat = update.effective_chat
        return chat is not None and chat.id in self.agent_chats.chat_ids

    # --- what agents write ---------------------------------------------------------------------------------

    async def on_agent_edit(self, update: Update) -> None:
        """An agent edited a message in their desk chat: the customer's copy is edited too (see agent_copies.edit)."""
        if not await self.still_an_agent(update):
            return
        agent = await self.agent(update)
        problem = await self.step(agent_copies.edit, agent.id, update.effective_message, update_id=update.update_id)
        if problem:
            await self.direct(update.effective_chat.id, problem)

    async def on_refused(self, record: Record, reason: str) -> None:
        """Telegram refused for good something an agent sent a customer: the agent is told, with the reason."""
        payload = record.payload or {}
        if record.kind not in ("agent", "agent_edit") or "agent_id" not in payload:
            return
        try:
            chats = await self.commit(
                agent_copies.tell_refused, record.conversation_id, int(payload["agent_id"]), record, reason
            )
        except Exception:
            log.exception("could not tell agent %s that Telegram refused reply %s", payload["agent_id"], record.id)
            return
        for chat_id in chats[0]:
            self.outbox.flush_soon(chat_id)  # not now: the customer's chat is being flushed

    async def on_agent_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An agent writes in their private chat: to the customer it answers (or the only one they are helping)."""
        if not await self.still_an_agent(update):
            return
        agent = await self.agent(update)
        message = update.effective_message
        chats, problem = await self.commit(_from_agent_chat, agent.id, message, update_id=update.update_id)
        await self.flush(chats)
        if problem:
            await self.direct(update.effective_chat.id, problem)
        if (
            message is not None and message.media_group_id
        ):  # an album's copies wait for its last part: deliver them once it is in
            for chat_id in chats:
                asyncio.get_running_loop().call_later(
                    agent_copies.ALBUM_WAIT.total_seconds() + 0.1, self.outbox.flush_soon, chat_id
                )

    async def on_group_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An agent writes in a ticket's topic: it reaches the customer while nobody has claimed the ticket."""
        message = update.effective_message
        if (
            message is None
            or not message.is_topic_message
            or update.effective_user is None
            or update.effective_user.is_bot
        ):
            return
        await self.step(_from_topic, update.effective_user, message, update_id=update.update_id)

    async def on_button(self, update: Update, payload: str) -> None:
        """Claim, close, return-to-bot and transfer buttons (issued only to the agents' group and agents' chats)."""
        query = update.callback_query
        action, _, number = payload.removeprefix(PREFIX).partition(":")
        agent = await self.agent(update)
        if update.effective_chat.id != self.group and not agent.in_group:
            answer: str | None = NOT_AN_AGENT  # pressed in the private chat of someone who left the agents' group
        elif action == "claim":
            answer = await self.step(lifecycle.claim, int(number), agent.id)
        elif action == "offer":
            answer = await self.step(
                lifecycle.offer_transfer, int(number), agent.id, update.effective_chat.id, update_id=update.update_id
            )
        elif action == "transfer":
            handoff_id, _, to = number.partition(":")
            answer = await self.step(lifecycle.transfer, int(handoff_id), agent.id, int(to) or None)
        elif action == "pass":
            answer = await self.step(assign.pass_back, int(number), agent.id, update_id=update.update_id)
        elif action == saved.ACTION:
            answer = await self.step(saved.press, agent.id, number, update_id=update.update_id)
        elif action in ("close", "return"):
            answer = await self.finish(
                int(number), agent.id, HandoffStatus.CLOSED if action == "close" else HandoffStatus.RETURNED
            )
        else:
            answer = "Unknown action."
        with contextlib.suppress(TelegramError):
            await query.answer(answer, show_alert=bool(answer))

    async def finish(
        self, handoff_id: int, agent_id: int, status: HandoffStatus, note: str | None = None
    ) -> str | None:
        """Close or return to the bot (see lifecycle.finish); the bot starts the conversation afresh either way."""
        chats, (problem, sender_id) = await self.commit(lifecycle.finish, handoff_id, agent_id, status, note)
        if sender_id is not None:
            await self.rasa.restart(sender_id)  # before the customer reads that the bot is back
        await self.flush(chats)
        return problem


def target(u: Unit, agent: Agent, message: Message) -> tuple[Handoff | None, str]:
    """The handoff an agent's message is for: the customer whose message it replies to, or their only one."""
    mine = handoffs.claimed_by(u.session, agent.id)
    replied = message.reply_to_message
    if replied is not None:
        relayed = handoffs.relayed_message(u.session, chat_id=message.chat_id, telegram_message_id=replied.message_id)
        if relayed is not None:
            match = next((h for h in mine if h.conversation_id == relayed.conversation_id), None)
            return (match, "") if match is not None else (None, NOT_YOURS)
    if len(mine) == 1:
        return mine[0], ""
    if not mine:
        return None, NO_CUSTOMER
    return None, WHICH_CUSTOMER.format(count=len(mine))


def _from_agent_chat(u: Unit, agent_id: int, message: Message) -> str:
    """An agent's message in their private chat, to its customer; what to tell the agent when it has none."""
    agent = u.session.get(Agent, agent_id)
    if agent is None:
        return NOT_AN_AGENT
    handoff, problem = target(u, agent, message)
    if handoff is None:
        return problem
    u.chats.add(handoff.conversation.chat_id)
    if not u.answered():
        agent_copies.send(u, agent, handoff.conversation, handoff, message)
    return ""


def _from_topic(u: Unit, user: User, message: Message) -> None:
    """A message in an unclaimed ticket's topic reaches its customer (claimed, the topic is for the team)."""
    ticket = handoffs.ticket_in_topic(u.session, message.message_thread_id)
    if ticket is None or ticket.conversation is None or u.answered():
        return
    if ticket.status in DONE:  # a remark meant for colleagues, or an admin writing in a closed topic: not relayed
        u.queue(ticket.conversation, u.group, TOPIC_CLOSED.format(ticket=ticket.reference), thread(ticket, {}))
        return
    active = handoffs.active_for(u.session, ticket.conversation.id)
    if active is not None and active.status is HandoffStatus.CLAIMED:
        return
    agent = handoffs.agent(u.session, telegram_user_id=user.id, first_name=user.first_name, username=user.username)
    agent_copies.send(u, agent, ticket.conversation, active, message)
    if ticket.status is TicketStatus.OPEN:
        u.set_status(ticket.conversation, ticket, TicketStatus.IN_PROGRESS)
