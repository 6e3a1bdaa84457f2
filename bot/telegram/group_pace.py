"""The app's own pacing of a group, counted the way Telegram counts: every message, so an album's copies are ten.

python-telegram-bot's rate limiter counts calls, and one copyMessages call of an album posts up to ten messages:
counted as one, it let the group's minute overflow, and Telegram's "retry after" then held back every message of
the group, new tickets' cards included. Here each message counts, and cards (and the topics they open) may use the
whole minute, while everything else (copies, notices, relays) keeps to part of it, so a card always finds room.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

WINDOW = 60.0
FOR_OTHERS = 0.5  # the share of a minute's messages that anything but a card may take


class GroupPace:
    """A rolling minute of messages sent per group."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = self._whole = per_minute  # 0: no pacing (a self-hosted Bot API server, or no limits)
        self._clock = clock
        self._sent: dict[int, collections.deque[float]] = {}

    def share(self, processes: int) -> None:
        """Pace to this process's share of each group's minute, `processes` sending (bot/telegram/send_share.py)."""
        if self._whole:
            self._limit = max(1, self._whole // max(1, processes))

    def wait(self, chat_id: int, count: int, *, card: bool) -> float:
        """Seconds until `count` messages may be sent to the group (0: now)."""
        if not self._limit:
            return 0.0
        allowed = self._limit if card else max(1, int(self._limit * FOR_OTHERS))
        sent = self._recent(chat_id)
        count = min(count, allowed)  # more than a minute's worth goes as soon as the minute is free
        if len(sent) + count <= allowed:
            return 0.0
        return max(0.0, sent[len(sent) + count - allowed - 1] + WINDOW - self._clock())

    def spend(self, chat_id: int, count: int) -> None:
        """`count` messages were just sent to the group."""
        if self._limit:
            now = self._clock()
            self._recent(chat_id).extend([now] * count)

    def _recent(self, chat_id: int) -> collections.deque[float]:
        sent = self._sent.setdefault(chat_id, collections.deque())
        while sent and sent[0] <= self._clock() - WINDOW:
            sent.popleft()
        return sent
