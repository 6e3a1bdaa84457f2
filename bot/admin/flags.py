"""Flagged answers: what agents reported the bot answered wrongly (with /flag), to teach it and mark resolved."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.orm import Session

from bot.admin.pages import deps, done, form, render, url, who
from bot.content import current
from bot.desk.cards import customer_name
from bot.storage import flags as flagged_answers

NAV = ("Flagged answers", "/flags")
routes = web.RouteTableDef()


@routes.get("/flags")
async def flag_list(request: web.Request) -> web.Response:
    """Open flags, newest first (`?resolved=1`: the resolved ones)."""
    resolved = request.query.get("resolved") == "1"
    flags, intents = await deps(request).sessions.read(_flags_and_intents, resolved)
    return await render(
        request,
        "flags.html",
        title="Flagged answers",
        flags=flags,
        resolved=resolved,
        intents=intents,
        name=customer_name,
    )


def _flags_and_intents(session: Session, resolved: bool) -> tuple[list[flagged_answers.Flagged], list[str]]:
    """The flags (open or resolved), and the intents an example can be added to."""
    return flagged_answers.flagged(session, resolved=resolved, limit=200), sorted(current.load(session).intents)


@routes.post("/flags/resolve")
async def resolve(request: web.Request) -> web.Response:
    """The flag was looked at: off the open list."""
    number = (await form(request)).get("flag", "")
    resolved = number.isdigit() and await deps(request).sessions.run(
        flagged_answers.resolve, int(number), who(request).username
    )
    if not resolved:
        return await done(request, url("/flags"), "That flag is already resolved or no longer exists.", "warning")
    return await done(request, url("/flags"), f"Flag {number} resolved.")
