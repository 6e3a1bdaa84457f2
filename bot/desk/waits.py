"""What a waiting customer is told of their wait: their place in line and about how long until a person is with them
(position k waits about k ÷ the recent pace of pick-ups, bot/storage/waits.py); then, while they wait, an update when
either changes a lot, at most once every UPDATE_EVERY (10 minutes), whatever the agents' group is told meanwhile.

"A lot", against what the customer was last told:
- their place moved by at least half of the place they were told (10th → 5th, 4th → 2nd, 2nd → 1st; 1st → 2nd when
  someone more urgent goes ahead);
- or the moment they can expect someone moved by at least MIN_SHIFT (5 minutes) and at least half the wait they were
  told: told "about 15 minutes" at 10:00, they expect someone by 10:15; at 10:10 the estimate for their place says
  they should now expect someone by 10:40, a shift of 25 minutes: they are told. A line that moves as foretold shifts
  nothing, however its numbers count down;
- or there was an estimate and now there is none, or the other way round.
A customer never told their place while the team was open (they asked out of hours) is told it once the team is
back. Updates go only while the team is open, like the group's re-announcements.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import replies
from bot.desk.unit import Unit
from bot.storage import handoffs, waits
from bot.storage.models import Handoff, utcnow

UPDATE_EVERY = timedelta(minutes=10)  # a customer hears of their wait at most this often
MIN_SHIFT = timedelta(minutes=5)  # a smaller move of the expected moment is no news


def duration_words(wait: timedelta) -> str:
    """A wait in words, rounded to what a customer can plan with: "about 15 minutes", "about 1.5 hours"."""
    minutes = max(1, round(wait.total_seconds() / 60))
    if minutes < 60:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60, 1)
    return f"about {hours:g} hour{'s' if hours != 1 else ''}"


def wait_words(wait: timedelta | None) -> str:
    """The wait as it follows the place in line in HANDOFF_QUEUED and WAIT_UPDATE; saying so when there is none."""
    if wait is None:
        return replies.HANDOFF_NO_ESTIMATE
    return replies.HANDOFF_WAIT.format(wait=duration_words(wait))


def changed_a_lot(
    *,
    told_position: int,
    told_wait: timedelta | None,
    told_at: datetime,
    position: int,
    wait: timedelta | None,
    now: datetime,
) -> bool:
    """Whether the place and wait now differ a lot from what the customer was told (the module's docstring)."""
    if 2 * abs(position - told_position) >= told_position:
        return True
    if told_wait is None or wait is None:
        return (told_wait is None) != (wait is None)
    shift = abs((now + wait) - (told_at + told_wait))
    return shift >= max(MIN_SHIFT, told_wait / 2)


def _now_for(u: Unit, handoff: Handoff, pace: waits.Pace) -> tuple[int, timedelta | None]:
    position = handoffs.place_in_line(u.session, handoff)
    return position, waits.estimate(pace, position, u.settings.wait_default_minutes_per_person)


def _remember(handoff: Handoff, now: datetime, position: int, wait: timedelta | None) -> None:
    handoff.told_at, handoff.told_position = now, position
    handoff.told_wait_seconds = round(wait.total_seconds()) if wait is not None else None


def place_text(u: Unit, handoff: Handoff, template: str) -> str:
    """The customer's place in line and about how long they wait (HANDOFF_QUEUED), remembered for the updates."""
    now = utcnow()
    position, wait = _now_for(u, handoff, waits.pace(u.session, u.settings.business_hours, now))
    _remember(handoff, now, position, wait)
    return template.format(position=position, wait=wait_words(wait))


def tell_changes(u: Unit) -> None:
    """Every waiting customer not told anything for UPDATE_EVERY whose place or wait changed a lot since is told the
    new ones (run by the desk's round while the team is open)."""
    now = utcnow()
    if not handoffs.wait_update_due(u.session, now - UPDATE_EVERY):
        return
    due = [h for h in handoffs.queued(u.session) if h.told_at is None or now - h.told_at >= UPDATE_EVERY]
    if not due:
        return
    pace = waits.pace(u.session, u.settings.business_hours, now)
    for handoff in due:
        position, wait = _now_for(u, handoff, pace)
        if handoff.told_at is not None and not changed_a_lot(
            told_position=handoff.told_position or position,
            told_wait=timedelta(seconds=handoff.told_wait_seconds) if handoff.told_wait_seconds is not None else None,
            told_at=handoff.told_at,
            position=position,
            wait=wait,
            now=now,
        ):
            continue
        u.tell(handoff.conversation, replies.WAIT_UPDATE.format(position=position, wait=wait_words(wait)))
        _remember(handoff, now, position, wait)
