"""Model versions as the console shows them: the newest evaluation, and two evaluations side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.models import ModelStatus, ModelVersion


def newest_evaluated(session: Session) -> ModelVersion | None:
    """The newest trained version that has per-intent figures."""
    for version in session.scalars(
        select(ModelVersion).where(ModelVersion.status == ModelStatus.READY).order_by(ModelVersion.id.desc()).limit(20)
    ).all():
        if (version.metrics or {}).get("intents"):
            return version
    return None


def accuracy(version: ModelVersion | None) -> float | None:
    """A version's overall accuracy on held-out examples (None when not evaluated)."""
    value = (version.metrics or {}).get("accuracy") if version else None
    return value if isinstance(value, (int, float)) else None


@dataclass
class Row:
    """One line of a comparison: an intent's (or the overall) figure in the new and the live version."""

    name: str
    new: float | None
    live: float | None
    examples: int | None = None

    @property
    def change(self) -> float | None:
        return None if self.new is None or self.live is None else self.new - self.live


def compare(new: ModelVersion, live: ModelVersion | None) -> list[Row]:
    """Overall figures, then each intent, worst first in the new version."""
    mine: dict[str, Any] = new.metrics or {}
    theirs: dict[str, Any] = (live.metrics if live else None) or {}
    rows = [
        Row("All held-out examples (accuracy)", mine.get("accuracy"), theirs.get("accuracy"), mine.get("held_out")),
        Row("Balance across intents (macro F1)", mine.get("macro_f1"), theirs.get("macro_f1")),
    ]
    ours, other = mine.get("intents") or {}, theirs.get("intents") or {}
    names = sorted(set(ours) | set(other), key=lambda n: ((ours.get(n) or {}).get("accuracy", 2), n))
    rows += [
        Row(
            n,
            (ours.get(n) or {}).get("accuracy"),
            (other.get(n) or {}).get("accuracy"),
            (ours.get(n) or {}).get("examples"),
        )
        for n in names
    ]
    return rows
