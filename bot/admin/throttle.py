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

The counts live in the database (`bot.storage.attempt_counts`), so every process and machine of the app counts the
same failures: N instances behind one address allow no more guesses than one. Each attempt's counts are moved in one
transaction holding both (the address's first), so attempts side by side on several machines take turns; forgotten
counts are deleted as attempts come (at most PRUNE_AT_ONCE each time), and by the desk's housekeeping once they
are KEPT_AT_MOST old, so no address or name stays in the database long after sign-ins stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.storage import attempt_counts
from bot.storage.attempt_counts import Count
from bot.storage.db import Sessions

FREE = 3
FIRST_DELAY = 1.0
USER_MAX_WAIT = 20.0
ADDRESS_MAX_WAIT = 10.0
ADDRESS_MAX_DELAY = 15 * 60.0
FORGET = timedelta(minutes=15)  # at most attempt_counts.KEPT_AT_MOST: the desk's housekeeping deletes older counts
NAME_CHARS = 64  # longer names cannot exist (accounts.USERNAME); a key never holds more of one
BY_ADDRESS, BY_NAME = "login-address", "login-name"


def delay(failures: int, cap: float) -> float:
    """Seconds to wait after this many failures: none for the first FREE, then doubling from FIRST_DELAY, at most cap."""
    if failures < FREE:
        return 0.0
    return min(cap, FIRST_DELAY * 2.0 ** min(failures - FREE, 32))


@dataclass(frozen=True)
class Pass:
    """The throttle's word on one attempt: refused at once, or wait this long and then check the password."""

    wait: float
    refused: bool
    address: str = ""
    username: str = ""
    counted_since: tuple[datetime, datetime] | None = None  # the two counts it was counted in (address, name)


async def admit(sessions: Sessions, address: str, username: str, now: datetime) -> Pass:
    """Let an attempt through (counted as a failure until settled) or refuse it; either way say how long to wait."""
    return await sessions.run(_admit, address, username[:NAME_CHARS], now)


async def settle(sessions: Sessions, passed: Pass, right: bool, now: datetime) -> None:
    """The attempt's password was right (`right`): it was not a failure after all."""
    if right and passed.counted_since is not None:
        await sessions.run(_give_back, passed, now)


def _admit(session: Session, address: str, username: str, now: datetime) -> Pass:
    by_address = attempt_counts.hold(session, BY_ADDRESS, address, now, FORGET)
    start = max(now, by_address.not_before)
    address_wait = (start - now).total_seconds()
    if address_wait > ADDRESS_MAX_WAIT:
        return Pass(0.0, True)
    by_name = attempt_counts.hold(session, BY_NAME, username, now, FORGET)
    wait = max(address_wait, delay(by_name.failures, USER_MAX_WAIT))
    failures = by_address.failures + 1
    not_before = start + timedelta(seconds=delay(failures, ADDRESS_MAX_DELAY))
    attempt_counts.put(session, BY_ADDRESS, address, Count(failures, by_address.since, start, not_before), now)
    named = Count(by_name.failures + 1, by_name.since, start, by_name.not_before)
    attempt_counts.put(session, BY_NAME, username, named, now)
    attempt_counts.prune(session, now - FORGET)
    return Pass(wait, False, address, username, (by_address.since, by_name.since))


def _give_back(session: Session, passed: Pass, now: datetime) -> None:
    assert passed.counted_since is not None
    address_since, name_since = passed.counted_since
    attempt_counts.give_back(session, BY_ADDRESS, passed.address, address_since, now)
    attempt_counts.give_back(session, BY_NAME, passed.username, name_since, now)
