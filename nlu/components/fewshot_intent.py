"""FewShotIntentClassifier: LinearIntentClassifier for intents with a few examples, with a confidence fit elsewhere.

An admin's new intent has 5 to 10 phrasings. With so few, the SVM's scores are small and alike, and the sentence
encoder's nearest example says more. This classifier keeps LinearIntentClassifier's features and SVM and adds:

- nearest-neighbour evidence: each intent's score is the SVM score plus `neighbour_blend` times the cosine of the
  message's sentence embedding to that intent's nearest training example;
- a confidence that needs no tuning on the bot's own data: a logistic model of "the best intent is right" over
  (blended score, its margin over the second best, the nearest-example cosine, its margin over the best other
  intent's), fit on other data (CLINC150's train/validation split, few-shot draws with intents left out as strangers:
  `python -m bench.fewshot_calibrate`) and shipped as `nlu/components/fewshot_calibration.json.txt`, read by default.
  `calibration` in the config overrides it with weights of its own.

It needs the sentence encoder (`encoder`). Persisted as LinearIntentClassifier is (plain arrays and JSON).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe

from nlu.components import linear_features as features
from nlu.components.linear_intent import LinearIntentClassifier

# Not .json: Rasa reads every .json under nlu/ as training data (tests/nlu/test_training_data_layout.py).
SHIPPED_CALIBRATION = Path(__file__).with_name("fewshot_calibration.json.txt")
NEIGHBOUR_MARGIN = "neighbour_margin"
LOG_EXAMPLES = "log_examples"


@functools.lru_cache(maxsize=4)
def shipped_calibration(path: Path = SHIPPED_CALIBRATION) -> dict[str, Any]:
    """The calibration shipped with the product (fit on CLINC150, never on a bot's own data): its `weights` and
    the `neighbour_blend` they were fit with."""
    shipped = json.loads(path.read_text())
    return {
        "weights": {name: float(value) for name, value in shipped["weights"].items()},
        "neighbour_blend": float(shipped["neighbour_blend"]),
    }


def margins(values: np.ndarray) -> np.ndarray:
    """Each class's value minus the best other class's (positive for the best class only)."""
    if values.shape[1] < 2:
        return np.zeros_like(values)
    top_two = np.sort(values, axis=1)[:, -2:]
    best_other = np.where(values >= top_two[:, 1:], top_two[:, :1], top_two[:, 1:])
    return values - best_other


def blend(scores: np.ndarray, cosines: np.ndarray | None, weight: float) -> np.ndarray:
    """The SVM scores plus `weight` times each class's nearest-example cosine."""
    if cosines is None or not weight:
        return scores
    return scores + np.float32(weight) * cosines


def evidence(cosines: np.ndarray | None, counts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The per-class features the calibration weighs besides the score and its margin: the nearest-example cosine,
    its margin over the best other class's, and the log of the class's number of training examples (scores
    grow with it: one calibration serves 5 examples and 200)."""
    if cosines is None:
        return {}
    found = {"neighbour": cosines, NEIGHBOUR_MARGIN: margins(cosines)}
    if counts is not None:
        found[LOG_EXAMPLES] = np.broadcast_to(np.log(np.maximum(counts, 1)).astype(cosines.dtype), cosines.shape)
    return found


def class_counts(starts: np.ndarray, total: int) -> np.ndarray:
    """The number of examples of each class from the first row of each (classes' rows are consecutive)."""
    return np.diff(np.append(starts, total))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FewShotIntentClassifier(LinearIntentClassifier):
    """LinearIntentClassifier with nearest-example evidence and a calibration shipped with the product."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **LinearIntentClassifier.get_default_config(),
            "encoder": "var/encoders/all-MiniLM-L6-v2",
            "encoder_weight": 2.0,
            # Score of an intent = SVM score + neighbour_blend * cosine to its nearest example;
            # null: the shipped calibration's.
            "neighbour_blend": None,
            # null: the shipped calibration (SHIPPED_CALIBRATION); or weights {bias, score, margin,
            # neighbour, neighbour_margin} of calibrated_logit.
            "calibration": None,
        }

    def _calibration(self) -> dict[str, float]:
        return self._config.get("calibration") or shipped_calibration()["weights"]

    def _blend(self) -> float:
        weight = self._config.get("neighbour_blend")
        return float(shipped_calibration()["neighbour_blend"] if weight is None else weight)

    def _uses(self, feature: str) -> bool:
        # The nearest-example cosine is always needed (the blend and the shipped calibration).
        return feature == "neighbour" and bool(self._config.get("encoder"))

    def scores(self, texts: list[str]) -> np.ndarray:
        linear = super().scores(texts)
        return blend(linear, self.neighbours(texts), self._blend())

    def extra_features(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self.neighbour_starts is None or self.neighbour_embeddings is None:
            return {}
        counts = class_counts(self.neighbour_starts, len(self.neighbour_embeddings))
        return evidence(self.neighbours(texts), counts)

    def confidence(self, scores: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-features.calibrated_logit(scores, extra, self._calibration())))
