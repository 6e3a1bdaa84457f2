"""Sign-in throttling by client address and by username: a delay that grows with each failure, never a hard lock.

An attempt counts as a failure from the moment it is let through until it proves right, so attempts sent side by
side are slowed as if each had already failed. A count is forgotten FORGET after its last attempt.

- By username (any name, whether an account has it or not, so the delay tells nothing about who exists): after
  FREE failures each attempt first waits FIRST_DELAY, doubled with each further failure, up to USER_MAX_WAIT, and is
  then checked like any other. The right password always gets in, at worst after USER_MAX_WAIT: nobody can keep an
  admin out by guessing at their name from many addresses.
- By client address: the same growing delay between one attempt and the next; an attempt that would have to wait
  longer than ADDRESS_MAX_WAIT is refused at once, with the answer a wrong password gets. Only that address's own
  failures slow it down.

The counts live in this process (each worker of several keeps its own); at most MAX_KEYS of each kind are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

FREE = 3
FIRST_DELAY = 1.0
USER_MAX_WAIT = 20.0
ADDRESS_MAX_WAIT = 10.0
ADDRESS_MAX_DELAY = 15 * 60.0
FORGET = timedelta(minutes=15)
MAX_KEYS = 10_000
NAME_CHARS = 64  # longer names cannot exist (accounts.USERNAME); a key never holds more of one


def delay(failures: int, cap: float) -> float:
    """Seconds to wait after this many failures: none for the first FREE, then doubling from FIRST_DELAY, at most cap."""
    if failures < FREE:
        return 0.0
    return min(cap, FIRST_DELAY * 2.0 ** min(failures - FREE, 32))


@dataclass
class _Count:
    failures: int
    last: datetime  # the latest attempt let through
    not_before: datetime  # by address: no attempt starts earlier


@dataclass(frozen=True)
class Pass:
    """The throttle's word on one attempt: refused at once, or wait this long and then check the password."""

    wait: float
    refused: bool
    settle: Callable[[bool], None]  # call with True when the password was right: it was not a failure after all


class Throttle:
    """Counts of recent failures by client address and by username (see the module's text)."""

    def __init__(self) -> None:
        self._addresses: dict[str, _Count] = {}
        self._names: dict[str, _Count] = {}

    def admit(self, address: str, username: str, now: datetime) -> Pass:
        """Let an attempt through (counted as a failure until settled) or refuse it; either way say how long to wait."""
        by_address = _current(self._addresses, address, now)
        start = max(now, by_address.not_before)
        address_wait = (start - now).total_seconds()
        if address_wait > ADDRESS_MAX_WAIT:
            return Pass(0.0, True, lambda right: None)
        by_name = _current(self._names, username[:NAME_CHARS], now)
        wait = max(address_wait, delay(by_name.failures, USER_MAX_WAIT))
        for count in (by_address, by_name):
            count.failures += 1
            count.last = start
        by_address.not_before = start + timedelta(seconds=delay(by_address.failures, ADDRESS_MAX_DELAY))

        def settle(right: bool) -> None:
            if right:
                for count in (by_address, by_name):
                    count.failures = max(0, count.failures - 1)

        return Pass(wait, False, settle)


def _current(counts: dict[str, _Count], key: str, now: datetime) -> _Count:
    """The key's count, started afresh when forgotten; the oldest counts go when there are too many."""
    count = counts.get(key)
    if count is None or now - count.last > FORGET:
        if count is None and len(counts) >= MAX_KEYS:
            _prune(counts, now)
        count = counts[key] = _Count(0, now, now)
    return count


def _prune(counts: dict[str, _Count], now: datetime) -> None:
    for key in [key for key, count in counts.items() if now - count.last > FORGET]:
        del counts[key]
    if len(counts) >= MAX_KEYS:
        for key in sorted(counts, key=lambda k: counts[k].last)[: len(counts) - MAX_KEYS * 3 // 4]:
            del counts[key]
