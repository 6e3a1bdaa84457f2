"""The answer decision: a logistic model over the top candidate's features gives P(right article); answer at or
above a threshold. Weights, threshold and ranking weights are fit by `bench/kb_fit.py` on validation data only and
shipped as `decision.json` next to this module."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.kb.search import FEATURES, Weights

DEFAULT_MODEL = Path(__file__).resolve().parent / "decision.json"


@dataclass(frozen=True)
class Model:
    """p = sigmoid(bias + sum(weight_f * (x_f - mean_f) / scale_f)); answer when p >= threshold."""

    weights: dict[str, float]
    bias: float
    threshold: float
    mean: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    ranking: Weights = field(default_factory=Weights)
    about: dict[str, Any] = field(default_factory=dict)

    def probability(self, features: Mapping[str, float]) -> float:
        z = self.bias
        for name, weight in self.weights.items():
            z += weight * (features[name] - self.mean.get(name, 0.0)) / self.scale.get(name, 1.0)
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def answers(self, features: Mapping[str, float]) -> bool:
        return self.probability(features) >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.weights),
            "weights": self.weights,
            "bias": self.bias,
            "threshold": self.threshold,
            "mean": self.mean,
            "scale": self.scale,
            "ranking": {"title": self.ranking.title, "passage": self.ranking.passage, "bm25": self.ranking.bm25},
            "about": self.about,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        unknown = set(data["weights"]) - set(FEATURES)
        if unknown:
            raise ValueError(f"decision model names unknown features {sorted(unknown)}; known: {FEATURES}")
        return cls(
            weights={name: float(value) for name, value in data["weights"].items()},
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            mean={name: float(value) for name, value in data.get("mean", {}).items()},
            scale={name: float(value) for name, value in data.get("scale", {}).items()},
            ranking=Weights(**data.get("ranking", {})),
            about=dict(data.get("about", {})),
        )


def load_model(path: str | Path = DEFAULT_MODEL) -> Model:
    """The decision model of a JSON file (by default the one fit on StackFAQ's validation half)."""
    return Model.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
