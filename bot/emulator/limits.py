"""Telegram's flood limits for sending messages: per chat and overall."""

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

Clock = Callable[[], float]


@dataclass(frozen=True)
class LimitConfig:
    """Flood-limit settings; the defaults are Telegram's documented ones."""

    enabled: bool = True
    private_burst: int = 5
    private_per_second: float = 1.0
    group_per_minute: int = 20
    group_window: float = 60.0
    global_per_second: int = 30
    global_window: float = 1.0

    def updated(self, changes: dict[str, Any]) -> "LimitConfig":
        """A copy with the given fields changed; unknown names are rejected."""
        known = {item.name: item.type for item in fields(self)}
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown limit settings: {', '.join(sorted(unknown))}")
        return replace(self, **{name: _coerce(known[name], value) for name, value in changes.items()})

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return asdict(self)


def _coerce(kind: Any, value: Any) -> Any:
    name = kind if isinstance(kind, str) else kind.__name__
    if name == "bool":
        return bool(value)
    number = float(value)
    if number <= 0:
        raise ValueError("limits must be positive")
    return int(number) if name == "int" else number


def _whole_seconds(seconds: float) -> int:
    """Telegram's retry_after: whole seconds, at least one."""
    return max(1, math.ceil(seconds - 1e-9))


class TokenBucket:
    """A bucket of `burst` tokens refilled at `rate` per second."""

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self._burst = burst
        self._rate = rate
        self._tokens = float(burst)
        self._updated = now

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    def wait_time(self, now: float, count: int = 1) -> float:
        """Seconds until `count` tokens are available (0 if they are); never more than a full bucket."""
        needed = min(count, self._burst)
        self._refill(now)
        return 0.0 if self._tokens >= needed else (needed - self._tokens) / self._rate

    def take(self, now: float, count: int = 1) -> None:
        """Use `count` tokens (a full bucket at most)."""
        self._refill(now)
        self._tokens -= min(count, self._burst)


class RollingWindow:
    """At most `limit` events in any `window` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._events: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._events and self._events[0] <= now - self._window:
            self._events.popleft()

    def wait_time(self, now: float, count: int = 1) -> float:
        """Seconds until `count` more events fit (0 if they do); never more than a whole window's worth."""
        needed = min(count, self._limit)
        self._expire(now)
        overflow = len(self._events) + needed - self._limit
        if overflow <= 0:
            return 0.0
        return self._events[overflow - 1] + self._window - now

    def take(self, now: float, count: int = 1) -> None:
        """Record `count` events at once."""
        self._expire(now)
        self._events.extend([now] * min(count, self._limit))


class RateLimiter:
    """Checks and records message sends against the configured limits."""

    def __init__(self, config: LimitConfig | None = None, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.configure(config or LimitConfig())

    @property
    def config(self) -> LimitConfig:
        """The settings in force."""
        return self._config

    def configure(self, config: LimitConfig) -> None:
        """Apply new settings and forget past sends."""
        self._config = config
        self._private: dict[int, TokenBucket] = {}
        self._groups: dict[int, RollingWindow] = {}
        self._global = RollingWindow(config.global_per_second, config.global_window)

    def acquire(self, chat_id: int, is_private: bool, count: int = 1) -> int | None:
        """Record `count` messages sent to the chat in one request (an album, say); if a limit is hit, record
        nothing and return retry_after.

        A request never needs more than a full allowance: a 10-item album passes a private chat's 5-message burst
        once the bucket is full, as Telegram does deliver it.
        """
        if not self._config.enabled:
            return None
        now = self._clock()
        chat_limit = self._private_bucket(chat_id, now) if is_private else self._group(chat_id)
        wait = max(chat_limit.wait_time(now, count), self._global.wait_time(now, count))
        if wait > 0:
            return _whole_seconds(wait)
        chat_limit.take(now, count)
        self._global.take(now, count)
        return None

    def _private_bucket(self, chat_id: int, now: float) -> TokenBucket:
        if chat_id not in self._private:
            self._private[chat_id] = TokenBucket(self._config.private_burst, self._config.private_per_second, now)
        return self._private[chat_id]

    def _group(self, chat_id: int) -> RollingWindow:
        if chat_id not in self._groups:
            self._groups[chat_id] = RollingWindow(self._config.group_per_minute, self._config.group_window)
        return self._groups[chat_id]
