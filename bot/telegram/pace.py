"""The app's own pacing of the messages it sends to Telegram: overall, and per private chat.

Telegram refuses (429) more than about 30 messages a second overall and, in a private chat, more than about one a
second on average after a short burst (bot/emulator/limits.py models both; a group's 20 a minute is
bot/telegram/group_pace.py's). python-telegram-bot's AIORateLimiter is a leaky bucket that lets 31 through in a
rolling second, and a refused message then waits out Telegram's "retry after" (1–2 s). Here a message waits only
for the room it needs, counted as Telegram counts: every message (an album's copies are each one) in a rolling
window; a chat action (sendChatAction) is no message and is not counted.

Telegram counts a message when its request arrives, which is some time after the request leaves and before its
answer is back; that time varies (a loaded machine, the network). So a message sent through `room` holds its place
in the overall count from the moment it may leave until a whole window after its answer came back, and its chat's
refill starts only when the answer is back: whatever the delay, Telegram never sees more than the pace allowed.

When there is no room, customers' answers go first (ANSWER), then everything else (FOLLOW_UP: the agents' group,
service messages); within a priority, first come first served. A message held by its own chat's allowance does not
hold up other chats'.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Callable

ANSWER, FOLLOW_UP = 0, 1
PER_SECOND = 28  # overall, a rolling second: just under Telegram's 30, for a second counted a little differently
CHAT_BURST = 5  # a private chat's burst and rate: Telegram's (bot/emulator/limits.py)
CHAT_PER_SECOND = 1.0
CHAT_LAG = 0.1  # seconds of a private chat's refill not counted after each send, for the same jitter


class _Bucket:
    """A private chat's allowance as Telegram keeps it: `burst` messages, refilled at `rate` a second; the refill
    since the last send is counted `lag` seconds short, for a request that reaches Telegram later than the one
    before it did."""

    def __init__(self, burst: int, rate: float, lag: float, now: float) -> None:
        self.burst, self.rate, self.lag = burst, rate, lag
        self.left, self.spent_at = float(burst), now - lag

    def tokens(self, now: float) -> float:
        return min(self.burst, self.left + max(0.0, now - self.spent_at - self.lag) * self.rate)

    def wait(self, now: float, count: int) -> float:
        missing = min(count, self.burst) - self.tokens(now)
        return 0.0 if missing <= 0 else missing / self.rate

    def spend(self, now: float, count: int) -> None:
        self.left, self.spent_at = self.tokens(now) - min(count, self.burst), now

    def landed(self, now: float) -> None:
        """The request is answered: it reached Telegram by now, so the refill is counted from now on."""
        self.spent_at = max(self.spent_at, now)


class Pace:
    """Hands out room to send: `async with pace.room(chat_id, count):` enters once the messages may leave now, and
    the request is made within."""

    def __init__(
        self,
        per_second: int = PER_SECOND,
        *,
        window: float = 1.0,
        chat_burst: int = CHAT_BURST,
        chat_per_second: float = CHAT_PER_SECOND,
        chat_lag: float = CHAT_LAG,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._limit = self._whole = per_second  # 0: no pacing of our own (a self-hosted Bot API server, no limits)
        self._window = window
        self._chat_burst, self._chat_rate, self._chat_lag = chat_burst, chat_per_second, chat_lag
        self._clock = clock
        self._sent: collections.deque[float] = collections.deque()  # when each message's answer came back
        self._in_flight = 0  # messages given room whose answer is not back yet
        self._chats: dict[int, _Bucket] = {}
        self._waiters: list[tuple[int, int, int | None, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    def share(self, processes: int) -> None:
        """Pace to this process's share of the overall allowance, `processes` sending (bot/telegram/send_share.py)."""
        if self._whole:
            self._limit = max(1, self._whole // max(1, processes))
            if self._waiters:
                self._wake.set()

    def has_room(self) -> bool:
        """Whether a message could leave now without making any waiting one wait longer (for "typing…")."""
        return not self._limit or (not self._waiters and self._overall_wait(self._now(), 1) <= 0)

    @contextlib.asynccontextmanager
    async def room(self, chat_id: int | None, count: int = 1, priority: int = ANSWER) -> AsyncIterator[None]:
        """Wait for room for `count` messages to `chat_id` (a private chat's allowance counts only for chats with a
        positive id; None: counted overall only); the request is sent within, and counted as having reached
        Telegram any time until it is answered (or failed)."""
        await self._room(chat_id, count, priority)
        try:
            yield
        finally:
            self._landed(chat_id, count)

    async def _room(self, chat_id: int | None, count: int, priority: int) -> None:
        if not self._limit or count <= 0:
            return
        if not self._waiters and self._wait(self._now(), chat_id, count) <= 0:
            self._spend(self._now(), chat_id, count)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), chat_id, count, future))
        self._wake.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run())
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._landed(chat_id, count)  # given room, then given up before sending: the room is free again
            raise

    async def _run(self) -> None:
        while self._waiters:
            wait = self._serve(self._now())
            if not self._waiters:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _serve(self, now: float) -> float:
        """Let go every waiter that fits now, in priority order; the seconds until the next may fit."""
        soonest, kept = self._window, []
        while self._waiters:
            entry = heapq.heappop(self._waiters)
            _, _, chat_id, count, future = entry
            if future.done():
                continue  # given up (cancelled)
            overall = self._overall_wait(now, count)
            if overall > 0:
                kept.append(entry)  # nobody behind it may take the room it waits for
                soonest = min(soonest, overall)
                break
            chat = self._chat_wait(now, chat_id, count)
            if chat > 0:
                kept.append(entry)  # its chat's allowance is spent: the other chats go on
                soonest = min(soonest, chat)
                continue
            self._spend(now, chat_id, count)
            future.set_result(None)
        for entry in kept:
            heapq.heappush(self._waiters, entry)
        return max(soonest, 0.001)

    def _wait(self, now: float, chat_id: int | None, count: int) -> float:
        return max(self._overall_wait(now, count), self._chat_wait(now, chat_id, count))

    def _overall_wait(self, now: float, count: int) -> float:
        while self._sent and self._sent[0] <= now - self._window:
            self._sent.popleft()
        overflow = self._in_flight + len(self._sent) + min(count, self._limit) - self._limit
        if overflow <= 0:
            return 0.0
        if overflow <= len(self._sent):
            return self._sent[overflow - 1] + self._window - now
        return self._window  # the room frees a window after an answer still to come (which wakes the waiters)

    def _chat_wait(self, now: float, chat_id: int | None, count: int) -> float:
        if chat_id is None or chat_id < 0:
            return 0.0  # groups: bot/telegram/group_pace.py
        bucket = self._chats.get(chat_id)
        return bucket.wait(now, count) if bucket else 0.0

    def _spend(self, now: float, chat_id: int | None, count: int) -> None:
        self._in_flight += count
        if chat_id is not None and chat_id > 0:
            bucket = self._chats.get(chat_id) or _Bucket(self._chat_burst, self._chat_rate, self._chat_lag, now)
            bucket.spend(now, count)
            self._chats[chat_id] = bucket
        if len(self._chats) > 10_000:  # forget chats whose allowance is full again
            self._chats = {k: b for k, b in self._chats.items() if b.tokens(now) < b.burst}

    def _landed(self, chat_id: int | None, count: int) -> None:
        if not self._limit or count <= 0:
            return
        now = self._now()
        self._in_flight -= count
        self._sent.extend([now] * count)
        bucket = self._chats.get(chat_id) if chat_id is not None else None
        if bucket is not None:
            bucket.landed(now)
        if self._waiters:
            self._wake.set()
