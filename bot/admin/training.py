"""Train & deploy: start a training, watch it, compare its evaluation with the live model's, put it live, and put
any earlier version back."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.orm import Session

from bot.admin.evaluation import accuracy, compare
from bot.admin.pages import deps, done, form, render, url, who
from bot.content import versions
from bot.content.deploy import STALE_AFTER
from bot.content.files import ContentError
from bot.storage.models import ModelStatus, ModelVersion, utcnow

NAV = ("Train & deploy", "/training")
routes = web.RouteTableDef()
REFRESH_SECONDS = 3


@routes.get("/training")
async def training_page(request: web.Request) -> web.Response:
    """Where training stands, the newest result next to the live model, and every version."""
    history, live = await deps(request).sessions.read(_versions)
    running = next(
        (v for v in history if v.status == ModelStatus.TRAINING and utcnow() - v.created_at < STALE_AFTER), None
    )
    newest = history[0] if history else None
    candidate = next((v for v in history if v.status == ModelStatus.READY), None)
    if candidate is not None and live is not None and candidate.id == live.id:
        candidate = None
    failed = newest if newest is not None and newest.status == ModelStatus.FAILED else None
    return await render(
        request,
        "training.html",
        title="Train & deploy",
        history=history,
        live=live,
        running=running,
        failed=failed,
        candidate=candidate,
        comparison=compare(candidate, live) if candidate and candidate.metrics else [],
        accuracy=accuracy,
        refresh=REFRESH_SECONDS if running or (newest and newest.stage == "evaluating") else None,
        pull_seconds=deps(request).settings.model_pull_seconds,
    )


def _versions(session: Session) -> tuple[list[ModelVersion], ModelVersion | None]:
    """Every version (the newest first), and the live one."""
    return versions.history(session), versions.live_version(session)


@routes.post("/training/start")
async def start(request: web.Request) -> web.Response:
    """Train the content as it is now."""
    note = (await form(request)).get("note", "").strip()[:500]
    console = deps(request)
    try:
        version_id = await console.trainer.start(who(request).username, note)
    except ContentError as exc:
        return await done(request, url("/training"), f"{exc}. Wait for it to finish.", "error")
    return await done(request, url("/training"), f"Training version {version_id} started. This page follows it.")


@routes.post("/training/live")
async def put_live(request: web.Request) -> web.Response:
    """Make a trained version the live one."""
    data = await form(request)
    try:
        version = await deps(request).trainer.put_live(int(data.get("version", "0") or 0), who(request).username)
    except (ContentError, ValueError) as exc:
        return await done(request, url("/training"), f"Nothing changed: {exc}.", "error")
    seconds = deps(request).settings.model_pull_seconds
    return await done(
        request,
        url("/training"),
        f"Version {version.id} is live. The bot switches to it within about {seconds} seconds.",
    )
