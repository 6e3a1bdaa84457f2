"""Saved replies: what agents send with /r in their private chat; name, text with placeholders, category, preview.
Every change goes to the audit log (bot/storage/saved_replies.py writes it)."""

from __future__ import annotations

from aiohttp import web

from bot.admin.pages import deps, done, form, render, url, who
from bot.storage import saved_replies as stored

NAV = ("Saved replies", "/saved-replies")
routes = web.RouteTableDef()


@routes.get("/saved-replies")
async def saved_reply_list(request: web.Request) -> web.Response:
    """Every saved reply with its preview, a form to change each, and one to add a new one (`?preview=` shows how a
    text would read before it is saved)."""
    replies = await deps(request).sessions.read(stored.all_replies)
    draft = request.query.get("preview", "")
    return await render(
        request,
        "saved_replies.html",
        title="Saved replies",
        replies=replies,
        preview=stored.preview,
        placeholders=stored.PLACEHOLDERS,
        example=stored.EXAMPLE,
        draft=draft,
        unknown=stored.unknown_placeholders(draft),
    )


@routes.post("/saved-replies/save")
async def save(request: web.Request) -> web.Response:
    """A new saved reply, or a change to one (`reply` names it); refused with the reason, e.g. an unknown placeholder."""
    data = await form(request)
    number = data.get("reply", "")
    reply_id = int(number) if number.isascii() and number.isdigit() else None
    try:
        saved = await deps(request).sessions.run(
            stored.save,
            who(request).username,
            reply_id,
            data.get("name", ""),
            data.get("text", ""),
            data.get("category", ""),
        )
    except stored.ReplyError as exc:
        return await done(request, url("/saved-replies"), f"Nothing was saved: {exc}.", "error")
    return await done(request, url("/saved-replies"), f"Saved “{saved.name}”. Agents can send it with /r now.")


@routes.post("/saved-replies/delete")
async def delete(request: web.Request) -> web.Response:
    """A saved reply goes (agents' buttons offering it then say so)."""
    number = (await form(request)).get("reply", "")
    name: str | None = None
    if number.isascii() and number.isdigit():
        name = await deps(request).sessions.run(stored.delete, who(request).username, int(number))
    if not name:
        return await done(request, url("/saved-replies"), "That saved reply no longer exists.", "warning")
    return await done(request, url("/saved-replies"), f"Deleted “{name}”.")
