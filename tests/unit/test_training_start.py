"""Starting a training from the console: one at a time, and what a dead process left behind is not shown training."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.content import deploy
from bot.content.deploy import Trainer, TrainingBusy
from bot.storage.models import ModelStatus, ModelVersion, utcnow


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
