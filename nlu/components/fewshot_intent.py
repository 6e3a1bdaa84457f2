"""FewShotIntentClassifier: LinearIntentClassifier for intents with a few examples, with a confidence fit elsewhere.

An admin's new intent has 5 to 10 phrasings. With so few, the SVM's scores are small and alike, and the sentence
encoder's nearest example says more. This classifier keeps LinearIntentClassifier's features and SVM and adds:

- nearest-neighbour evidence: each intent's score is the SVM score plus `neighbour_blend` times the cosine of the
  message's sentence embedding to that intent's nearest training example;
- a confidence that needs no tuning on the bot's own data: a logistic model of "the best intent is right" over
  (blended score, its margin over the second best, the nearest-example cosine, its margin over the best other
  intent's, the log of the intent's number of examples; its threshold moves with that number), fit on other data
  (CLINC150's train/validation split, few-shot draws with intents left out as strangers:
  `python -m bench.fewshot_calibrate`) and shipped as `nlu/components/fewshot_calibration.json.txt`, read by default.
  `calibration` in the config overrides it with weights of its own;
- a mistyped word put back before a message is read (`spelling`, nlu/components/fewshot_spelling.py): a typo the
  few examples never showed costs the encoder and the n-grams less.

With `tune_last_layer` the encoder's last layer is first tuned on the examples (encoder/last_layer.py), and on the
shipped strangers (`strangers`, fewshot_strangers.txt: outlier exposure, their softmax over the intents pulled
towards uniform), so that messages like them have no intent clearly ahead; it has its own calibration, fit the same
way with tuned embeddings.

It needs the sentence encoder (`encoder`). Persisted as LinearIntentClassifier is (plain arrays and JSON).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.training_data import TrainingData

from encoder.last_layer import CONTRASTIVE, PAIRS, Settings, nested
from encoder.tuned import Frozen, TunedEncoder
from nlu.components import linear_features as features
from nlu.components.fewshot_spelling import Speller
from nlu.components.linear_intent import LinearIntentClassifier

# Not .json: Rasa reads every .json under nlu/ as training data (tests/nlu/test_training_data_layout.py).
SHIPPED_CALIBRATION = Path(__file__).with_name("fewshot_calibration.json.txt")  # fit with DEFAULT_ENCODER's
DEFAULT_ENCODER = "var/encoders/all-MiniLM-L6-v2"
SHIPPED = "shipped"
SHIPPED_STRANGERS = Path(__file__).with_name("fewshot_strangers.txt")  # CLINC150's oos_train queries
LAST_LAYER_FILE = "last_layer.npz"  # the tuned last layer (tune_last_layer), beside LinearIntentClassifier's arrays
log = logging.getLogger(__name__)


def read_strangers(setting: str | None) -> list[str]:
    """The strangers `setting` names: SHIPPED's file, a file of one sentence a line (# starts a comment), or none."""
    if not setting:
        return []
    path = SHIPPED_STRANGERS if setting == SHIPPED else Path(setting)
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def calibration_file(encoder: str | Path | None, tuned: bool = False, loss: str = "proto") -> Path:
    """Where the calibration fit with `encoder`'s embeddings is kept: SHIPPED_CALIBRATION for MiniLM-L6 (the
    default), `fewshot_calibration.<directory name>.json.txt` for another (all-mpnet-base-v2's), and
    `fewshot_calibration.<directory name>.tuned.json.txt` for its embeddings with the last layer tuned
    (`.tuned-<loss>.json.txt` when tuned with another loss than the prototype one, `tune_loss`)."""
    name = Path(encoder or DEFAULT_ENCODER).name
    if name == Path(DEFAULT_ENCODER).name and not tuned:
        return SHIPPED_CALIBRATION
    suffix = ("" if not tuned else ".tuned" if loss == "proto" else f".tuned-{loss}") + ".json.txt"
    return SHIPPED_CALIBRATION.with_name(f"fewshot_calibration.{name}{suffix}")


def calibration_for(encoder: str | Path | None, tuned: bool = False, loss: str = "proto") -> Path:
    """The shipped calibration to weigh with: the first there is of `encoder`'s own for embeddings `tuned` with
    `loss`, for embeddings tuned with the prototype loss, for frozen ones (calibration_file), and MiniLM-L6's."""
    for path in (calibration_file(encoder, tuned, loss), calibration_file(encoder, tuned), calibration_file(encoder)):
        if path.is_file():
            return path
    return SHIPPED_CALIBRATION


NEIGHBOUR_MARGIN = "neighbour_margin"
LOG_EXAMPLES = "log_examples"
CENTROID = "centroid"
AGREE = "agree"


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


def evidence(
    cosines: np.ndarray | None, counts: np.ndarray | None = None, centroid: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The per-class features the calibration weighs besides the score and its margin: the nearest-example cosine,
    its margin over the best other class's, the log of the class's number of training examples (scores grow with
    it: one calibration serves 5 examples and 200) and the cosine to the class's mean example (`centroid`)."""
    if cosines is None:
        return {}
    found = {"neighbour": cosines, NEIGHBOUR_MARGIN: margins(cosines)}
    if counts is not None:
        found[LOG_EXAMPLES] = np.broadcast_to(np.log(np.maximum(counts, 1)).astype(cosines.dtype), cosines.shape)
    if centroid is not None:
        found[CENTROID] = centroid
    return found


def derived(scores: np.ndarray, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`extra` and the features made of it: the score and the nearest-example cosine times the log of the class
    size (how much a score says depends on how many examples stand behind it), and whether the nearest example
    agrees with the best score (1 for the class that leads on both)."""
    found = dict(extra)
    if LOG_EXAMPLES in extra:
        found["score_log_examples"] = scores * extra[LOG_EXAMPLES]
        if "neighbour" in extra:
            found["neighbour_log_examples"] = extra["neighbour"] * extra[LOG_EXAMPLES]
    if NEIGHBOUR_MARGIN in extra:
        found[AGREE] = ((extra[NEIGHBOUR_MARGIN] >= 0) & (margins(scores) >= 0)).astype(scores.dtype)
    return found


def class_counts(starts: np.ndarray, total: int) -> np.ndarray:
    """The number of examples of each class from the first row of each (classes' rows are consecutive)."""
    return np.diff(np.append(starts, total))


def centroids(embeddings: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each class's mean example embedding, L2-normalised (classes' rows are consecutive, from `starts`)."""
    sums = np.add.reduceat(embeddings.astype(np.float32), starts, axis=0)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FewShotIntentClassifier(LinearIntentClassifier):
    """LinearIntentClassifier with nearest-example evidence and a calibration shipped with the product."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **LinearIntentClassifier.get_default_config(),
            "encoder": DEFAULT_ENCODER,
            "encoder_weight": 2.0,
            # Score of an intent = SVM score + neighbour_blend * cosine to its nearest example;
            # null: the shipped calibration's.
            "neighbour_blend": None,
            # null: the shipped calibration fit with the encoder's embeddings (calibration_for); or weights {bias, score, margin,
            # neighbour, neighbour_margin} of calibrated_logit.
            "calibration": None,
            # Put a mistyped word back to a known one a keystroke away before reading a message (fewshot_spelling.py).
            "spelling": True,
            # Tune the encoder's last layer on the examples before fitting (encoder/last_layer.py; its own calibration).
            "tune_last_layer": False,
            # Strangers the tuning pushes away from every intent (outlier exposure): "shipped"
            # (fewshot_strangers.txt, what the tuned calibration was fit with), a file of one sentence a line, or
            # null; each weighs `strangers_weight`, and one within `strangers_max_cosine` of an example is skipped.
            "strangers": SHIPPED,
            "strangers_weight": 1.0,
            "strangers_max_cosine": 0.6,
            # The tuning's loss: "proto", "pairs" (SetFit's pair loss, 4 epochs at 3e-4: better on CLINC150
            # validation, about twice the tuning time) or "contrastive" (supervised contrastive, 2 epochs: as good
            # as "pairs" on validation in the tuning time of "proto"); each reads its own tuned calibration
            # (calibration_for).
            "tune_loss": "proto",
        }

    _centroids: np.ndarray | None = None  # each class's mean example, computed once from the stored examples

    def _calibration(self) -> dict[str, float]:
        return self._config.get("calibration") or self._shipped()["weights"]

    _shipped_path: Path | None = None  # calibration_for's choice, made once: it looks for files

    def _shipped(self) -> dict[str, Any]:
        if self._shipped_path is None:
            self._shipped_path = calibration_for(self._config.get("encoder"), self._tunes(), self._loss())
        return shipped_calibration(self._shipped_path)

    # --- the encoder's last layer tuned on the examples ---------------------------------------------------------

    _tuned: TunedEncoder | None = None

    def _tunes(self) -> bool:
        return bool(self._config.get("tune_last_layer")) and bool(self._config.get("encoder"))

    def _encoder(self) -> Any:
        return self._tuned if self._tunes() else super()._encoder()

    def _loss(self) -> str:
        return str(self._config.get("tune_loss") or "proto")

    def _recipe(self) -> Settings:
        recipes = {"proto": Settings(), "pairs": PAIRS, "contrastive": CONTRASTIVE}
        if self._loss() not in recipes:
            raise ValueError(f"tune_loss must be one of {', '.join(recipes)}, not {self._loss()!r}")
        return recipes[self._loss()]

    def train(self, training_data: TrainingData) -> Resource:
        if self._tunes():
            recipe = replace(self._recipe(), background_weight=float(self._config.get("strangers_weight", 1.0)))
            _, texts, labels = features.labelled(training_data, self._config.get("retrieval_intents", False))
            if len(set(labels)) >= 2:
                index = {name: k for k, name in enumerate(sorted(set(labels)))}
                numbers = np.array([index[label] for label in labels])
                self._tuned = TunedEncoder.trained(
                    Frozen.get(self._config["encoder"]),
                    texts,
                    numbers,
                    recipe,
                    read_strangers(self._config.get("strangers")),
                    float(self._config.get("strangers_max_cosine", 1.0)),
                )
                log.info("FewShotIntentClassifier: last layer tuned with %d strangers", self._tuned.strangers)
        return super().train(training_data)

    def persist(self) -> None:
        super().persist()
        if self._tuned is not None:
            with self._model_storage.write_to(self._resource) as directory:
                np.savez(Path(directory) / LAST_LAYER_FILE, **self._tuned.params)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> FewShotIntentClassifier:
        component = super().load(config, model_storage, resource, execution_context, **kwargs)
        assert isinstance(component, FewShotIntentClassifier)
        if component._tunes() and component.classes:
            # A model trained with its layer tuned is of no use without it: fail the load (a serving Rasa keeps the
            # model it has) rather than answer with the wrong vectors or none.
            try:
                with model_storage.read_from(resource) as directory, np.load(Path(directory) / LAST_LAYER_FILE) as a:
                    layer = nested({name: a[name] for name in a.files})
            except (ValueError, FileNotFoundError, OSError) as error:
                raise ValueError(
                    f"FewShotIntentClassifier: the model's tuned last layer is unreadable: {error}"
                ) from error
            component._tuned = TunedEncoder(Frozen.get(config["encoder"]), layer)
            loss = component._loss()
            used = calibration_for(config["encoder"], True, loss)
            if used != calibration_file(config["encoder"], True, loss):
                log.warning(
                    "FewShotIntentClassifier: no calibration fit with %s's embeddings tuned with the %s loss; using %s",
                    config["encoder"],
                    loss,
                    used.name,
                )
        return component

    def _blend(self) -> float:
        weight = self._config.get("neighbour_blend")
        return float(self._shipped()["neighbour_blend"] if weight is None else weight)

    def _uses(self, feature: str) -> bool:
        # The nearest-example cosine is always needed (the blend and the shipped calibration).
        return feature == "neighbour" and bool(self._config.get("encoder"))

    _speller: Speller | None = None

    def spelled(self, texts: list[str]) -> list[str]:
        """The texts with their mistyped words put back (the training examples' words and the encoder's known)."""
        if not self._config.get("spelling") or self._encoder() is None or not self.vectorizers:
            return texts
        if self._speller is None:
            own = [word for vectorizer in self.vectorizers[1:] for word in vectorizer.vocabulary_ if " " not in word]
            self._speller = Speller(own, self._encoder().tokenizer.vocab)
        return [self._speller.text(text) for text in texts]

    def scores(self, texts: list[str]) -> np.ndarray:
        texts = self.spelled(texts)
        linear = super().scores(texts)
        return blend(linear, self.neighbours(texts), self._blend())

    def extra_features(self, texts: list[str]) -> dict[str, np.ndarray]:
        texts = self.spelled(texts)
        if self.neighbour_starts is None or self.neighbour_embeddings is None or self._encoder() is None:
            return {}
        counts = class_counts(self.neighbour_starts, len(self.neighbour_embeddings))
        if self._centroids is None:
            self._centroids = centroids(self.neighbour_embeddings, self.neighbour_starts).T.copy()
        centroid = self._encoder().encode(texts) @ self._centroids  # the texts' embeddings are cached by now
        return evidence(self.neighbours(texts), counts, centroid)

    def confidence(self, scores: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
        logit = features.calibrated_logit(scores, derived(scores, extra or {}), self._calibration())
        return 1.0 / (1.0 + np.exp(-logit))
