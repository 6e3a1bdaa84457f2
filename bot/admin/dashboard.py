"""The dashboard: how the support went over the last days, in charts drawn on the server (inline SVG, nothing
loaded from elsewhere), the questions the bot did not understand, and adding one as an example of an intent."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from bot.admin import insights, understood
from bot.admin.pages import deps, done, form, render, url, who
from bot.content import current, edits
from bot.content.files import Content, ContentError
from bot.desk.cards import REASONS
from bot.storage import figures as stored
from bot.storage import flags as flagged_answers
from bot.storage import saved_replies
from bot.storage.models import utcnow

NAV = ("Dashboard", "/dashboard")
routes = web.RouteTableDef()
PERIODS = (7, 30, 90)
CHART_WIDTH, CHART_HEIGHT, BAR_WIDTH = 720, 160, 200  # pixels of the day chart and of one horizontal bar


def day_bars(days: list[tuple[Any, int]]) -> dict[str, Any]:
    """The day chart's geometry: a column a day scaled to the busiest day, a date label every week."""
    top = max((count for _, count in days), default=0) or 1
    step = CHART_WIDTH / max(len(days), 1)
    columns = []
    for index, (day, count) in enumerate(days):
        height = round(count / top * (CHART_HEIGHT - 20), 1)
        columns.append(
            {
                "x": round(index * step + 1, 1),
                "y": round(CHART_HEIGHT - 20 - height, 1),
                "width": round(step - 2, 1),
                "height": height,
                "count": count,
                "day": day,
                "label": (len(days) - 1 - index) % 7 == 0,
            }
        )
    return {"columns": columns, "top": top, "width": CHART_WIDTH, "height": CHART_HEIGHT, "base": CHART_HEIGHT - 20}


def bar(count: int, most: int) -> float:
    """A horizontal bar's length for `count` when `most` fills it."""
    return round(count / most * BAR_WIDTH, 1) if most else 0


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f} %"


@routes.get("/dashboard")
async def dashboard(request: web.Request) -> web.Response:
    """The last days in figures, and the questions the bot did not understand most often."""
    console = deps(request)
    days = (
        int(request.query["days"])
        if request.query.get("days", "").isdigit() and int(request.query["days"]) in PERIODS
        else 30
    )
    zone, now = console.settings.business_hours.zone, utcnow()
    since = stored.day_start(now, zone) - timedelta(days=days - 1)
    figures, per_day, content, flags = await console.sessions.read(_numbers, since, now, days, zone)
    usage = await console.sessions.read(saved_replies.usage)
    questions = await insights.not_understood(console.settings.rasa_tracker_url, since)
    suggested = await understood.suggestions(content, questions)
    most_reasons = max((count for _, count in figures.by_reason), default=0)
    return await render(
        request,
        "dashboard.html",
        title="Dashboard",
        days=days,
        periods=PERIODS,
        figures=figures,
        chart=day_bars(per_day),
        reasons=[(REASONS.get(reason, reason), count, bar(count, most_reasons)) for reason, count in figures.by_reason],
        ratings=[
            (score, count, bar(count, max(figures.ratings.values())))
            for score, count in sorted(figures.ratings.items(), reverse=True)
        ],
        questions=list(zip(questions, suggested, strict=True)),
        intents=sorted(content.intents),
        flags=flags,
        usage=usage,
        bar=bar,
        most_used=max((u.uses for u in usage), default=0),
        duration=stored.duration,
        percent=percent,
        bar_width=BAR_WIDTH,
        zone=getattr(zone, "key", str(zone)),
    )


def _numbers(
    session: Session, since: datetime, now: datetime, days: int, zone: tzinfo
) -> tuple[stored.Figures, list[tuple[date, int]], Content, int]:
    """The period's figures, conversations a day, the content (the intents an example can be added to), and how many
    flags are open."""
    return (
        stored.figures(session, since, now),
        stored.conversations_per_day(session, days, zone, now),
        current.load(session),
        len(flagged_answers.flagged(session)),
    )


@routes.post("/dashboard/example")
async def add_example(request: web.Request) -> web.Response:
    """A customer's words as a new example of an intent (the bot learns it at the next training)."""
    data = await form(request)
    phrase, name = " ".join(data.get("text", "").split()), data.get("intent", "")
    back = data.get("back", "") if data.get("back", "").startswith(url("/")) else url("/dashboard")
    try:
        if not phrase:
            raise ContentError("There is no text to add")
        added = await deps(request).sessions.run(_add_example, name, phrase, who(request).username)
    except ContentError as exc:
        return await done(request, back, f"Nothing was added: {exc}.", "error")
    if not added:
        return await done(request, back, f"“{phrase}” is already an example of {name}.", "warning")
    return await done(
        request,
        back,
        f"Added “{phrase}” to {name}. The bot understands it after the next training "
        "(Train & deploy, then put the new model live).",
    )


def _add_example(session: Session, name: str, phrase: str, who: str) -> bool:
    """The phrase as a new example of the intent; False when it is one already."""
    content = current.load(session)
    if name not in content.intents:
        raise ContentError(f"Choose an intent: there is no intent {name or 'chosen'}")
    examples = content.intents[name].examples
    if insights.normalised(phrase) in {insights.normalised(e) for e in examples}:
        return False
    edits.set_examples(session, name, [*examples, phrase], who)
    return True
