"""Saved replies: what agents send with /r, kept by the console; their placeholders and how they are found."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.desk_models import SavedReply
from bot.storage.models import AuditEntry

PLACEHOLDERS = ("first_name", "ticket", "agent")
EXAMPLE = {"first_name": "Maya", "ticket": "T000042", "agent": "Alex"}  # the console's preview
NAME_CHARS, CATEGORY_CHARS, TEXT_CHARS = 64, 64, 3000
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_WORD = re.compile(r"\w+")


class ReplyError(ValueError):
    """A saved reply that cannot be kept as given; the message says why, for the admin."""


@dataclass(frozen=True)
class Usage:
    """A saved reply's name, category and how often agents sent it."""

    name: str
    category: str
    uses: int


def unknown_placeholders(text: str) -> list[str]:
    """The `{…}` in a text that are not placeholders the desk fills, in order, each once."""
    found = [name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS]
    return list(dict.fromkeys(found))


def render(text: str, values: dict[str, str]) -> str:
    """The text with each known placeholder filled in one pass (a value is never read as a placeholder itself);
    anything else in braces stays as written."""
    return _PLACEHOLDER.sub(
        lambda m: values.get(m.group(1), m.group(0)) if m.group(1) in PLACEHOLDERS else m.group(0), text
    )


def preview(text: str) -> str:
    """The text as a customer would read it, with the example values."""
    return render(text, EXAMPLE)


def all_replies(session: Session) -> list[SavedReply]:
    """Every saved reply by category (uncategorised last), the most used first within one, then by name."""
    replies = list(session.scalars(select(SavedReply)))
    return sorted(replies, key=lambda r: (r.category == "", r.category.lower(), -r.uses, r.name.lower()))


def by_name(session: Session, name: str) -> SavedReply | None:
    """The reply with exactly this name (letter case aside)."""
    wanted = " ".join(name.split()).lower()
    return next((r for r in session.scalars(select(SavedReply)) if r.name.lower() == wanted), None)


def best(session: Session, words: str, limit: int = 3) -> list[SavedReply]:
    """The replies that match the words best: a word in the name counts most, then the category, then the text;
    the more used first among equals. Only replies that match at least one word."""
    wanted = {w.lower() for w in _WORD.findall(words)}
    scored = []
    for reply in session.scalars(select(SavedReply)):
        name, category = _words(reply.name), _words(reply.category)
        text = _words(reply.text)
        score = sum(3 * (w in name) + 2 * (w in category) + (w in text) for w in wanted)
        score += sum(1 for w in wanted for n in name if n.startswith(w) and n != w)
        if score:
            scored.append((-score, -reply.uses, reply.name.lower(), reply))
    return [entry[-1] for entry in sorted(scored, key=lambda e: e[:3])[:limit]]


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def save(session: Session, who: str, reply_id: int | None, name: str, text: str, category: str) -> SavedReply:
    """A new reply (no id) or a change to one, checked and written to the audit log; ReplyError says what is wrong."""
    name, category, text = " ".join(name.split()), " ".join(category.split()), text.strip()
    if not name or not text:
        raise ReplyError("A saved reply needs a name and a text")
    if len(name) > NAME_CHARS or len(category) > CATEGORY_CHARS or len(text) > TEXT_CHARS:
        raise ReplyError(f"Keep the name and category under {NAME_CHARS} characters and the text under {TEXT_CHARS}")
    if unknown := unknown_placeholders(text):
        known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        shown = ", ".join(f"{{{u}}}" for u in unknown)
        raise ReplyError(f"Unknown placeholder {shown}: the ones filled in are {known}")
    same = by_name(session, name)
    reply = session.get(SavedReply, reply_id) if reply_id is not None else SavedReply(uses=0)
    if reply is None:
        raise ReplyError("That saved reply no longer exists")
    if same is not None and same.id != reply.id:
        raise ReplyError(f"There is a saved reply named “{same.name}” already")
    before = _state(reply) if reply_id is not None else None
    reply.name, reply.text, reply.category = name, text, category
    session.add(reply)
    session.flush()
    action = "change saved reply" if before is not None else "add saved reply"
    session.add(AuditEntry(who=who, action=action, target=name, before=before, after=_state(reply)))
    return reply


def delete(session: Session, who: str, reply_id: int) -> str | None:
    """Delete a reply (written to the audit log); its name, or None when it was gone already."""
    reply = session.get(SavedReply, reply_id)
    if reply is None:
        return None
    session.add(AuditEntry(who=who, action="delete saved reply", target=reply.name, before=_state(reply), after=None))
    session.delete(reply)
    return reply.name


def used(session: Session, reply_id: int) -> None:
    """One more use of a reply (it was sent to a customer)."""
    reply = session.get(SavedReply, reply_id)
    if reply is not None:
        reply.uses += 1


def usage(session: Session) -> list[Usage]:
    """How often each reply was sent, the most used first."""
    replies = session.scalars(select(SavedReply).order_by(SavedReply.uses.desc(), SavedReply.name))
    return [Usage(r.name, r.category, r.uses) for r in replies]


def _state(reply: SavedReply) -> dict[str, str]:
    return {"name": reply.name, "category": reply.category, "text": reply.text}
