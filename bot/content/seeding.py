"""The repository's content files as the seed: imported on first start, and brought in again when they change,
leaving what admins edited as they left it; `frontline import` replaces the whole content the same way. The
help center's articles (`help_center/`) are seeded and upgraded alike, by slug.

Plain functions of a Session (run with `await sessions.run(fn, …)`); the caller reads the files (`read_tree`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.content.articles import fields_of
from bot.content.current import record_change, version
from bot.content.files import Content, write_files
from bot.content.help_center import HelpArticle, write_article
from bot.storage.kb_models import Article
from bot.storage.models import ContentIntent, ContentLayout, ContentResponse
from bot.storage.settings import get_setting, put_setting

SEED_KEY = "content_seed"
ARTICLES_SEED_KEY = "help_center_seed"


INTENT_FIELDS = ("examples", "comment", "file", "listed", "domain_comment")
RESPONSE_FIELDS = ("variations", "comment")


def _snapshot(item: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """An item's editable fields (of a row or of read content alike): what a seed upgrade compares."""
    return {name: getattr(item, name) for name in fields}


def replace_all(session: Session, content: Content, who: str, *, seed: bool) -> None:
    """Make `content` the whole content (`frontline import`, or the first start's seed)."""
    before = version(session)
    session.execute(delete(ContentIntent))
    session.execute(delete(ContentResponse))
    session.execute(delete(ContentLayout))
    session.flush()
    for position, intent in enumerate(content.intents.values()):
        session.add(
            ContentIntent(
                name=intent.name,
                examples=intent.examples,
                comment=intent.comment,
                file=intent.file,
                listed=intent.listed,
                domain_comment=intent.domain_comment,
                position=position,
                seed=_snapshot(intent, INTENT_FIELDS) if seed else None,
            )
        )
    for position, response in enumerate(content.responses.values()):
        session.add(
            ContentResponse(
                name=response.name,
                variations=response.variations,
                comment=response.comment,
                position=position,
                seed=_snapshot(response, RESPONSE_FIELDS) if seed else None,
            )
        )
    for path, segments in content.layouts.items():
        session.add(ContentLayout(path=path, segments=segments))
    record_change(
        session,
        who,
        "import",
        "all content",
        {"version": before},
        {"intents": len(content.intents), "responses": len(content.responses)},
    )


def fingerprint(seed: Content) -> str:
    """A hash of the seed's files (the repository's content files, read with `read_tree`)."""
    digest = hashlib.sha256()
    for path, text in sorted(write_files(seed).items()):
        digest.update(path.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()[:16]


def ensure_seeded(session: Session, seed: Content) -> str:
    """Import the repository's files (`seed`) on first start; when they changed since, upgrade what admins did not
    edit. Returns what was done: "seeded", "upgraded" or "current"."""
    printed = fingerprint(seed)
    known = (get_setting(session, SEED_KEY) or {}).get("fingerprint")
    if known == printed:
        return "current"
    if known is None and not session.scalars(select(ContentLayout.path).limit(1)).first():
        replace_all(session, seed, "seed", seed=True)
        result = "seeded"
    else:
        upgrade_seed(session, seed)
        result = "upgraded"
    put_setting(session, SEED_KEY, {"fingerprint": printed})
    return result


def upgrade_seed(session: Session, seed: Content) -> dict[str, list[str]]:
    """Bring in a new seed: items admins never edited follow it; edited or deleted ones stay as admins left them.
    Verbatim text (rules, stories, slots) always follows the seed; intents admins added keep their place."""
    kept: list[str] = []
    updated: list[str] = []
    for model, fields, items in (
        (ContentIntent, INTENT_FIELDS, seed.intents),
        (ContentResponse, RESPONSE_FIELDS, seed.responses),
    ):
        rows = {row.name: row for row in session.scalars(select(model)).all()}
        for position, item in enumerate(items.values()):
            new = _snapshot(item, fields)
            row = rows.get(item.name)
            if row is None:
                session.add(model(name=item.name, position=position, seed=new, **new))
                updated.append(item.name)
            elif row.seed is not None and not row.removed and _snapshot(row, fields) == row.seed:
                if row.seed != new:
                    for key, value in new.items():
                        setattr(row, key, value)
                    updated.append(item.name)
                row.seed, row.position = new, position
            else:  # edited or deleted by an admin
                kept.append(item.name)
                row.seed = new
        for name, row in rows.items():
            if name not in items and row.seed is not None and _snapshot(row, fields) == row.seed:
                row.removed = True
                updated.append(name)
    layouts = {row.path: row for row in session.scalars(select(ContentLayout)).all()}
    for path, segments in seed.layouts.items():
        own = [
            s
            for s in (layouts[path].segments if path in layouts else [])
            if "intent" in s and s["intent"] not in seed.intents
        ]
        if path in layouts:
            layouts[path].segments = segments + own
        else:
            session.add(ContentLayout(path=path, segments=segments))
    record_change(session, "seed", "upgrade", "seed content", None, {"updated": updated, "kept": kept})
    return {"updated": updated, "kept": kept}


def articles_fingerprint(seed: list[HelpArticle]) -> str:
    """A hash of the help center's articles as their files say them."""
    digest = hashlib.sha256()
    for item in sorted(seed, key=lambda a: a.slug):
        digest.update(item.slug.encode() + b"\0" + write_article(item).encode() + b"\0")
    return digest.hexdigest()[:16]


def ensure_articles_seeded(session: Session, seed: list[HelpArticle]) -> str:
    """Bring in the repository's help center (`seed`): on first start every article; when it changed since, the
    articles admins did not edit follow it, and those admins edited or deleted stay as they left them. A missing or
    empty folder changes nothing. Returns "seeded", "upgraded" or "current"."""
    if not seed:
        return "current"
    printed = articles_fingerprint(seed)
    known = get_setting(session, ARTICLES_SEED_KEY) or {}
    if known.get("fingerprint") == printed:
        return "current"
    rows = {row.slug: row for row in session.scalars(select(Article)).all()}
    result = "upgraded" if known or rows else "seeded"
    done: dict[str, list[str]] = {"added": [], "updated": [], "removed": [], "kept": []}
    for item in seed:
        new, row = fields_of(item), rows.get(item.slug)
        if row is None:
            if item.slug in known.get("slugs", []):  # deleted by an admin
                done["kept"].append(item.slug)
            else:
                session.add(Article(slug=item.slug, revision=1, seed=new, **new))
                done["added"].append(item.slug)
            continue
        if row.seed is not None and fields_of(row) == row.seed:
            if row.seed != new:
                for name, value in new.items():
                    setattr(row, name, value)
                row.revision += 1
                done["updated"].append(item.slug)
        elif fields_of(row) != new:  # edited by an admin, or theirs
            done["kept"].append(item.slug)
        row.seed = new
    slugs = {item.slug for item in seed}
    for slug, row in rows.items():
        if slug not in slugs and row.seed is not None and fields_of(row) == row.seed:
            session.delete(row)
            done["removed"].append(slug)
    put_setting(session, ARTICLES_SEED_KEY, {"fingerprint": printed, "slugs": sorted(slugs)})
    action = "seed articles" if result == "seeded" else "upgrade articles"
    record_change(session, "seed", action, "help center", None, done)
    return result
