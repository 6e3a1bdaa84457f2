"""Admins' edits of the content: intents and their examples, responses. Each moves the content's version on and is
audited (`record_change`). Deleting or renaming an intent that rules, stories, forms or responses use is refused with
the list of what uses it. A FAQ is a retrieval intent `faq/<name>` whose answer is `utter_faq/<name>`: the two are
made, renamed and deleted together.

Plain functions of a Session (run with `await sessions.run(fn, …)`): a refused edit raises ContentError, and the
transaction is rolled back with it.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.content.current import load, record_change
from bot.content.files import NLU_DIR, ContentError
from bot.content.usages import usages
from bot.storage.models import ContentIntent, ContentLayout, ContentResponse

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


def _intent_row(session: Session, name: str) -> ContentIntent:
    row = session.scalar(select(ContentIntent).where(ContentIntent.name == name, ContentIntent.removed.is_(False)))
    if row is None:
        raise ContentError(f"There is no intent {name}")
    return row


def _response_row(session: Session, name: str, *, removed: bool = False) -> ContentResponse | None:
    query = select(ContentResponse).where(ContentResponse.name == name)
    if not removed:
        query = query.where(ContentResponse.removed.is_(False))
    return session.scalar(query)


def _next_position(session: Session, model: type[ContentIntent | ContentResponse]) -> int:
    rows = session.scalars(select(model.position).order_by(model.position.desc()).limit(1)).first()
    return (rows or 0) + 1


def add_intent(session: Session, name: str, examples: list[str], who: str, answer: str | None = None) -> int:
    """A new intent with its examples; a FAQ (`faq/<name>`) gets its answer too. Returns the new version."""
    name = check_name(name)
    existing = session.scalar(select(ContentIntent).where(ContentIntent.name == name))
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
        session.delete(existing)
        session.flush()
    session.add(
        ContentIntent(
            name=name, examples=examples, file=file, listed=not is_faq, position=_next_position(session, ContentIntent)
        )
    )
    layout = session.get(ContentLayout, file)
    if layout is None:
        session.add(ContentLayout(path=file, segments=[{"raw": NEW_FILE_HEAD}, {"intent": name}]))
    else:
        layout.segments = [*layout.segments, {"raw": "\n"}, {"intent": name}]
    if is_faq:
        response = faq_response(name)
        assert response
        old = _response_row(session, response, removed=True)
        if old is not None:
            session.delete(old)
            session.flush()
        session.add(
            ContentResponse(
                name=response,
                variations=[{"text": answer.strip()}],  # type: ignore[union-attr]
                position=_next_position(session, ContentResponse),
            )
        )
    return record_change(session, who, "add intent", name, None, {"examples": examples, "answer": answer})


def set_examples(session: Session, name: str, examples: list[str], who: str) -> int:
    """Replace an intent's examples."""
    row = _intent_row(session, name)
    examples = clean_examples(examples)
    if row.examples and not examples:
        raise ContentError("An intent needs at least one example; delete the intent instead")
    before = list(row.examples)
    row.examples = examples
    if row.file is None and examples:
        row.file = NEW_INTENTS_FILE
        _place(session, row.file, name)
    return record_change(session, who, "edit examples", name, {"examples": before}, {"examples": examples})


def _place(session: Session, path: str, name: str) -> None:
    layout = session.get(ContentLayout, path)
    if layout is None:
        session.add(ContentLayout(path=path, segments=[{"raw": NEW_FILE_HEAD}, {"intent": name}]))
    else:
        layout.segments = [*layout.segments, {"raw": "\n"}, {"intent": name}]


def rename_intent(session: Session, old: str, new: str, who: str) -> int:
    """Rename an intent no rule, story, form or response uses; a FAQ's answer is renamed with it."""
    new = check_name(new)
    row = _intent_row(session, old)
    if old.startswith(FAQ_PREFIX) != new.startswith(FAQ_PREFIX):
        raise ContentError("A FAQ stays a FAQ (faq/<name>), and another intent cannot become one")
    if session.scalar(select(ContentIntent).where(ContentIntent.name == new)) is not None:
        raise ContentError(f"There is already an intent {new}")
    uses = usages(load(session), old)
    if uses:
        raise ContentInUse(old, uses)
    row.name, row.seed = new, None
    for layout in session.scalars(select(ContentLayout)).all():
        if any(s.get("intent") == old for s in layout.segments):
            layout.segments = [{"intent": new} if s.get("intent") == old else s for s in layout.segments]
    old_answer, new_answer = faq_response(old), faq_response(new)
    if old_answer and new_answer and (response := _response_row(session, old_answer)) is not None:
        response.name, response.seed = new_answer, None
    return record_change(session, who, "rename intent", old, {"name": old}, {"name": new})


def delete_intent(session: Session, name: str, who: str) -> int:
    """Delete an intent no rule, story, form or response uses; a FAQ's answer goes with it."""
    row = _intent_row(session, name)
    uses = usages(load(session), name)
    if uses:
        raise ContentInUse(name, uses)
    row.removed = True
    answer = faq_response(name)
    if answer and (response := _response_row(session, answer)) is not None:
        response.removed = True
    return record_change(session, who, "delete intent", name, {"examples": list(row.examples)}, None)


def set_response(session: Session, name: str, variations: list[dict[str, Any]], who: str) -> int:
    """Replace a response's variations (each with `text`, optional `buttons` of title and payload)."""
    cleaned = check_variations(variations)
    row = _response_row(session, name)
    before = None
    if row is None:
        row = ContentResponse(name=name, position=_next_position(session, ContentResponse))
        session.add(row)
    else:
        before = {"variations": list(row.variations)}
    row.variations = cleaned
    return record_change(session, who, "edit response", name, before, {"variations": cleaned})


def check_variations(variations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variations with text (and buttons with a title and a payload), or ContentError."""
    cleaned = []
    for variation in variations:
        text = str(variation.get("text", "")).strip()
        if not text:
            continue
        item: dict[str, Any] = {**{k: v for k, v in variation.items() if k not in ("text", "buttons")}, "text": text}
        buttons = [
            b
            for b in variation.get("buttons") or []
            if str(b.get("title", "")).strip() or str(b.get("payload", "")).strip()
        ]
        for button in buttons:
            if not str(button.get("title", "")).strip() or not str(button.get("payload", "")).strip():
                raise ContentError("Every button needs a title and what it says (its payload, e.g. /request_human)")
        if buttons:
            item["buttons"] = [
                {"title": str(b["title"]).strip(), "payload": str(b["payload"]).strip()} for b in buttons
            ]
        cleaned.append(item)
    if not cleaned:
        raise ContentError("A response needs at least one text")
    return cleaned
