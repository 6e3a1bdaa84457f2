"""Starting a training from the console: one at a time, and what a dead process left behind is not shown training."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.config import load_settings
from bot.content import deploy
from bot.content.deploy import Trainer, TrainingBusy
from bot.storage.db import create_engine, create_sessionmaker, migrate
from bot.storage.models import ModelStatus, ModelVersion, utcnow
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database


class IdleTrainer(Trainer):
    """A trainer whose training waits until told to end (no Rasa runs in unit tests)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.finish = asyncio.Event()

    async def _run(self, version_id: int) -> None:
        await self.finish.wait()


def _trainers(sessions, tmp_path: Path, count: int) -> list[IdleTrainer]:
    """`count` trainers on one database, as in that many app workers."""
    return [IdleTrainer(load_settings({"FRONTLINE_VAR": str(tmp_path)}), sessions) for _ in range(count)]


@pytest.mark.parametrize("workers", [1, 2])
async def test_two_admins_pressing_train_at_once_start_one_training(sessions, tmp_path: Path, workers: int) -> None:
    trainers = _trainers(sessions, tmp_path, workers)
    pressed = [trainers[0].start("ann"), trainers[-1].start("bob")]
    outcomes = await asyncio.gather(*pressed, return_exceptions=True)
    started = [o for o in outcomes if isinstance(o, int)]
    assert len(started) == 1 and sum(isinstance(o, TrainingBusy) for o in outcomes) == 1, outcomes
    async with sessions() as session:
        rows = (await session.scalars(select(ModelVersion))).all()
    assert [(row.id, row.status) for row in rows] == [(started[0], ModelStatus.TRAINING)]
    for trainer in trainers:
        trainer.finish.set()
        await trainer.wait()


async def test_a_training_left_by_a_dead_process_is_marked_failed_at_the_next_start(sessions, tmp_path: Path) -> None:
    async with sessions.begin() as session:
        left = ModelVersion(
            status=ModelStatus.TRAINING,
            created_by="ann",
            note="",
            fingerprint="",
            content_version=1,
            stage="training",
            created_at=utcnow() - deploy.STALE_AFTER - timedelta(minutes=1),
        )
        session.add(left)
    [trainer] = _trainers(sessions, tmp_path, 1)
    new = await trainer.start("bob")
    async with sessions() as session:
        old = await session.get(ModelVersion, left.id)
        current = await session.get(ModelVersion, new)
    assert (old.status, old.stage, old.error) == (ModelStatus.FAILED, "failed", deploy.ABANDONED)
    assert current.status is ModelStatus.TRAINING
    trainer.finish.set()
    await trainer.wait()


async def test_the_consoles_training_keeps_the_encoders_embeddings(
    sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa trains with the encoder's embedding cache switched on (encoder/cache.py), so a retrain after an admin's
    small change encodes only the new examples."""
    from encoder.cache import ENVIRONMENT

    monkeypatch.delenv(ENVIRONMENT, raising=False)
    seen: list[dict[str, str]] = []

    class Finished:
        stdout = asyncio.StreamReader()
        stdout.feed_eof()

        async def wait(self) -> int:
            return 0

    async def started(*arguments, env, **options):  # type: ignore[no-untyped-def]
        seen.append(env)
        return Finished()

    monkeypatch.setattr(deploy.asyncio, "create_subprocess_exec", started)
    (trainer,) = _trainers(sessions, tmp_path, 1)
    version_id = await trainer.start("sam")
    await trainer._rasa(version_id, ["train"])
    trainer.finish.set()
    await trainer.wait()
    assert seen[0][ENVIRONMENT] == str(deploy.ROOT / "var" / "encoders" / "cache")


@contextlib.asynccontextmanager
async def _instance(url: str, var: Path) -> AsyncIterator[IdleTrainer]:
    """An app instance on another machine: its own FRONTLINE_VAR, engine and pool, the shared database."""
    engine = create_engine(url)
    try:
        yield IdleTrainer(load_settings({"FRONTLINE_VAR": str(var), "DATABASE_URL": url}), create_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _waiting_for_the_start_lock(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
        return int(
            await connection.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))
        )


async def test_two_instances_on_one_postgresql_pressing_train_at_once_start_one_training(tmp_path: Path) -> None:
    """Both presses reach the database before either is decided (the test holds the start lock until both wait on
    it): exactly one training runs, the other instance is told one is running."""
    url = await _fresh_postgres_database()
    watcher = create_engine(url)
    try:
        await migrate(watcher)
        async with (
            _instance(url, tmp_path / "one") as one,
            _instance(url, tmp_path / "two") as two,
            watcher.connect() as gate,
        ):
            await gate.execute(text("SELECT pg_advisory_lock(:k)"), {"k": deploy.START_LOCK})
            pressed = [asyncio.ensure_future(one.start("ann")), asyncio.ensure_future(two.start("bob"))]
            while not all(p.done() for p in pressed) and await _waiting_for_the_start_lock(watcher) < 2:
                await asyncio.sleep(0.01)
            await gate.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": deploy.START_LOCK})
            await gate.commit()
            outcomes = await asyncio.gather(*pressed, return_exceptions=True)
            started = [o for o in outcomes if isinstance(o, int)]
            busy = [o for o in outcomes if isinstance(o, TrainingBusy)]
            assert len(started) == 1 and len(busy) == 1, outcomes
            assert f"version {started[0]}" in str(busy[0])
            async with one._sessions() as session:
                rows = (await session.scalars(select(ModelVersion))).all()
            assert [(row.id, row.status) for row in rows] == [(started[0], ModelStatus.TRAINING)]
            for trainer in (one, two):
                trainer.finish.set()
                await trainer.wait()
    finally:
        await watcher.dispose()
        await _drop_postgres_database(url)
