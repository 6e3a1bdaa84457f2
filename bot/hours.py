"""Business hours: when the team answers, and when it is next back. Written like "Mon-Fri 08:00-20:00; Sat 09:00-17:00"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PART = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:\s*-\s*(?P<last>[a-z]{3}))?\s+(?P<open>\d{1,2}:\d{2})\s*-\s*(?P<close>\d{1,2}:\d{2})\s*$"
)


class HoursError(ValueError):
    """The business hours or time zone cannot be read."""


@dataclass(frozen=True)
class BusinessHours:
    """Opening times per weekday (Monday is 0) in one time zone; empty means always open."""

    zone: ZoneInfo
    days: dict[int, tuple[time, time]]

    @property
    def always_open(self) -> bool:
        """No hours configured: the team is treated as always there."""
        return not self.days

    def is_open(self, moment: datetime) -> bool:
        """Whether the team is working at this moment."""
        if self.always_open:
            return True
        local = moment.astimezone(self.zone)
        hours = self.days.get(local.weekday())
        return hours is not None and hours[0] <= local.time() < hours[1]

    def next_opening(self, moment: datetime) -> datetime:
        """When the team is next back (the moment itself when open now), in the business's time zone."""
        local = moment.astimezone(self.zone)
        if self.is_open(moment):
            return local
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            hours = self.days.get(day.weekday())
            if hours is None:
                continue
            opening = datetime.combine(day, hours[0], tzinfo=self.zone)
            if opening > local:
                return opening
        raise HoursError("no opening hours in the week")

    def describe_next(self, moment: datetime) -> str:
        """ "today at 08:00", "tomorrow at 09:00" or "on Monday at 08:00", with the time zone."""
        local = moment.astimezone(self.zone)
        opening = self.next_opening(moment)
        days = (opening.date() - local.date()).days
        day = "today" if days == 0 else "tomorrow" if days == 1 else f"on {opening:%A}"
        return f"{day} at {opening:%H:%M} ({self.zone.key} time)"


def parse_hours(text: str, zone: str) -> BusinessHours:
    """Read `BUSINESS_HOURS` and `BUSINESS_TIMEZONE`; HoursError says what is wrong."""
    try:
        tz = ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown time zone {zone!r}; use a name like Europe/London") from None
    days: dict[int, tuple[time, time]] = {}
    for part in filter(str.strip, (text or "").lower().split(";")):
        found = PART.match(part)
        if found is None or found["first"] not in DAYS or (found["last"] and found["last"] not in DAYS):
            raise HoursError(f"cannot read {part.strip()!r}; write it like 'Mon-Fri 08:00-20:00; Sat 09:00-17:00'")
        first, last = DAYS.index(found["first"]), DAYS.index(found["last"] or found["first"])
        try:
            opening, closing = time.fromisoformat(found["open"].zfill(5)), time.fromisoformat(found["close"].zfill(5))
        except ValueError:
            raise HoursError(f"cannot read the times in {part.strip()!r}") from None
        if opening >= closing:
            raise HoursError(f"{part.strip()!r} closes before it opens")
        for day in range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]:
            days[day] = (opening, closing)
    return BusinessHours(tz, days)


WHEN = re.compile(
    r"^\s*(?:in\s+(?P<amount>\d{1,3})\s*(?P<unit>m|min|mins|minutes?|h|hours?|d|days?)"
    r"|(?P<day>today|tomorrow|\d{4}-\d{2}-\d{2})(?:\s+(?:at\s+)?(?P<time>\d{1,2}:\d{2}))?)\b\s*(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)


def parse_when(text: str, now: datetime, zone: ZoneInfo) -> tuple[datetime, str] | None:
    """A due time at the start of an agent's text ("in 2h", "tomorrow 10:00", "2026-12-01 15:00") and what follows it."""
    found = WHEN.match(text or "")
    if found is None:
        return None
    if found["amount"]:
        unit = found["unit"][0].lower()
        step = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}[unit]
        return now + int(found["amount"]) * step, found["rest"].strip()
    local = now.astimezone(zone)
    day = found["day"].lower()
    date = local.date() if day == "today" else (local + timedelta(days=1)).date() if day == "tomorrow" else None
    try:
        date = date or datetime.strptime(day, "%Y-%m-%d").date()
        at = time.fromisoformat(found["time"].zfill(5)) if found["time"] else time(17, 0)
    except ValueError:
        return None
    return datetime.combine(date, at, tzinfo=zone), found["rest"].strip()
