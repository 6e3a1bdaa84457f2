"""Model versions and the live-model pointer every Rasa instance pulls (Rasa's model-server protocol)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content import store
from bot.storage.models import AuditEntry, ModelStatus, ModelVersion, utcnow

LIVE_KEY = "live_model"


async def live(session: AsyncSession) -> ModelVersion | None:
    """The version Rasa should be running."""
    pointer = await store.get_setting(session, LIVE_KEY)
    if not pointer:
        return None
    return await session.get(ModelVersion, int(pointer["id"]))


async def register(session: AsyncSession, path: Path, fingerprint: str, who: str, *, note: str = "",
                   content_version: int | None = None, metrics: dict | None = None,
                   train_seconds: float | None = None) -> ModelVersion:
    """Record a trained model file as a new version (not live yet)."""
    version = ModelVersion(file=path.name, fingerprint=fingerprint, status=ModelStatus.READY, stage="ready", created_by=who, note=note,
                           content_version=await store.version(session) if content_version is None else content_version,
                           metrics=metrics, train_seconds=train_seconds)
    session.add(version)
    await session.flush()
    return version


async def put_live(session: AsyncSession, version_id: int, who: str) -> ModelVersion:
    """Move the live pointer to a ready version (a new one, or an earlier one back)."""
    version = await session.get(ModelVersion, version_id)
    if version is None or version.status != ModelStatus.READY:
        raise ValueError(f"model version {version_id} is not a trained model")
    before = await store.get_setting(session, LIVE_KEY)
    await store.put_setting(session, LIVE_KEY, {"id": version.id, "by": who})
    version.live_since = utcnow()
    session.add(AuditEntry(who=who, action="put model live", target=f"version {version.id}",
                           before=before, after={"id": version.id, "fingerprint": version.fingerprint}))
    return version


async def history(session: AsyncSession, limit: int = 50) -> list[ModelVersion]:
    """The newest versions first."""
    return list((await session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc()).limit(limit))).all())


async def ensure_live(session: AsyncSession, models_dir: Path, fingerprint: str) -> ModelVersion | None:
    """With no live model yet, put live the model trained from the content as it is (if there is one)."""
    current = await live(session)
    if current is not None:
        return current
    path = models_dir / f"{fingerprint}.tar.gz"
    if not path.exists():
        return None
    version = await register(session, path, fingerprint, "seed", note="the model of the seed content")
    return await put_live(session, version.id, "seed")
