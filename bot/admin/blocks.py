"""Blocked customers: who blocked them (with /block in Telegram), when and why; an admin can unblock one."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.orm import Session

from bot.admin.pages import deps, done, form, render, url, who
from bot.storage import blocks

NAV = ("Blocked customers", "/blocks")
routes = web.RouteTableDef()


@routes.get("/blocks")
async def blocked_list(request: web.Request) -> web.Response:
    """Every blocked customer, the newest block first."""
    found = await deps(request).sessions.read(blocks.listed)
    return await render(request, "blocks.html", title="Blocked customers", blocked=found)


@routes.post("/blocks/unblock")
async def unblock(request: web.Request) -> web.Response:
    """Lift a block: what the customer sends reaches the bot again (recorded in the audit log)."""
    user = (await form(request)).get("user", "").strip()
    lifted = user.lstrip("-").isdigit() and await deps(request).sessions.run(_unblock, int(user), who(request).username)
    if not lifted:
        return await done(request, url("/blocks"), "That customer is not blocked any more.", "warning")
    return await done(request, url("/blocks"), f"Telegram user {user} is unblocked.")


def _unblock(session: Session, user: int, admin: str) -> bool:
    return blocks.unblock(session, user, by=admin) is not None
