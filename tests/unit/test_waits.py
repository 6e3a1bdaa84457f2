"""Honest waits, the estimate (bot/storage/waits.py): fixed histories on SQLite and PostgreSQL give exact numbers;
hypothesis checks the promises for any history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from bot.hours import parse_hours
from bot.storage import handoffs, tickets, transcript, waits
from bot.storage.models import Handoff, HandoffStatus, TicketPriority

ALWAYS = parse_hours("", "UTC")
T = datetime(2026, 12, 9, 15, 0, tzinfo=UTC)  # a Wednesday afternoon
MONDAY = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)  # half an hour after opening, on a Monday
WEEKDAYS = parse_hours("Mon-Fri 09:00-17:00", "UTC")
_chats = count(1)


def _minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def _add(
    session: Session,
    queued_at: datetime,
    *,
    claimed_at: datetime | None = None,
    closed_at: datetime | None = None,
    status: HandoffStatus | None = None,
) -> Handoff:
    """A request in the history: when it was made, claimed, ended."""
    chat_id = next(_chats)
    customer = transcript.upsert_customer(session, telegram_user_id=chat_id, first_name=f"C{chat_id}")
    conversation = transcript.conversation_for_chat(session, chat_id=chat_id, customer=customer)
    ticket, _ = tickets.create(
        session,
        idempotency_key=f"k{chat_id}",
        conversation=conversation,
        category="other",
        description="help",
        desired_resolution="talk_to_person",
        priority=TicketPriority.NORMAL,
    )
    handoff, _ = handoffs.open_handoff(session, conversation=conversation, ticket=ticket, reason="x", context={})
    handoff.queued_at, handoff.claimed_at, handoff.closed_at = queued_at, claimed_at, closed_at
    handoff.status = status or (
        HandoffStatus.QUEUED
        if claimed_at is None and closed_at is None
        else HandoffStatus.CLOSED
        if claimed_at is not None
        else HandoffStatus.CANCELLED
    )
    session.flush()
    return handoff


async def test_six_pickups_in_half_an_hour_busy_put_the_third_in_line_fifteen_minutes_away(sessions) -> None:
    def history(session: Session) -> waits.Pace:
        for i in range(6):  # one after another from 14:10 to 14:40: someone waited for 30 of the last 60 minutes
            start = T - _minutes(50 - 5 * i)
            _add(session, start, claimed_at=start + _minutes(5), closed_at=start + _minutes(20))
        _add(session, T - _minutes(130), claimed_at=T - _minutes(70))  # before the hour: neither counted
        return waits.pace(session, ALWAYS, T)

    pace = await sessions.run(history)
    assert pace == waits.Pace(pickups=6, busy=_minutes(30))
    assert pace.per_minute == 0.2
    assert [waits.estimate(pace, k, 5.0) for k in (1, 3, 10)] == [_minutes(5), _minutes(15), _minutes(50)]


async def test_a_closed_stretch_is_skipped_back_to_the_last_open_hour(sessions) -> None:
    friday = MONDAY - timedelta(days=3)  # Friday 09:30; it closed at 17:00

    def history(session: Session) -> waits.Pace:
        at = friday.replace(hour=16, minute=0)
        _add(session, at - _minutes(70), claimed_at=at - _minutes(60))  # Friday 15:00: before the hour, ignored
        _add(session, at + _minutes(30), claimed_at=at + _minutes(40))  # 16:30-16:40
        _add(session, at + _minutes(40), claimed_at=at + _minutes(55))  # 16:40-16:55
        # Asked on Saturday, claimed at 09:05 on Monday: only Monday's 5 open minutes were busy.
        _add(session, friday + timedelta(days=1), claimed_at=MONDAY - _minutes(25))
        _add(session, MONDAY - _minutes(25), claimed_at=MONDAY - _minutes(10))  # 09:05-09:20
        return waits.pace(session, WEEKDAYS, MONDAY)

    assert waits.open_window(WEEKDAYS, MONDAY) == [
        (MONDAY - _minutes(30), MONDAY),
        (friday.replace(hour=16, minute=30), friday.replace(hour=17, minute=0)),
    ]
    pace = await sessions.run(history)
    assert pace == waits.Pace(pickups=4, busy=_minutes(25 + 20))
    assert waits.estimate(pace, 3, 5.0) == timedelta(minutes=3 * 45 / 4)  # 33¾ minutes


def test_the_open_hour_is_found_across_a_change_of_the_clocks() -> None:
    london = parse_hours("Mon-Fri 09:00-17:00", "Europe/London")
    monday = datetime(2027, 3, 29, 8, 30, tzinfo=UTC)  # 09:30 in London, summer time since Sunday
    assert waits.open_window(london, monday) == [
        (datetime(2027, 3, 29, 8, 0, tzinfo=UTC), monday),
        (datetime(2027, 3, 26, 16, 30, tzinfo=UTC), datetime(2027, 3, 26, 17, 0, tzinfo=UTC)),  # Friday, winter time
    ]


def test_a_week_with_less_open_time_gives_all_of_it() -> None:
    sunday_minute = parse_hours("Sun 00:00-00:01", "UTC")
    assert waits.open_window(sunday_minute, T) == [
        (datetime(2026, 12, 6, 0, 0, tzinfo=UTC), datetime(2026, 12, 6, 0, 1, tzinfo=UTC))
    ]


async def test_a_line_people_gave_up_on_does_not_look_fast(sessions) -> None:
    def history(session: Session) -> waits.Pace:
        _add(session, T - _minutes(40), claimed_at=T - _minutes(35))
        _add(session, T - _minutes(35), claimed_at=T - _minutes(30))
        _add(session, T - _minutes(30), closed_at=T - _minutes(10))  # waited 20 minutes, then cancelled
        _add(session, T - _minutes(5))  # still waiting: busy until now
        return waits.pace(session, ALWAYS, T)

    pace = await sessions.run(history)
    # Busy from 14:20 to 14:50 and from 14:55 to 15:00: 35 minutes for 2 pick-ups, not 10.
    assert pace == waits.Pace(pickups=2, busy=_minutes(35))
    assert waits.estimate(pace, 1, 5.0) == _minutes(17.5)


async def test_without_enough_history_the_stated_default_and_with_nobody_picked_up_no_estimate(sessions) -> None:
    empty = await sessions.run(waits.pace, ALWAYS, T)
    assert empty == waits.Pace(pickups=0, busy=timedelta(0)) and empty.per_minute is None
    assert waits.estimate(empty, 3, 5.0) == _minutes(15), "3 × WAIT_DEFAULT_MINUTES_PER_PERSON"

    def short_history(session: Session) -> waits.Pace:
        _add(session, T - _minutes(9), claimed_at=T - _minutes(1))  # 8 busy minutes: too few to measure a pace
        # An agent reaching out: claimed as it was opened, it never stood in line and is no pick-up.
        _add(session, T - _minutes(30), claimed_at=T - _minutes(30))
        return waits.pace(session, ALWAYS, T)

    short = await sessions.run(short_history)
    assert short == waits.Pace(pickups=1, busy=_minutes(8))
    assert waits.estimate(short, 2, 5.0) == _minutes(10)

    later = T + timedelta(hours=3)  # the history above is long gone from the last hour

    def stuck(session: Session) -> waits.Pace:
        _add(session, later - _minutes(12))  # waiting 12 minutes, nobody picked up
        return waits.pace(session, ALWAYS, later)

    nobody = await sessions.run(stuck)
    assert nobody == waits.Pace(pickups=0, busy=_minutes(12)) and nobody.per_minute == 0
    assert waits.estimate(nobody, 1, 5.0) is None, "no number is made up"


# --- for any history -------------------------------------------------------------------------------------------

minutes = st.integers(min_value=0, max_value=24 * 60)
waits_in_line = st.lists(st.tuples(minutes, st.integers(min_value=0, max_value=180)), max_size=12).map(
    lambda pairs: [(T - _minutes(start), T - _minutes(start) + _minutes(length)) for start, length in pairs]
)
pickup_moments = st.lists(minutes.map(lambda m: T - _minutes(m)), max_size=12)
hours_text = st.sampled_from(["", "Mon-Fri 09:00-17:00", "Mon-Sun 13:00-15:30", "Wed 14:20-14:50; Tue 08:00-20:00"])


@settings(deadline=None, max_examples=200)
@given(waits_in_line, pickup_moments, hours_text, st.integers(min_value=1, max_value=30))
def test_the_estimate_never_decreases_with_the_place_in_line(waited, pickups, text, position) -> None:
    hours = parse_hours(text, "UTC")
    window = waits.open_window(hours, T)
    pace = waits.pace_of(waited, pickups, window)
    assert sum((end - start for start, end in window), timedelta(0)) <= waits.OPEN_WINDOW
    assert all(hours.is_open(start) for start, _ in window), "only open time is measured"
    assert timedelta(0) <= pace.busy <= waits.OPEN_WINDOW
    here, behind = waits.estimate(pace, position, 5.0), waits.estimate(pace, position + 1, 5.0)
    assert (here is None) == (behind is None)
    assert here is None or here <= behind


@settings(deadline=None, max_examples=200)
@given(waits_in_line, pickup_moments, minutes, st.integers(min_value=1, max_value=180), hours_text)
def test_a_cancelled_wait_never_makes_the_line_look_faster(waited, pickups, start, length, text) -> None:
    window = waits.open_window(parse_hours(text, "UTC"), T)
    before = waits.pace_of(waited, pickups, window)
    gave_up = (T - _minutes(start), T - _minutes(start) + _minutes(length))
    after = waits.pace_of([*waited, gave_up], pickups, window)
    assert after.pickups == before.pickups and after.busy >= before.busy
    if before.busy >= waits.MIN_BUSY:  # measured before: the estimate only grows (or there is none)
        old, new = waits.estimate(before, 1, 5.0), waits.estimate(after, 1, 5.0)
        assert old is None and new is None or old is not None and new is not None and new >= old
