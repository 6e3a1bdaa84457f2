"""The emulator's in-memory world: users, chats, messages, updates and logs."""

import asyncio
import bisect
import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot import clock
from bot.emulator.faults import FaultBook
from bot.emulator.limits import LimitConfig, RateLimiter
from bot.emulator.media import FileStore

T = TypeVar("T")
JSON = dict[str, Any]

TOKEN_PATTERN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
DEFAULT_BOT_USERNAME = "frontline_test_bot"
DEFAULT_BOT_NAME = "Frontline Test Bot"
LOG_CAPACITY = 100_000
# Telegram's default when allowed_updates was never set: all but these.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass
class User:
    """A Telegram user the tests control."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    blocked: bool = False
    started: bool = True

    def as_json(self) -> JSON:
        """The User object."""
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for name in ("last_name", "username", "language_code"):
            if getattr(self, name):
                user[name] = getattr(self, name)
        return user


@dataclass
class Topic:
    """A forum topic; its id is the id of the service message that created it."""

    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False

    def as_json(self) -> JSON:
        """The ForumTopic object."""
        topic: JSON = {
            "message_thread_id": self.thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            topic["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return topic


@dataclass
class Chat:
    """A private chat, group or supergroup the bot is in."""

    id: int
    type: str
    title: str | None = None
    user: User | None = None
    username: str | None = None
    is_forum: bool = False
    members: set[int] = field(default_factory=set)
    admins: set[int] = field(default_factory=set)
    # Banned users, and restricted ones with their permissions (restricted users may also have left: `members`).
    kicked: set[int] = field(default_factory=set)
    restricted: dict[int, JSON] = field(default_factory=dict)
    owner_id: int | None = None
    # The bot is an administrator when it has rights; `bot_status` says whether it is in the group at all.
    bot_rights: JSON | None = None
    bot_status: str = "member"
    messages: dict[int, JSON] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    last_message_id: int = 0

    @property
    def is_private(self) -> bool:
        """Whether this is a one-to-one chat with a user."""
        return self.type == "private"

    def new_message_id(self) -> int:
        """The next message id; ids are per chat and never reused."""
        self.last_message_id += 1
        return self.last_message_id

    def compose(
        self,
        sender: JSON,
        content: JSON,
        thread_id: int | None = None,
        reply_to: JSON | None = None,
        reply_markup: JSON | None = None,
    ) -> JSON:
        """Store a new message in this chat and return it."""
        message: JSON = {
            "message_id": self.new_message_id(),
            "from": sender,
            "date": int(clock.now().timestamp()),
            "chat": self.as_json(),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
            # Telegram shows a topic message that replies to nothing as a reply
            # to the topic's creation message.
            reply_to = reply_to or self.messages.get(thread_id)
        if reply_to is not None:
            message["reply_to_message"] = embedded(reply_to)
        message.update(content)
        if reply_markup is not None:
            message["reply_markup"] = reply_markup
        self.messages[message["message_id"]] = message
        return message

    def as_json(self) -> JSON:
        """The short Chat object embedded in messages."""
        if self.user is not None:
            chat: JSON = {"id": self.id, "type": "private", "first_name": self.user.first_name}
            if self.user.last_name:
                chat["last_name"] = self.user.last_name
            if self.user.username:
                chat["username"] = self.user.username
            return chat
        chat = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            chat["username"] = self.username
        if self.is_forum:
            chat["is_forum"] = True
        return chat


def embedded(message: JSON) -> JSON:
    """A message as nested in another: Telegram does not nest replies further."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


class Signal:
    """Wakes every waiter whenever something observable changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake all current waiters."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, check: Callable[[], T | None], timeout: float) -> T | None:
        """Re-run `check` on every change until it returns a value or `timeout` passes."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            result = check()
            remaining = deadline - time.monotonic()
            if result is not None or remaining <= 0:
                return result
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass


def update_type(update: JSON) -> str:
    """The kind of an Update: the name of its one payload field."""
    return next(key for key in update if key != "update_id")


class SeqLog:
    """An append-only log with increasing `seq`, bounded in size."""

    def __init__(self, capacity: int = LOG_CAPACITY) -> None:
        self._entries: list[JSON] = []
        self._capacity = capacity

    def append(self, seq: int, entry: JSON) -> JSON:
        """Add an entry under the given sequence number."""
        entry = {"seq": seq, **entry}
        self._entries.append(entry)
        if len(self._entries) > 2 * self._capacity:
            del self._entries[: -self._capacity]
        return entry

    def after(self, seq: int) -> list[JSON]:
        """Entries with a sequence number above `seq`."""
        start = bisect.bisect_right(self._entries, seq, key=lambda entry: entry["seq"])
        return self._entries[start:]

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


class EmulatorState:
    """Everything the emulator knows, in memory."""

    def __init__(self, bot_username: str = DEFAULT_BOT_USERNAME, bot_name: str = DEFAULT_BOT_NAME) -> None:
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.changed = Signal()
        self.closing = False
        # The control API needs the bot's identity, which only Bot API calls reveal.
        self.bot = self.bot_user("")
        self.poll_generation = 0
        # Counters survive `reset` so that a bot which keeps running across tests
        # never sees an update id go back (it would skip them as confirmed).
        self._counters: dict[str, int] = {
            "update": 0,
            "seq": 0,
            "call": 0,
            "user": 700_000_000,
            "group": 0,
            "callback": 0,
            "media_group": 0,
        }
        self._clear()

    def _clear(self) -> None:
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.files = FileStore()
        self.updates: list[JSON] = []
        self.allowed_updates: list[str] | None = None
        self.sent = SeqLog()
        self.calls = SeqLog()
        self.callbacks: dict[str, JSON] = {}
        self.commands: dict[str, list[JSON]] = {}
        self.webhook: JSON = {}
        self.faults = FaultBook()
        self.limiter = RateLimiter(LimitConfig())

    def reset(self) -> None:
        """Forget all data (not the counters) and wake every long poll."""
        self._clear()
        self.changed.notify()

    def close(self) -> None:
        """End every long poll now; used when the server stops."""
        self.closing = True
        self.changed.notify()

    def continue_updates_after(self, update_id: int) -> None:
        """Number new updates after this one: a bot that stored updates from an earlier emulator run
        would take repeated ids for ones it has seen (as Telegram's ids never go back)."""
        self._counters["update"] = max(self._counters["update"], update_id)

    def next_id(self, name: str) -> int:
        """The next value of a counter that never goes back."""
        self._counters[name] += 1
        return self._counters[name]

    def bot_user(self, token: str) -> JSON:
        """The bot's User object; its id is the number before the token's colon."""
        match = TOKEN_PATTERN.match(token)
        bot_id = int(match.group(1)) if match else 0
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    def find_chat(self, chat_id: int | str) -> Chat | None:
        """A chat by id or public @username (users are never found by username)."""
        if isinstance(chat_id, int):
            return self.chats.get(chat_id)
        username = chat_id.removeprefix("@").lower()
        return next(
            (
                chat
                for chat in self.chats.values()
                if not chat.is_private and chat.username and chat.username.lower() == username
            ),
            None,
        )

    def push_update(self, kind: str, payload: JSON) -> JSON:
        """Queue an update for getUpdates."""
        update = {"update_id": self.next_id("update"), kind: payload}
        self.updates.append(update)
        self.changed.notify()
        return update

    def confirm_updates(self, offset: int) -> None:
        """Apply getUpdates' offset: drop confirmed updates (negative: keep the last -offset)."""
        if offset > 0:
            self.updates = [update for update in self.updates if update["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]

    def deliverable_updates(self, limit: int) -> list[JSON]:
        """Queued updates of allowed types; others are dropped as Telegram never sends them."""
        self.updates = [update for update in self.updates if self._is_allowed(update)]
        return self.updates[:limit]

    def _is_allowed(self, update: JSON) -> bool:
        if self.allowed_updates:
            return update_type(update) in self.allowed_updates
        return update_type(update) not in OPT_IN_UPDATES

    def record_sent(self, entry: JSON) -> JSON:
        """Log a message the bot sent or edited, with a snapshot of the message."""
        recorded = self.sent.append(self.next_id("seq"), copy.deepcopy(entry))
        self.changed.notify()
        return recorded

    def begin_call(self, method: str, params: JSON) -> JSON:
        """Log a Bot API call as it arrives; `status` stays None until it is answered."""
        entry = {
            "method": method,
            "params": params,
            "status": None,
            "description": None,
            "fault": None,
            "time": clock.now().timestamp(),
            "duration": None,
            "retry_after": None,
        }
        recorded = self.calls.append(self.next_id("call"), entry)
        self.changed.notify()
        return recorded

    def finish_call(self, entry: JSON, status: int, description: str | None, retry_after: int | None = None) -> None:
        """Complete a logged call with its HTTP status (0: connection dropped) and, for a 429, its retry_after.

        `time` is when the call arrived, `time + duration` when it was answered (both read from `bot.clock`).
        """
        entry.update(
            status=status,
            description=description,
            duration=round(clock.now().timestamp() - entry["time"], 6),
            retry_after=retry_after,
        )
        self.changed.notify()

    def sent_after(self, after: int, chat_id: int | None = None) -> list[JSON]:
        """Logged messages after a seq, optionally for one chat."""
        entries = self.sent.after(after)
        if chat_id is None:
            return entries
        return [entry for entry in entries if entry["chat_id"] == chat_id]
