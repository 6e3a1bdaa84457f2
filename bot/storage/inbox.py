"""The inbox: every Telegram update, stored before it is confirmed, processed once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.storage.base import affected
from bot.storage.db import database_failed
from bot.storage.models import Direction, InboxStatus, InboxUpdate, Message, utcnow


@dataclass
class Handling:
    """One update being handled; `marked` once a handler marked it done in its own last transaction."""

    update_id: int
    marked: bool = False


_handling: ContextVar[Handling | None] = ContextVar("frontline_inbox_handling", default=None)


@contextmanager
def handling(update_id: int) -> Iterator[Handling]:
    """While an update is handled: lets its handler mark it done with the replies it records (one transaction
    fewer per message), and tells the caller whether it did, so the caller marks it done otherwise."""
    current = Handling(update_id)
    token = _handling.set(current)
    try:
        yield current
    finally:
        _handling.reset(token)


_UPDATES = InboxUpdate.__table__
# The statements on every message's way are built once, with parameters: SQLAlchemy then reuses the compiled form,
# where a statement built anew for each call costs more to build and look up than to run (make bench-profile).
_STORE = {
    name: dialect.insert(_UPDATES).on_conflict_do_nothing(index_elements=[_UPDATES.c.update_id])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}  # the two we run on
_ANSWERED = exists().where(Message.update_id == bindparam("the_update"), Message.direction == Direction.OUT)
_CLAIM = (
    update(_UPDATES)
    .where(_UPDATES.c.update_id == bindparam("the_update"), _UPDATES.c.rasa_sent_at.is_(None))
    .values(rasa_sent_at=bindparam("now"), updated_at=bindparam("now"))
)
_CLAIM_UNLESS_ANSWERED = _CLAIM.where(~_ANSWERED)
_DONE = (
    update(_UPDATES)
    .where(_UPDATES.c.update_id == bindparam("the_update"))
    .values(status=InboxStatus.DONE, processed_at=bindparam("now"))
)


def store(session: Session, *, update_id: int, chat_id: int | None, payload: dict[str, Any]) -> bool:
    """Record an update unless it is already there; True when it is new (one statement: INSERT … ON CONFLICT)."""
    row = {"update_id": update_id, "chat_id": chat_id, "payload": payload, "status": InboxStatus.PENDING}
    result = session.execute(_STORE[session.get_bind().dialect.name], row)
    return affected(result) == 1


def pending(session: Session) -> list[InboxUpdate]:
    """Updates stored but not yet processed, oldest first."""
    rows = session.scalars(
        select(InboxUpdate).where(InboxUpdate.status == InboxStatus.PENDING).order_by(InboxUpdate.update_id)
    )
    return list(rows)


def newest_update_id(session: Session) -> int | None:
    """The highest update id ever stored, to resume polling after it."""
    return session.scalar(select(InboxUpdate.update_id).order_by(InboxUpdate.update_id.desc()).limit(1))


def mark_sent_to_rasa(session: Session, update_id: int, *, unless_answered: bool = False) -> bool:
    """Claim the one permitted trip to Rasa for this update; False when it was already taken, or (with
    `unless_answered`) when replies to the update are recorded: one statement either way."""
    claim = _CLAIM_UNLESS_ANSWERED if unless_answered else _CLAIM
    result = session.execute(claim, {"the_update": update_id, "now": utcnow()})
    return affected(result) == 1


def claimed_at(session: Session, update_id: int) -> datetime | None:
    """When the trip to Rasa for this update was claimed (None if it never was)."""
    return session.scalar(select(InboxUpdate.rasa_sent_at).where(InboxUpdate.update_id == update_id))


def mark_done(session: Session, update_id: int) -> None:
    """The update has been fully handled; unless the database failed while it was (then it stays pending, to be
    handled again: see bot/telegram/dispatch.py)."""
    if database_failed():
        return
    session.execute(_DONE, {"the_update": update_id, "now": utcnow()})
    current = _handling.get()
    if current is not None and current.update_id == update_id:
        current.marked = True


def unhandled(session: Session, chat_id: int) -> bool:
    """Whether an update of this chat is stored and not yet handled (or still being handled)."""
    query = select(InboxUpdate.update_id).where(
        InboxUpdate.chat_id == chat_id, InboxUpdate.status == InboxStatus.PENDING
    )
    return session.scalar(query.limit(1)) is not None


def drop_handled(session: Session, chat_id: int) -> int:
    """Delete the chat's handled updates (never one still to be handled); returns how many."""
    result = session.execute(
        delete(InboxUpdate).where(InboxUpdate.chat_id == chat_id, InboxUpdate.status == InboxStatus.DONE)
    )
    return affected(result)


def _quoted(payload: Any) -> Iterator[tuple[int, int]]:
    """(chat id, message id) of every message inside an update: the one it brings, and those it quotes (the message
    a pressed button is on, the message a reply answers)."""
    if isinstance(payload, dict):
        chat = payload.get("chat")
        if isinstance(chat, dict) and isinstance(payload.get("message_id"), int) and isinstance(chat.get("id"), int):
            yield chat["id"], payload["message_id"]
        for inner in payload.values():
            yield from _quoted(inner)
    elif isinstance(payload, list):
        for inner in payload:
            yield from _quoted(inner)


def _threads(payload: Any) -> Iterator[int]:
    """The forum topics (message_thread_id) an update's messages are in."""
    if isinstance(payload, dict):
        if isinstance(payload.get("message_thread_id"), int):
            yield payload["message_thread_id"]
        for inner in payload.values():
            yield from _threads(inner)
    elif isinstance(payload, list):
        for inner in payload:
            yield from _threads(inner)


def scrub(
    session: Session,
    *,
    chats: Iterable[int],
    update_ids: Iterable[int],
    messages: Iterable[tuple[int, int]],
    topics: Iterable[int] = (),
    spare_after: int | None = None,
) -> int:
    """Forget what the inbox holds of someone: the updates of their own chats go (with `spare_after`, all but those
    after that update still to be handled); in the other chats their
    transcript's messages went to (the agents' group, agents' private chats), the updates that caused one of those
    messages (`update_ids`: a reply relayed, a claim), or that carry one of them (`messages`: (chat id, Telegram
    message id), e.g. a card pressed, a relayed message replied to), or that were written in one of their tickets'
    `topics` in the agents' group, keep only their update id. Returns how many updates were scrubbed."""
    chats, update_ids, messages, topics = set(chats), set(update_ids), set(messages), set(topics)
    if chats:
        theirs = delete(InboxUpdate).where(InboxUpdate.chat_id.in_(chats))
        if spare_after is not None:
            later = (InboxUpdate.status == InboxStatus.PENDING) & (InboxUpdate.update_id > spare_after)
            theirs = theirs.where(~later)
        session.execute(theirs)
    other_chats = {chat for chat, _ in messages} - chats
    candidates = session.execute(
        select(InboxUpdate.update_id, InboxUpdate.payload).where(InboxUpdate.chat_id.in_(other_chats))
    ).all()
    scrubbed = [
        update_id
        for update_id, payload in candidates
        if update_id in update_ids
        or any(pair in messages for pair in _quoted(payload))
        or any(topic in topics for topic in _threads(payload))
    ]
    for update_id in scrubbed:
        session.execute(
            update(InboxUpdate).where(InboxUpdate.update_id == update_id).values(payload={"update_id": update_id})
        )
    return len(scrubbed)


def prune(session: Session, now: datetime, keep_days: float, limit: int = 10_000) -> int:
    """Delete the updates handled more than `keep_days` ago (their replies and transcript stay), at most `limit` at
    a time (a long first pass would hold up other writers); returns how many. Telegram never sends an update again
    once confirmed (and keeps an unconfirmed one 24 hours at most), so an update this old is no longer needed to
    answer it exactly once."""
    old = (
        select(InboxUpdate.update_id)
        .where(InboxUpdate.status == InboxStatus.DONE, InboxUpdate.processed_at < now - timedelta(days=keep_days))
        .limit(limit)
    )
    result = session.execute(delete(InboxUpdate).where(InboxUpdate.update_id.in_(old.scalar_subquery())))
    return affected(result)
