"""Named values the processes share (the content's version, the seed's fingerprint, the live model).

Plain functions of a Session (run with `await sessions.run(fn, …)`, `await sessions.read(fn, …)` or
`await session.run_sync(fn, …)`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.storage.models import Setting


def get_setting(session: Session, key: str) -> dict[str, Any] | None:
    """A shared setting's value, or None."""
    row = session.get(Setting, key)
    return dict(row.value) if row else None


def put_setting(session: Session, key: str, value: dict[str, Any]) -> None:
    """Set a shared setting."""
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
