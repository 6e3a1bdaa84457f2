"""Business hours: open or not, and when the team is next back, in the business's time zone."""

from datetime import UTC, datetime

import pytest

from bot.hours import HoursError, parse_hours

HOURS = parse_hours("Mon-Fri 08:00-20:00; Sat 09:00-17:00", "Europe/London")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_open_and_closed_follow_local_time() -> None:
    assert HOURS.is_open(utc("2026-11-25 10:00"))  # a Wednesday, GMT
    assert not HOURS.is_open(utc("2026-11-25 20:00"))
    assert HOURS.is_open(utc("2026-07-01 07:30")), "08:30 in London in summer time"
    assert not HOURS.is_open(utc("2026-11-29 12:00")), "closed on Sunday"


def test_when_the_team_is_back() -> None:
    assert HOURS.describe_next(utc("2026-11-25 21:00")) == "tomorrow at 08:00 (Europe/London time)"
    assert HOURS.describe_next(utc("2026-11-28 18:00")) == "on Monday at 08:00 (Europe/London time)"
    assert HOURS.describe_next(utc("2026-11-25 06:00")) == "today at 08:00 (Europe/London time)"


def test_no_hours_means_always_open() -> None:
    always = parse_hours("", "UTC")
    assert always.always_open and always.is_open(utc("2026-11-29 03:00"))


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Mon-Fri 8-20", "UTC"),
        ("Funday 08:00-10:00", "UTC"),
        ("Mon 10:00-09:00", "UTC"),
        ("Mon 08:00-20:00", "Mars/Base"),
    ],
)
def test_unreadable_hours_are_refused(text: str, zone: str) -> None:
    with pytest.raises(HoursError):
        parse_hours(text, zone)


def test_promise_due_times_are_read_from_the_agents_words() -> None:
    from bot.hours import parse_when

    now = utc("2026-11-25 10:00")
    zone = HOURS.zone
    assert parse_when("in 2h call back about the refund", now, zone) == (
        utc("2026-11-25 12:00"),
        "call back about the refund",
    )
    due, what = parse_when("tomorrow 09:30 refund the delivery fee", now, zone)
    assert (due.astimezone(UTC), what) == (utc("2026-11-26 09:30"), "refund the delivery fee")
    due, _ = parse_when("2026-12-01 send the replacement", now, zone)
    assert due.astimezone(UTC) == utc("2026-12-01 17:00"), "a day alone means the end of the working day"
    assert parse_when("soon, I promise", now, zone) is None
    assert parse_when("2026-13-45 nonsense", now, zone) is None
