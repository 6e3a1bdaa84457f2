"""The admin console: an aiohttp application mounted at /admin on the app's server.

Every route but the login form and the stylesheet needs a signed-in admin: a page asked for anonymously
redirects to the login, a POST gets 401. Every POST of a signed-in admin must carry the session's CSRF token
(403 otherwise). Pages are listed in PAGES; see `bot.admin.pages` for how one is written.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from types import ModuleType

from aiohttp import web

from bot.admin import (
    accounts,
    articles,
    audit,
    blocks,
    conversations,
    dashboard,
    flags,
    intents,
    responses,
    saved_replies,
    training,
)
from bot.admin.pages import DEPS, PREFIX, SIGNED, TEMPLATES, Deps, client_address, deps, form, render, see_other, url
from bot.config import Settings
from bot.content.deploy import Trainer
from bot.storage.db import Sessions

log = logging.getLogger(__name__)
PAGES: tuple[ModuleType, ...] = (
    intents,
    responses,
    articles,
    training,
    dashboard,
    conversations,
    flags,
    saved_replies,
    blocks,
    audit,
)
COOKIE = "frontline_console"
LOGIN_COOKIE = "frontline_login"  # the login form's own CSRF token (no session exists yet)
routes = web.RouteTableDef()


def build_console(
    settings: Settings, sessions: Sessions, trainer: Trainer, *, behind_proxy: bool | None = None
) -> web.Application:
    """The console, to mount at PREFIX (`HealthServer(subapps={PREFIX: console})`)."""
    app = web.Application(middlewares=[_guard])
    app[DEPS] = Deps(
        settings,
        sessions,
        trainer,
        settings.console_behind_proxy if behind_proxy is None else behind_proxy,
        nav=[page.NAV for page in PAGES if page.NAV],
    )
    app.add_routes(routes)
    for page in PAGES:
        app.add_routes(page.routes)
    return app


PUBLIC = {"/login", "/console.css"}


@web.middleware
async def _guard(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Sign-in for every page, the CSRF token for every POST."""
    route = request.match_info.route.resource
    relative = route.canonical[len(PREFIX) :] if route is not None and route.canonical.startswith(PREFIX) else None
    if relative in PUBLIC:
        return await handler(request)
    signed = await deps(request).sessions.run(accounts.signed, request.cookies.get(COOKIE))
    if signed is None:
        if request.method in ("GET", "HEAD"):
            return see_other(url("/login", next=request.path_qs))
        return web.Response(status=401, text="Sign in first: your session has ended or you were never signed in.")
    if request.method == "POST":
        posted = await request.post()
        token = posted.get("csrf")
        if not isinstance(token, str) or not hmac.compare_digest(token, signed.csrf):
            log.warning(
                "console: a POST to %s by %s without the right CSRF token was refused", request.path, signed.username
            )
            return web.Response(
                status=403,
                text="This form is out of date or did not come from the console. "
                "Go back, reload the page and try again.",
            )
    request[SIGNED] = signed
    return await handler(request)


@routes.get("/console.css")
async def stylesheet(request: web.Request) -> web.FileResponse:
    """The console's only stylesheet."""
    return web.FileResponse(TEMPLATES / "console.css", headers={"Cache-Control": "max-age=300"})


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    """The sign-in form."""
    return await _login_page(request, [])


async def _login_page(request: web.Request, messages: list[dict[str, str]], status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = await render(
        request,
        "login.html",
        title="Sign in",
        login_csrf=token,
        messages=messages,
        next=_safe_next(request.query.get("next", "")),
        status=status,
    )
    _set_cookie(request, response, LOGIN_COOKIE, token)
    return response


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    """Check the password; a new session on success."""
    data = await form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(data.get("csrf", ""), expected):
        return web.Response(status=403, text="This sign-in form is out of date. Reload the page and try again.")
    username = data.get("username", "").strip()
    address = client_address(request)
    console = deps(request)
    attempt = await accounts.sign_in(
        console.sessions, username, data.get("password", ""), address=address, gate=console.gate
    )
    if attempt.refusal:
        log.warning("console: sign-in as %r refused from %s", username[:64], address)
        return await _login_page(request, [{"kind": "error", "text": attempt.refusal}], status=401)
    log.info("console: %s signed in from %s", username, address)
    response = see_other(_safe_next(data.get("next", "")) or url("/"))
    _set_cookie(request, response, COOKIE, attempt.token)
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    """End the session."""
    await deps(request).sessions.run(accounts.sign_out, request.cookies.get(COOKIE))
    response = see_other(url("/login"))
    response.del_cookie(COOKIE, path=PREFIX)
    return response


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """The first page of the menu."""
    return see_other(PREFIX + deps(request).nav[0][1])


def _safe_next(target: str) -> str:
    """Only a console address: never send a signed-in admin elsewhere."""
    return target if target.startswith(PREFIX + "/") and not target.startswith(PREFIX + "//") else ""


def _set_cookie(request: web.Request, response: web.Response, name: str, value: str) -> None:
    secure = request.secure or (deps(request).behind_proxy and request.headers.get("X-Forwarded-Proto") == "https")
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=secure or None,
        max_age=int(accounts.ABSOLUTE.total_seconds()) if name == COOKIE else None,
    )
