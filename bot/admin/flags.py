"""Flagged answers: what agents reported the bot answered wrongly (with /flag), to teach it and mark resolved."""

from __future__ import annotations

from aiohttp import web

from bot.admin.pages import deps, done, form, render, url, who
from bot.content import store
from bot.desk.cards import customer_name
from bot.storage import flags as flagged_answers

NAV = ("Flagged answers", "/flags")
routes = web.RouteTableDef()


@routes.get("/flags")
async def flag_list(request: web.Request) -> web.Response:
    """Open flags, newest first (`?resolved=1`: the resolved ones)."""
    resolved = request.query.get("resolved") == "1"
    async with deps(request).sessions() as session:
        flags = await session.run_sync(flagged_answers.flagged, resolved=resolved, limit=200)
        intents = sorted((await store.load(session)).intents)
    return await render(request, "flags.html", title="Flagged answers", flags=flags, resolved=resolved, intents=intents,
                        name=customer_name)


@routes.post("/flags/resolve")
async def resolve(request: web.Request) -> web.Response:
    """The flag was looked at: off the open list."""
    number = (await form(request)).get("flag", "")
    async with deps(request).sessions.begin() as session:
        resolved = number.isdigit() and await session.run_sync(flagged_answers.resolve, int(number), who(request).username)
    if not resolved:
        return await done(request, url("/flags"), "That flag is already resolved or no longer exists.", "warning")
    return await done(request, url("/flags"), f"Flag {number} resolved.")
