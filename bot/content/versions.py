"""Model versions and the live-model pointer every Rasa instance pulls (Rasa's model-server protocol).

Plain functions of a Session (run with `await sessions.run(fn, …)` or `await sessions.read(fn, …)`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.content import current
from bot.storage.models import AuditEntry, ModelStatus, ModelVersion, utcnow
from bot.storage.settings import get_setting, put_setting

LIVE_KEY = "live_model"


def live_version(session: Session) -> ModelVersion | None:
    """The version Rasa should be running."""
    pointer = get_setting(session, LIVE_KEY)
    if not pointer:
        return None
    return session.get(ModelVersion, int(pointer["id"]))


def register(
    session: Session,
    path: Path,
    fingerprint: str,
    who: str,
    *,
    note: str = "",
    content_version: int | None = None,
    metrics: dict[str, Any] | None = None,
    train_seconds: float | None = None,
) -> ModelVersion:
    """Record a trained model file as a new version (not live yet)."""
    version = ModelVersion(
        file=path.name,
        fingerprint=fingerprint,
        status=ModelStatus.READY,
        stage="ready",
        created_by=who,
        note=note,
        content_version=current.version(session) if content_version is None else content_version,
        metrics=metrics,
        train_seconds=train_seconds,
    )
    session.add(version)
    session.flush()
    return version


def put_version_live(session: Session, version_id: int, who: str) -> ModelVersion:
    """Move the live pointer to a ready version (a new one, or an earlier one back)."""
    version = session.get(ModelVersion, version_id)
    if version is None or version.status != ModelStatus.READY:
        raise ValueError(f"model version {version_id} is not a trained model")
    before = get_setting(session, LIVE_KEY)
    put_setting(session, LIVE_KEY, {"id": version.id, "by": who})
    version.live_since = utcnow()
    session.add(
        AuditEntry(
            who=who,
            action="put model live",
            target=f"version {version.id}",
            before=before,
            after={"id": version.id, "fingerprint": version.fingerprint},
        )
    )
    return version


def history(session: Session, limit: int = 50) -> list[ModelVersion]:
    """The newest versions first."""
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc()).limit(limit)).all())


def ensure_live(session: Session, fingerprint: str, available: bool) -> ModelVersion | None:
    """With no live model yet, put live the model trained from the content as it is (if the store has it)."""
    now = live_version(session)
    if now is not None:
        return now
    if not available:
        return None
    version = register(
        session, Path(f"{fingerprint}.tar.gz"), fingerprint, "seed", note="the model of the seed content"
    )
    return put_version_live(session, version.id, "seed")


def get_version(session: Session, version_id: int) -> ModelVersion | None:
    """One version, or None."""
    return session.get(ModelVersion, version_id)
