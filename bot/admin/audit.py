"""The audit log: who changed what, when, and the value before and after."""

from __future__ import annotations

from typing import Any

import yaml
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.admin.pages import deps, render
from bot.storage.models import AuditEntry

NAV = ("Audit log", "/audit")
routes = web.RouteTableDef()
PER_PAGE = 50


def shown(value: Any) -> str:
    """A before/after value for people: one `name: value` a line, lists as `- item` lines."""
    if value is None:
        return ""
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, default_flow_style=False, width=100).strip()


def entries_of(session: Session, person: str, page: int) -> tuple[list[AuditEntry], int]:
    """A page of the log (the newest first), of one person's changes when `person` is given, and how many there are."""
    query = select(AuditEntry)
    if person:
        query = query.where(AuditEntry.who == person)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return list(
        session.scalars(query.order_by(AuditEntry.id.desc()).offset((page - 1) * PER_PAGE).limit(PER_PAGE))
    ), total


@routes.get("/audit")
async def audit_log(request: web.Request) -> web.Response:
    """The newest changes first, a page at a time; `?who=` narrows to one person."""
    page = max(1, int(request.query["page"])) if request.query.get("page", "").isdigit() else 1
    person = request.query.get("who", "").strip()
    entries, total = await deps(request).sessions.read(entries_of, person, page)
    return await render(
        request,
        "audit.html",
        title="Audit log",
        entries=entries,
        shown=shown,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        person=person,
        total=total,
    )
