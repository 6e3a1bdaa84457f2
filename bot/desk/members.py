"""Who is an agent: a member of the agents' group with a private chat with the bot (their desk), as the database
says, never one process's memory.

Telegram's word on membership is stored with the agent (bot/storage/members.py): its `chat_member` updates as they
come, a sweep that asks `getChatMember` of each agent every few minutes (for an update missed), and the live check
at /start. Someone Telegram says left (`left`, `kicked`, or `restricted` and no longer a member) is retired at once:
their desk closes, and the customers they were helping go back to the queue, told so. A call to Telegram that
fails says nothing: the agent stays as they were.

python-telegram-bot's handler filters are synchronous, so the desks' private chats are also held in `AgentChats`,
read again from the database every REFRESH_SECONDS by each worker (and changed at once in the worker that learns of
a change): an agent who sent /start through one worker is an agent in the others a moment later, and at once for
what they write: a private chat the list does not have yet is looked up in the database before it is taken for a
customer's (bot/chat/handlers.py, ForTheDesk).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from telegram import ChatMember, Message, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, ChatMemberHandler, ContextTypes, filters

from bot.desk import lifecycle
from bot.desk.texts import LEFT_THE_GROUP
from bot.desk.unit import Unit
from bot.storage import handoffs, members
from bot.storage.models import Agent, utcnow

if TYPE_CHECKING:
    from bot.desk.desk import Desk

log = logging.getLogger(__name__)
REFRESH_SECONDS = 2.0  # how stale a worker's picture of the desks may be
SWEEP_EVERY = timedelta(minutes=3)  # each agent's membership is asked of Telegram this often
SWEEP_BATCH = 20  # agents asked in one pass at most (the next pass, REFRESH_SECONDS later, asks the next ones)
RETRY_FIRST = timedelta(seconds=30)  # after a failed getChatMember, that agent is asked again after this (doubling)
IN = ("creator", "administrator", "member")
OUT = ("left", "kicked")


def member_of(member: ChatMember) -> bool | None:
    """Whether a ChatMember is in the group: `left`, `kicked`, or `restricted` and not a member are out; None for
    a status this code does not know."""
    if member.status in IN:
        return True
    if member.status in OUT:
        return False
    if member.status == "restricted":
        return bool(getattr(member, "is_member", False))
    return None


class AgentChats(filters.MessageFilter):
    """The desks' private chats for the app's handler filters: the database's list as of the last refresh."""

    def __init__(self) -> None:
        super().__init__(name="AgentChats")
        self.chat_ids: frozenset[int] = frozenset()
        self._changes = 0  # local changes, so that a refresh read before one does not undo it

    def filter(self, message: Message) -> bool:
        return message.chat.id in self.chat_ids

    def add(self, chat_id: int) -> None:
        self.chat_ids |= {chat_id}
        self._changes += 1

    def discard(self, chat_id: int) -> None:
        self.chat_ids -= {chat_id}
        self._changes += 1

    async def refresh(self, read: Callable[..., Any]) -> list[members.Seat]:
        """Read the desks again (`read` is Sessions.read); the seats read."""
        changes = self._changes
        seats: list[members.Seat] = await read(members.seats)
        if changes == self._changes:  # else a change made here meanwhile may be missing: the next refresh has it
            self.chat_ids = frozenset(seat.chat_id for seat in seats)
        return seats


class Membership:
    """Keeps the database's word on who is in the agents' group: chat_member updates, a sweep, the refresh."""

    def __init__(self, desk: Desk, clock: Callable[[], datetime] = utcnow) -> None:
        self._desk = desk
        self.clock = clock
        self.chats = AgentChats()
        # Pacing after a failed getChatMember (how often Telegram is asked, never who is an agent): the sweep's pause,
        # and per user when to ask again and how long to wait after that.
        self._paused_until = datetime.min.replace(tzinfo=UTC)
        self._retry: dict[int, tuple[datetime, timedelta]] = {}

    def handlers(self) -> list[BaseHandler[Any, Any, Any]]:
        """The chat_member updates of the agents' group (sent to a bot that is an admin there, when asked for)."""
        if not self._desk.enabled:
            return []
        return [ChatMemberHandler(self.on_chat_member, ChatMemberHandler.CHAT_MEMBER, chat_id=self._desk.group)]

    async def on_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Someone joined, left or was removed from the agents' group."""
        new = update.chat_member.new_chat_member
        member = member_of(new)
        if member is not None:
            await self.settle(new.user.id, member, self.clock(), news=True)

    async def ask(self, user_id: int) -> bool | None:
        """Whether Telegram says this user is in the agents' group; None when it could not be asked."""
        try:
            return member_of(await self._desk.bot.get_chat_member(self._desk.group, user_id))
        except TelegramError as exc:
            log.warning("could not check user %s's membership of the agents' group: %s", user_id, exc)
            return None

    async def settle(self, user_id: int, member: bool, at: datetime, *, news: bool) -> None:
        """Store what Telegram said at `at`; someone who left is retired, and told."""
        chat_id = await self._desk.step(settle, user_id, member, at, news)
        if chat_id is not None:
            self.chats.discard(chat_id)
            log.warning("user %s left the agents' group: their private chat is a customer chat again", user_id)
            await self._desk.direct(chat_id, LEFT_THE_GROUP)

    async def run(self) -> None:
        """Every REFRESH_SECONDS until cancelled: read the desks again, and ask Telegram about those due."""
        while True:
            try:
                seats = await self.chats.refresh(self._desk.sessions.read)
                due = self._due(seats)
                if due:
                    async with self._desk.shared.try_hold("members", 0) as held:
                        if held:  # one worker at a time asks Telegram
                            await self.sweep(due)
            except Exception:
                log.exception("the agents' membership sweep failed")
            await asyncio.sleep(REFRESH_SECONDS)

    def _due(self, seats: list[members.Seat]) -> list[int]:
        """The agents to ask about now: last checked SWEEP_EVERY ago or more (the longest ago first), unless asking
        failed a short while ago."""
        now = self.clock()
        if not self._desk.enabled or now < self._paused_until:
            return []
        self._retry = {
            user: retry for user, retry in self._retry.items() if any(s.telegram_user_id == user for s in seats)
        }
        due = [
            seat
            for seat in seats
            if (seat.checked_at is None or now - seat.checked_at >= SWEEP_EVERY)
            and (seat.telegram_user_id not in self._retry or self._retry[seat.telegram_user_id][0] <= now)
        ]
        due.sort(key=lambda seat: (seat.checked_at is not None, seat.checked_at or now))
        return [seat.telegram_user_id for seat in due[:SWEEP_BATCH]]

    async def sweep(self, user_ids: list[int]) -> None:
        """Ask Telegram about each agent. At a failure, stop for RETRY_FIRST: Telegram is struggling (that agent
        waits longer each time it fails)."""
        for user_id in user_ids:
            asked = self.clock()
            member = await self.ask(user_id)
            if member is None:
                wait = self._retry[user_id][1] if user_id in self._retry else RETRY_FIRST
                self._retry[user_id] = (asked + wait, min(wait * 2, SWEEP_EVERY))
                self._paused_until = asked + RETRY_FIRST
                return
            self._retry.pop(user_id, None)
            await self.settle(user_id, member, asked, news=False)


def settle(u: Unit, user_id: int, member: bool, at: datetime, news: bool) -> int | None:
    """Telegram said at `at` whether this user is in the agents' group (`news`: an update, which may also bring
    someone back; else the sweep's answer, which only confirms or retires). Someone who left is retired: the private
    chat that was their desk is returned."""
    agent = members.locked(u.session, user_id)
    if agent is None:
        return None  # not someone who ever acted as an agent
    checked = agent.membership_checked_at
    if not news and checked is not None and checked > at:
        return None  # newer word came while Telegram was asked
    agent.membership_checked_at = at
    if member:
        agent.in_group = agent.in_group or news
        return None
    chat_id = agent.private_chat_id
    retire(u, agent)
    return chat_id


def retire(u: Unit, agent: Agent) -> None:
    """An agent left the agents' group: their private chat is theirs no more; their customers go back in the queue."""
    agent.in_group = False
    agent.private_chat_id = None
    for claimed in handoffs.claimed_by(u.session, agent.id):
        lifecycle.requeue(u, claimed, admin="The desk", holder=agent.first_name)
