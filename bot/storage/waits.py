"""Honest waits: how fast the line moves, and about how long the k-th in line waits.

The pace is measured over the last hour of open time. Going back from `now`, the open stretches of the business
hours (bot/hours.py) are taken until OPEN_WINDOW (60 minutes) is covered; closed stretches are skipped, so at 09:00 on
a Monday the window is Friday's last open hour. The search goes back at most LOOKBACK (7 days: a week holds every
weekday's hours); a week with less open time than that gives all of it.

Within that window:
- busy minutes are the open minutes during which at least one customer was waiting in line. A request waits from
  when it was made (`queued_at`) until it was claimed (`claimed_at`), or until it ended unclaimed (`closed_at`: the
  customer cancelled, or a block closed it), or until now while it still waits (a conversation passed back to the
  line waits again from its first request, as it keeps its place). Requests cancelled while waiting count for as
  long as they waited: their minutes are busy minutes but their leaving is no pick-up, so a long line that people
  gave up on does not look fast. Minutes when nobody waited do not count at all, so a line that was empty most of
  the hour does not look slow.
- pick-ups are the claims made within the window of requests that stood in line: claimed at least PICKED_UP_AFTER
  (a second) after they were made. An agent reaching out to a customer, or taking back a conversation they had just
  closed, never put anyone in line.
- the rate is pick-ups ÷ busy minutes, and position k waits about k ÷ rate: k × busy minutes ÷ pick-ups.

With fewer than MIN_BUSY (10) busy minutes there is too little history to measure a pace: each person counts for
the stated default (WAIT_DEFAULT_MINUTES_PER_PERSON, 5 minutes). With enough busy minutes but no pick-up in them there
is no estimate (None): nobody has been picked up for all that time, and any number would be a guess.

Example: 6 pick-ups in the last open hour with someone waiting for 30 of its minutes: 0.2 a minute, so the third in
line waits about 15 minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from bot.hours import BusinessHours
from bot.storage.models import Handoff, HandoffStatus

OPEN_WINDOW = timedelta(hours=1)  # the open time the pace is measured over
LOOKBACK = timedelta(days=7)  # how far back the window may reach to cover it
MIN_BUSY = timedelta(minutes=10)  # less time with someone waiting is too little history to measure a pace
PICKED_UP_AFTER = timedelta(seconds=1)  # a claim sooner than this after the request: nobody stood in line

Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class Pace:
    """What the last open hour says about the line: pick-ups, and the open time someone was waiting."""

    pickups: int
    busy: timedelta

    @property
    def per_minute(self) -> float | None:
        """Pick-ups a minute while someone waited; None with too little history to say."""
        if self.busy < MIN_BUSY:
            return None
        return self.pickups / (self.busy.total_seconds() / 60)


def open_window(hours: BusinessHours, now: datetime, want: timedelta = OPEN_WINDOW) -> list[Span]:
    """The most recent open stretches (UTC, newest first) that add up to `want`, within LOOKBACK of `now`."""
    now = now.astimezone(UTC)
    if hours.always_open:
        return [(now - want, now)]
    spans: list[Span] = []
    covered, earliest = timedelta(0), now - LOOKBACK
    local = now.astimezone(hours.zone)
    for back in range(LOOKBACK.days + 1):
        day = local.date() - timedelta(days=back)
        times = hours.days.get(day.weekday())
        if times is None:
            continue
        # In UTC before any arithmetic: a difference of two local times ignores a change of the clocks.
        opening = datetime.combine(day, times[0], tzinfo=hours.zone).astimezone(UTC)
        closing = datetime.combine(day, times[1], tzinfo=hours.zone).astimezone(UTC)
        start, end = max(opening, earliest), min(closing, now)
        if end <= start:
            continue
        take = min(end - start, want - covered)
        spans.append((end - take, end))
        covered += take
        if covered >= want:
            break
    return spans


def busy_time(waits: Iterable[Span], window: Sequence[Span]) -> timedelta:
    """The time within the window's spans during which at least one of the waits was going on."""
    total = timedelta(0)
    for start, end in window:
        clipped = sorted((max(a, start), min(b, end)) for a, b in waits if a < end and b > start)
        reach: datetime | None = None
        for a, b in clipped:
            if reach is None or a > reach:
                total += b - a
                reach = b
            elif b > reach:
                total += b - reach
                reach = b
    return total


def pace_of(waits: Iterable[Span], pickups: Iterable[datetime], window: Sequence[Span]) -> Pace:
    """The pace from the waits in line (from request to claim or leaving) and the moments of pick-ups."""
    counted = sum(1 for moment in pickups if any(start <= moment < end for start, end in window))
    return Pace(pickups=counted, busy=busy_time(waits, window))


def _waited_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    """A request whose wait in line overlapped this stretch (or was claimed within it): made before its end and
    still waiting, or claimed or ended unclaimed after its start."""
    return and_(
        Handoff.queued_at < end,
        or_(
            Handoff.status == HandoffStatus.QUEUED,
            Handoff.claimed_at >= start,
            and_(Handoff.claimed_at.is_(None), or_(Handoff.closed_at.is_(None), Handoff.closed_at >= start)),
        ),
    )


def pace(session: Session, hours: BusinessHours, now: datetime) -> Pace:
    """How fast the line has moved over the last hour of open time (the module's docstring has the rules)."""
    window = open_window(hours, now)
    if not window:
        return Pace(pickups=0, busy=timedelta(0))
    rows = session.execute(
        select(Handoff.status, Handoff.queued_at, Handoff.claimed_at, Handoff.closed_at).where(
            Handoff.queued_at < now, or_(*(_waited_in(start, end) for start, end in window))
        )
    ).all()
    waits: list[Span] = []
    pickups: list[datetime] = []
    for status, queued_at, claimed_at, closed_at in rows:
        if status is HandoffStatus.QUEUED:
            waits.append((queued_at, now))
        elif claimed_at is not None:
            waits.append((queued_at, claimed_at))
            if claimed_at - queued_at >= PICKED_UP_AFTER:
                pickups.append(claimed_at)
        else:
            waits.append((queued_at, closed_at or now))
    return pace_of(waits, pickups, window)


def estimate(pace: Pace, position: int, default_minutes: float) -> timedelta | None:
    """About how long the customer at `position` (1: next) waits; None when there is no honest estimate."""
    if pace.busy < MIN_BUSY:
        return timedelta(minutes=position * default_minutes)
    if pace.pickups == 0:
        return None
    return position * pace.busy / pace.pickups  # k ÷ (pick-ups ÷ busy minutes)
