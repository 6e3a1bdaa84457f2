"""Button payloads kept on the server; Telegram carries only a short random id."""

from __future__ import annotations

import secrets

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.storage.models import CallbackPayload

PREFIX = "b:"
_REGISTER = insert(CallbackPayload.__table__)  # buttons come with many answers: one plain INSERT, no unit of work


def register(session: Session, *, chat_id: int, title: str, payload: str) -> str:
    """Store a button's payload and return the callback data that stands for it."""
    key = secrets.token_urlsafe(12)
    session.execute(_REGISTER, {"id": key, "chat_id": chat_id, "title": title[:255], "payload": payload})
    return PREFIX + key


def resolve(session: Session, *, chat_id: int, data: str | None) -> CallbackPayload | None:
    """The payload behind callback data, only if it was issued to this very chat."""
    if not data or not data.startswith(PREFIX):
        return None
    found = session.get(CallbackPayload, data[len(PREFIX) :][:32])
    if found is None or found.chat_id != chat_id:
        return None
    return found
