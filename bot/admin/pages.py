"""What every console page uses: its dependencies, the signed-in admin, forms, rendering and redirects.

A page module has `routes` (an aiohttp RouteTableDef, paths relative to the console's prefix) and `NAV`
(its menu label and path, or None); listing the module in `bot.admin.console.PAGES` mounts it, behind the
sign-in and CSRF checks. Handlers read and write through `deps(request).sessions`, say what happened with
`done(...)` (a message shown on the next page) and show pages with `render(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from sqlalchemy.orm import Session

from bot.admin import accounts
from bot.config import Settings
from bot.content.deploy import Trainer
from bot.storage.db import Sessions

PREFIX = "/admin"
TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Deps:
    """What the console's handlers work with."""

    settings: Settings
    sessions: Sessions  # plain functions of a Session, run with `await sessions.run(fn, …)` or `sessions.read`
    trainer: Trainer
    behind_proxy: bool = False  # a TLS-terminating proxy in front: trust its X-Forwarded-Proto and X-Forwarded-For
    nav: list[tuple[str, str]] = field(default_factory=list)
    gate: accounts.Gate = field(default_factory=accounts.Gate)  # every sign-in's hasher
    templates: jinja2.Environment = field(
        default_factory=lambda: jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
        )
    )


DEPS = web.AppKey("deps", Deps)
SIGNED = web.RequestKey("signed", accounts.Signed)  # the request's session


def deps(request: web.Request) -> Deps:
    """The console's dependencies."""
    return request.config_dict[DEPS]


def who(request: web.Request) -> accounts.Signed:
    """The signed-in admin (every page but the login is behind the sign-in check)."""
    return request[SIGNED]


def client_address(request: web.Request) -> str:
    """Who is asking: the peer, or behind a trusted proxy the address it saw (the last X-Forwarded-For entry, the
    one the proxy added: earlier ones come from the client and prove nothing)."""
    forwarded = request.headers.get("X-Forwarded-For", "") if deps(request).behind_proxy else ""
    return forwarded.rsplit(",", 1)[-1].strip() or request.remote or ""


def url(path: str, **query: Any) -> str:
    """A console address: `url("/intent", name="faq/x")`."""
    return PREFIX + path + (f"?{urlencode(query)}" if query else "")


async def form(request: web.Request) -> dict[str, str]:
    """The posted form's text fields (already read by the CSRF check)."""
    data = await request.post()
    return {key: value for key, value in data.items() if isinstance(value, str)}


async def done(
    request: web.Request,
    to: str,
    message: str | None = None,
    kind: str = "ok",
    warnings: list[str] | tuple[str, ...] = (),
) -> web.Response:
    """Redirect after a POST, with a message (and warnings) for the page shown next."""
    notes = [*([(message, kind)] if message else []), *((warning, "warning") for warning in warnings)]
    if notes:
        await deps(request).sessions.run(_flash, who(request).token_hash, notes)
    return see_other(to)


def _flash(session: Session, token_hash: str, notes: list[tuple[str, str]]) -> None:
    """Messages (text, kind) for the next page the session sees."""
    for text, kind in notes:
        accounts.flash(session, token_hash, text, kind)


def see_other(to: str) -> web.Response:
    """A redirect to a GET page."""
    return web.Response(status=303, headers={"Location": to})


async def render(
    request: web.Request, template: str, *, status: int = 200, title: str = "", **context: Any
) -> web.Response:
    """A page in the console's frame: menu, the admin's name, messages waiting for them, sign-out."""
    console = deps(request)
    signed: accounts.Signed | None = request.get(SIGNED)
    messages: list[dict[str, str]] = []
    if signed is not None:
        messages = await console.sessions.run(accounts.take_flash, signed.token_hash)
    messages += context.pop("messages", [])
    html = console.templates.get_template(template).render(
        title=title,
        signed=signed,
        nav=console.nav,
        here=request.path,
        messages=messages,
        url=url,
        prefix=PREFIX,
        csrf=signed.csrf if signed else "",
        **context,
    )
    return web.Response(
        text=html,
        content_type="text/html",
        status=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": CSP,
            "Referrer-Policy": "same-origin",
        },
    )


CSP = "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
