"""The content as the database holds it now: read whole, its version, and the record every change leaves.

Every change to the content goes through `record_change`: it moves the content's version on (the NLG cache and
the console read it) and writes the audit log. Plain functions of a Session (run with `await sessions.run(fn, …)`
or `await sessions.read(fn, …)`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session

from bot.content.files import Content, Intent, Response
from bot.storage.models import AuditEntry, ContentIntent, ContentLayout, ContentResponse, Setting

VERSION_KEY = "content_version"
_SETTING = select(Setting.value).where(Setting.key == bindparam("key"))  # built once (see bot/storage/inbox.py)
_local_changes = 0


def version(session: Session) -> int:
    """The content's version: it grows with every change (the responses' check on every message's way)."""
    value = session.scalar(_SETTING, {"key": VERSION_KEY})
    return int((value or {}).get("version", 0))


def local_changes() -> int:
    """How many content changes this process has committed: a cache of the content in this process re-reads at
    once when it moves (changes from other processes reach it through the version in the database)."""
    return _local_changes


def _count_local_change(_session: Any) -> None:
    global _local_changes
    _local_changes += 1


def record_change(
    session: Session, who: str, action: str, target: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> int:
    """A change to the content, in this transaction: the version moved on (returned) and the audit log's entry."""
    event.listen(session, "after_commit", _count_local_change, once=True)
    # The row is locked until commit (PostgreSQL; SQLite has one writer anyway): two edits at once, from two app
    # workers, get two numbers, so every NLG cache sees the second change too.
    row = session.get(Setting, VERSION_KEY, with_for_update=True, populate_existing=True)
    number = (int(row.value.get("version", 0)) if row else 0) + 1
    if row is None:
        session.add(Setting(key=VERSION_KEY, value={"version": number}))
    else:
        row.value = {"version": number}
    session.add(AuditEntry(who=who, action=action, target=target, before=before, after=after))
    return number


def load(session: Session) -> Content:
    """The content as it is now (deleted items left out)."""
    content = Content()
    intents = session.scalars(
        select(ContentIntent).where(ContentIntent.removed.is_(False)).order_by(ContentIntent.position, ContentIntent.id)
    ).all()
    for row in intents:
        content.intents[row.name] = Intent(
            row.name, list(row.examples), row.comment, row.file, row.listed, row.domain_comment
        )
    responses = session.scalars(
        select(ContentResponse)
        .where(ContentResponse.removed.is_(False))
        .order_by(ContentResponse.position, ContentResponse.id)
    ).all()
    for response in responses:
        content.responses[response.name] = Response(response.name, list(response.variations), response.comment)
    for layout in session.scalars(select(ContentLayout).order_by(ContentLayout.path)).all():
        segments: list[dict[str, str]] = []
        for segment in layout.segments:
            if "intent" in segment and segment["intent"] not in content.intents:
                if segments and segments[-1] == {"raw": "\n"}:  # the blank line that separated it goes too
                    segments.pop()
                continue
            segments.append(segment)
        content.layouts[layout.path] = segments
    return content
