"""The app's one clock: every date and time of day in `bot/` and `actions/` is read through `now()`.

It runs with the wall clock, shifted when `FRONTLINE_CLOCK` names another start: with
`FRONTLINE_CLOCK=2027-03-27T23:30:00+00:00` the clock shows that moment when the process starts and runs on from
there. The process writes the real instant it started into the variable (`…@<unix seconds>`), so the processes it
starts continue the same timeline rather than starting again. A malformed value is refused at import.

Tests set it with `set_to`, `freeze` and `advance` (the `clock` fixture in `tests/conftest.py`) and `reset` it
afterwards. Monotonic timers for timeouts and pacing (`time.monotonic`, `loop.time()`) are not dates and stay as
they are. This module imports nothing of the app, so storage and configuration may use it.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

VARIABLE = "FRONTLINE_CLOCK"
EXAMPLE = "2027-03-27T23:30:00+00:00"


class ClockError(ValueError):
    """FRONTLINE_CLOCK is not a moment the clock can start at; the message says what is expected."""


def _wall() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


def parse(value: str) -> tuple[datetime, datetime | None]:
    """`MOMENT` or `MOMENT@UNIX_SECONDS` → (the moment, the real instant it was shown at, or None for "now")."""
    moment_text, at, anchor_text = value.strip().partition("@")
    try:
        moment = datetime.fromisoformat(moment_text)
        anchor = datetime.fromtimestamp(float(anchor_text), UTC) if at else None
    except (ValueError, OverflowError, OSError):
        raise ClockError(
            f"{VARIABLE} must be an ISO 8601 moment with its UTC offset, like {EXAMPLE}; got {value!r}"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ClockError(
            f"{VARIABLE} must say its UTC offset (like {EXAMPLE}), or the moment is ambiguous; got {value!r}"
        )
    return moment.astimezone(UTC), anchor


def _from_environment() -> timedelta:
    """The shift FRONTLINE_CLOCK asks for (zero when unset), pinned in the variable for the processes started later."""
    value = os.environ.get(VARIABLE, "").strip()
    if not value:
        return timedelta(0)
    moment, anchor = parse(value)
    if anchor is None:
        anchor = _wall()
        os.environ[VARIABLE] = f"{moment.isoformat()}@{anchor.timestamp()}"
    return moment - anchor


_START_SHIFT = _from_environment()
_shift = _START_SHIFT
_frozen: datetime | None = None


def now() -> datetime:
    """Timezone-aware now in UTC: the wall clock, shifted or frozen as set."""
    return _frozen if _frozen is not None else _wall() + _shift


def set_to(moment: datetime, *, frozen: bool = False) -> None:
    """Make the clock show `moment` (aware) now, then run on from there, or stay there when `frozen`."""
    global _shift, _frozen
    if moment.tzinfo is None:
        raise ValueError("the clock is set to an aware moment, not a naive one")
    moment = moment.astimezone(UTC)
    _frozen, _shift = (moment, _shift) if frozen else (None, moment - _wall())


def freeze() -> datetime:
    """Stop the clock where it is; it moves only with `advance` and `set_to` until `reset`."""
    global _frozen
    _frozen = now()
    return _frozen


def advance(by: timedelta) -> datetime:
    """Move the clock forward (or back, with a negative `by`), frozen or running."""
    global _shift, _frozen
    if _frozen is not None:
        _frozen += by
    else:
        _shift += by
    return now()


def reset() -> None:
    """Back to the clock the process started with: the wall clock, or FRONTLINE_CLOCK's."""
    global _shift, _frozen
    _shift, _frozen = _START_SHIFT, None
