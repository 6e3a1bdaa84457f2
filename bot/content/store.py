"""The content in the database: seeded from the repository's files, edited by admins, exported for training.

Every change goes through here: it bumps the content version (the NLG cache and the console read it) and
writes the audit log. Deleting or renaming an intent that rules, stories, forms or responses use is refused
with the list of what uses it. A FAQ is a retrieval intent `faq/<name>` whose answer is `utter_faq/<name>`:
the two are made, renamed and deleted together.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import bindparam, delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.content.files import DOMAIN_FILE, NLU_DIR, Content, ContentError, Intent, Response, read_tree, write_files
from bot.storage.models import AuditEntry, ContentIntent, ContentLayout, ContentResponse, Setting

VERSION_KEY = "content_version"
SEED_KEY = "content_seed"
FAQ_PREFIX = "faq/"
FAQ_FILE = f"{NLU_DIR}/faq.yml"
NEW_INTENTS_FILE = f"{NLU_DIR}/custom.yml"
NAME = re.compile(r"^[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)?$")
NEW_FILE_HEAD = 'version: "3.1"\n\nnlu:\n'


class ContentInUse(ContentError):
    """A delete or rename refused: `uses` says where the name is used."""

    def __init__(self, name: str, uses: list[str]) -> None:
        super().__init__(f"{name} is still used by: " + "; ".join(uses))
        self.uses = uses


# --- settings and the version -----------------------------------------------------------------------------


async def get_setting(session: AsyncSession, key: str) -> dict[str, Any] | None:
    """A shared setting's value, or None."""
    row = await session.get(Setting, key)
    return dict(row.value) if row else None


async def put_setting(session: AsyncSession, key: str, value: dict[str, Any]) -> None:
    """Set a shared setting."""
    row = await session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


async def version(session: AsyncSession) -> int:
    """The content's version: it grows with every change."""
    return await session.run_sync(current_version)


def current_version(session: Session) -> int:
    """version(), as plain work (`Sessions.read`): the responses' check on every message's way."""
    value = session.scalar(_SETTING, {"key": VERSION_KEY})
    return int((value or {}).get("version", 0))


_SETTING = select(Setting.value).where(Setting.key == bindparam("key"))  # built once (see bot/storage/inbox.py)


_local_changes = 0


def local_changes() -> int:
    """How many content changes this process has committed: a cache of the content in this process re-reads at
    once when it moves (changes from other processes reach it through the version in the database)."""
    return _local_changes


def _count_local_change(_session: Any) -> None:
    global _local_changes
    _local_changes += 1


async def _changed(session: AsyncSession, who: str, action: str, target: str,
                   before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    event.listen(session.sync_session, "after_commit", _count_local_change, once=True)
    # The row is locked until commit (PostgreSQL; SQLite has one writer anyway): two edits at once, from two app
    # workers, get two numbers, so every NLG cache sees the second change too.
    row = await session.get(Setting, VERSION_KEY, with_for_update=True, populate_existing=True)
    number = (int(row.value.get("version", 0)) if row else 0) + 1
    if row is None:
        session.add(Setting(key=VERSION_KEY, value={"version": number}))
    else:
        row.value = {"version": number}
    session.add(AuditEntry(who=who, action=action, target=target, before=before, after=after))
    return number


# --- loading and saving whole content ----------------------------------------------------------------------


async def load(session: AsyncSession) -> Content:
    """The content as it is now (deleted items left out)."""
    content = Content()
    intents = (await session.scalars(
        select(ContentIntent).where(ContentIntent.removed.is_(False)).order_by(ContentIntent.position, ContentIntent.id)
    )).all()
    for row in intents:
        content.intents[row.name] = Intent(row.name, list(row.examples), row.comment, row.file, row.listed, row.domain_comment)
    responses = (await session.scalars(
        select(ContentResponse).where(ContentResponse.removed.is_(False))
        .order_by(ContentResponse.position, ContentResponse.id)
    )).all()
    for row in responses:
        content.responses[row.name] = Response(row.name, list(row.variations), row.comment)
    for layout in (await session.scalars(select(ContentLayout).order_by(ContentLayout.path))).all():
        segments: list[dict[str, str]] = []
        for segment in layout.segments:
            if "intent" in segment and segment["intent"] not in content.intents:
                if segments and segments[-1] == {"raw": "\n"}:  # the blank line that separated it goes too
                    segments.pop()
                continue
            segments.append(segment)
        content.layouts[layout.path] = segments
    return content


INTENT_FIELDS = ("examples", "comment", "file", "listed", "domain_comment")
RESPONSE_FIELDS = ("variations", "comment")


def _snapshot(item: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """An item's editable fields (of a row or of read content alike): what a seed upgrade compares."""
    return {name: getattr(item, name) for name in fields}


async def replace_all(session: AsyncSession, content: Content, who: str, *, seed: bool) -> None:
    """Make `content` the whole content (`frontline import`, or the first start's seed)."""
    before = await version(session)
    await session.execute(delete(ContentIntent))
    await session.execute(delete(ContentResponse))
    await session.execute(delete(ContentLayout))
    await session.flush()
    for position, intent in enumerate(content.intents.values()):
        session.add(ContentIntent(name=intent.name, examples=intent.examples, comment=intent.comment, file=intent.file,
                                  listed=intent.listed, domain_comment=intent.domain_comment, position=position,
                                  seed=_snapshot(intent, INTENT_FIELDS) if seed else None))
    for position, response in enumerate(content.responses.values()):
        session.add(ContentResponse(name=response.name, variations=response.variations, comment=response.comment,
                                    position=position, seed=_snapshot(response, RESPONSE_FIELDS) if seed else None))
    for path, segments in content.layouts.items():
        session.add(ContentLayout(path=path, segments=segments))
    await _changed(session, who, "import", "all content", {"version": before},
                   {"intents": len(content.intents), "responses": len(content.responses)})


def seed_fingerprint(root: Path) -> str:
    """A hash of the repository's content files."""
    digest = hashlib.sha256()
    for path, text in sorted(write_files(read_tree(root)).items()):
        digest.update(path.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()[:16]


async def ensure_seeded(session: AsyncSession, root: Path) -> str:
    """Import the repository's files on first start; when they changed since, upgrade what admins did not edit.
    Returns what was done: "seeded", "upgraded" or "current"."""
    fingerprint = seed_fingerprint(root)
    known = (await get_setting(session, SEED_KEY) or {}).get("fingerprint")
    if known == fingerprint:
        return "current"
    seed = read_tree(root)
    if known is None and not (await session.scalars(select(ContentLayout.path).limit(1))).first():
        await replace_all(session, seed, "seed", seed=True)
        result = "seeded"
    else:
        await upgrade_seed(session, seed)
        result = "upgraded"
    await put_setting(session, SEED_KEY, {"fingerprint": fingerprint})
    return result


async def upgrade_seed(session: AsyncSession, seed: Content) -> dict[str, list[str]]:
    """Bring in a new seed: items admins never edited follow it; edited or deleted ones stay as admins left them.
    Verbatim text (rules, stories, slots) always follows the seed; intents admins added keep their place."""
    kept: list[str] = []
    updated: list[str] = []
    for model, fields, items in ((ContentIntent, INTENT_FIELDS, seed.intents), (ContentResponse, RESPONSE_FIELDS, seed.responses)):
        rows = {row.name: row for row in (await session.scalars(select(model))).all()}
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
    layouts = {row.path: row for row in (await session.scalars(select(ContentLayout))).all()}
    for path, segments in seed.layouts.items():
        own = [s for s in (layouts[path].segments if path in layouts else []) if "intent" in s and s["intent"] not in seed.intents]
        if path in layouts:
            layouts[path].segments = segments + own
        else:
            session.add(ContentLayout(path=path, segments=segments))
    await _changed(session, "seed", "upgrade", "seed content", None, {"updated": updated, "kept": kept})
    return {"updated": updated, "kept": kept}


async def export(session: AsyncSession, root: Path) -> list[Path]:
    """Write the content as Rasa files under `root` (`domain.yml`, `nlu/*.yml`)."""
    from bot.content.files import write_tree

    return write_tree(await load(session), root)


# --- what uses a name --------------------------------------------------------------------------------------


def usages(content: Content, name: str) -> list[str]:
    """Where rules, stories, forms and responses use the intent `name` (its own FAQ answer is not a use)."""
    files = write_files(content)
    found: list[str] = []
    for path, text in files.items():
        data = yaml.safe_load(text) or {}
        for kind in ("rules", "stories"):
            for item in data.get(kind) or []:
                if name in _step_intents(item.get("steps") or []):
                    found.append(f"{kind[:-1] if kind == 'rules' else 'story'} \"{item.get(kind[:-1] if kind == 'rules' else 'story')}\" ({path})")
        if path == DOMAIN_FILE:
            for slot, spec in (data.get("slots") or {}).items():
                for mapping in (spec or {}).get("mappings") or []:
                    if name in _as_list(mapping.get("intent")) or name in _as_list(mapping.get("not_intent")):
                        found.append(f"slot {slot} (domain.yml)")
            for form, spec in (data.get("forms") or {}).items():
                if name in _as_list((spec or {}).get("ignored_intents")):
                    found.append(f"form {form} (domain.yml)")
    for response in content.responses.values():
        for variation in response.variations:
            for button in variation.get("buttons") or []:
                payload = str(button.get("payload", ""))
                if payload == f"/{name}" or payload.startswith(f"/{name}{{"):
                    found.append(f"response {response.name} (button \"{button.get('title', '')}\")")
    return sorted(set(found), key=found.index)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _step_intents(steps: list[Any]) -> set[str]:
    names: set[str] = set()
    for step in steps:
        if not isinstance(step, dict):
            continue
        if "intent" in step:
            names.add(str(step["intent"]))
        for alternative in step.get("or") or []:
            if isinstance(alternative, dict) and "intent" in alternative:
                names.add(str(alternative["intent"]))
    return names


# --- edits -------------------------------------------------------------------------------------------------


def faq_response(name: str) -> str | None:
    """The answer of a FAQ intent (`faq/x` -> `utter_faq/x`), None for other intents."""
    return f"utter_{name}" if name.startswith(FAQ_PREFIX) else None


def check_name(name: str) -> str:
    """A valid intent name, or ContentError saying what is wrong."""
    name = name.strip()
    if not NAME.match(name):
        raise ContentError("An intent name uses lower-case letters, digits and _ (a FAQ: faq/name), e.g. faq/gift_wrap")
    if "/" in name and not name.startswith(FAQ_PREFIX):
        raise ContentError("Only FAQs have a / in their name: faq/<name>")
    return name


def clean_examples(examples: list[str]) -> list[str]:
    """One example a line, trimmed, blank lines and repeats dropped, order kept."""
    seen: set[str] = set()
    cleaned = []
    for example in examples:
        text = " ".join(example.split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            cleaned.append(text)
    return cleaned


async def _intent_row(session: AsyncSession, name: str) -> ContentIntent:
    row = await session.scalar(select(ContentIntent).where(ContentIntent.name == name, ContentIntent.removed.is_(False)))
    if row is None:
        raise ContentError(f"There is no intent {name}")
    return row


async def _response_row(session: AsyncSession, name: str, *, removed: bool = False) -> ContentResponse | None:
    query = select(ContentResponse).where(ContentResponse.name == name)
    if not removed:
        query = query.where(ContentResponse.removed.is_(False))
    return await session.scalar(query)


async def _next_position(session: AsyncSession, model: type[ContentIntent] | type[ContentResponse]) -> int:
    rows = (await session.scalars(select(model.position).order_by(model.position.desc()).limit(1))).first()
    return (rows or 0) + 1


async def add_intent(session: AsyncSession, name: str, examples: list[str], who: str, answer: str | None = None) -> int:
    """A new intent with its examples; a FAQ (`faq/<name>`) gets its answer too. Returns the new version."""
    name = check_name(name)
    existing = await session.scalar(select(ContentIntent).where(ContentIntent.name == name))
    if existing is not None and not existing.removed:
        raise ContentError(f"There is already an intent {name}")
    examples = clean_examples(examples)
    if len(examples) < 2:
        raise ContentError("Give at least two example phrasings, one a line")
    is_faq = name.startswith(FAQ_PREFIX)
    if is_faq and not (answer or "").strip():
        raise ContentError("A new question needs its answer")
    file = FAQ_FILE if is_faq else NEW_INTENTS_FILE
    if existing is not None:  # brought back after a delete: a new item, no longer the seed's
        await session.delete(existing)
        await session.flush()
    session.add(ContentIntent(name=name, examples=examples, file=file, listed=not is_faq,
                              position=await _next_position(session, ContentIntent)))
    layout = await session.get(ContentLayout, file)
    if layout is None:
        session.add(ContentLayout(path=file, segments=[{"raw": NEW_FILE_HEAD}, {"intent": name}]))
    else:
        layout.segments = [*layout.segments, {"raw": "\n"}, {"intent": name}]
    if is_faq:
        response = faq_response(name)
        assert response
        old = await _response_row(session, response, removed=True)
        if old is not None:
            await session.delete(old)
            await session.flush()
        session.add(ContentResponse(name=response, variations=[{"text": answer.strip()}],  # type: ignore[union-attr]
                                    position=await _next_position(session, ContentResponse)))
    return await _changed(session, who, "add intent", name, None, {"examples": examples, "answer": answer})


async def set_examples(session: AsyncSession, name: str, examples: list[str], who: str) -> int:
    """Replace an intent's examples."""
    row = await _intent_row(session, name)
    examples = clean_examples(examples)
    if row.examples and not examples:
        raise ContentError("An intent needs at least one example; delete the intent instead")
    before = list(row.examples)
    row.examples = examples
    if row.file is None and examples:
        row.file = NEW_INTENTS_FILE
        await _place(session, row.file, name)
    return await _changed(session, who, "edit examples", name, {"examples": before}, {"examples": examples})


async def _place(session: AsyncSession, path: str, name: str) -> None:
    layout = await session.get(ContentLayout, path)
    if layout is None:
        session.add(ContentLayout(path=path, segments=[{"raw": NEW_FILE_HEAD}, {"intent": name}]))
    else:
        layout.segments = [*layout.segments, {"raw": "\n"}, {"intent": name}]


async def rename_intent(session: AsyncSession, old: str, new: str, who: str) -> int:
    """Rename an intent no rule, story, form or response uses; a FAQ's answer is renamed with it."""
    new = check_name(new)
    row = await _intent_row(session, old)
    if old.startswith(FAQ_PREFIX) != new.startswith(FAQ_PREFIX):
        raise ContentError("A FAQ stays a FAQ (faq/<name>), and another intent cannot become one")
    if await session.scalar(select(ContentIntent).where(ContentIntent.name == new)) is not None:
        raise ContentError(f"There is already an intent {new}")
    uses = usages(await load(session), old)
    if uses:
        raise ContentInUse(old, uses)
    row.name, row.seed = new, None
    for layout in (await session.scalars(select(ContentLayout))).all():
        if any(s.get("intent") == old for s in layout.segments):
            layout.segments = [{"intent": new} if s.get("intent") == old else s for s in layout.segments]
    old_answer, new_answer = faq_response(old), faq_response(new)
    if old_answer and new_answer and (response := await _response_row(session, old_answer)) is not None:
        response.name, response.seed = new_answer, None
    return await _changed(session, who, "rename intent", old, {"name": old}, {"name": new})


async def delete_intent(session: AsyncSession, name: str, who: str) -> int:
    """Delete an intent no rule, story, form or response uses; a FAQ's answer goes with it."""
    row = await _intent_row(session, name)
    uses = usages(await load(session), name)
    if uses:
        raise ContentInUse(name, uses)
    row.removed = True
    answer = faq_response(name)
    if answer and (response := await _response_row(session, answer)) is not None:
        response.removed = True
    return await _changed(session, who, "delete intent", name, {"examples": list(row.examples)}, None)


async def set_response(session: AsyncSession, name: str, variations: list[dict[str, Any]], who: str) -> int:
    """Replace a response's variations (each with `text`, optional `buttons` of title and payload)."""
    cleaned = check_variations(variations)
    row = await _response_row(session, name)
    before = None
    if row is None:
        row = ContentResponse(name=name, position=await _next_position(session, ContentResponse))
        session.add(row)
    else:
        before = {"variations": list(row.variations)}
    row.variations = cleaned
    return await _changed(session, who, "edit response", name, before, {"variations": cleaned})


def check_variations(variations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variations with text (and buttons with a title and a payload), or ContentError."""
    cleaned = []
    for variation in variations:
        text = str(variation.get("text", "")).strip()
        if not text:
            continue
        item: dict[str, Any] = {**{k: v for k, v in variation.items() if k not in ("text", "buttons")}, "text": text}
        buttons = [b for b in variation.get("buttons") or [] if str(b.get("title", "")).strip() or str(b.get("payload", "")).strip()]
        for button in buttons:
            if not str(button.get("title", "")).strip() or not str(button.get("payload", "")).strip():
                raise ContentError("Every button needs a title and what it says (its payload, e.g. /request_human)")
        if buttons:
            item["buttons"] = [{"title": str(b["title"]).strip(), "payload": str(b["payload"]).strip()} for b in buttons]
        cleaned.append(item)
    if not cleaned:
        raise ContentError("A response needs at least one text")
    return cleaned
