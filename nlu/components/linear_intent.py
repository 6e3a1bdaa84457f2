"""LinearIntentClassifier: a linear SVM over sparse n-grams and sentence embeddings, with an honest confidence.

Features of a message's text: TF-IDF of character n-grams within words (1-4 by default: typos, word forms), TF-IDF
of words and word pairs (1-2) and, optionally, a pretrained sentence embedding (`encoder.sentence_encoder`,
MiniLM-L6 run in numpy), which knows that "parcel" and "package" mean alike.

A one-vs-rest linear SVM (scikit-learn's LinearSVC) scores every intent. The score of the best intent says how sure
the model is: training data that contains an `out_of_scope` intent makes it a class of its own, and a message unlike
every intent gets a low best score. The confidence reported to Rasa is `sigmoid(slope * (score - center))`, so with
`center` set to the decision score below which a message should be declined, the FallbackClassifier's threshold 0.5
turns exactly those into `nlu_fallback` (tune `center` on validation data, never on test data). With `calibration`,
the confidence is instead a logistic model, fit on validation data (`bench/tune_center.py --calibrate`), of whether
the best intent is right: over its score, its margin over the second best and, with the encoder, the Mahalanobis
distance to the intent's mean embedding and the cosine to its nearest training example.

Persisted as plain arrays and JSON (vocabularies, IDF weights, SVM weights), never as pickles. The sentence
encoder's weights are read from `encoder` (a directory relative to the working directory, like SpacyNLP's model) at
training and at run time; they are not inside the model. The pure parts live in `linear_features.py`.

With `retrieval_intents: true` it also does the ResponseSelector's work: it learns each retrieval intent's
sub-intents as classes of their own (`faq/delivery_time`, `faq/warranty`, ...), reports the base intent (`faq`) as
the message's intent, and the sub-intent under `response_selector` exactly as Rasa's ResponseSelector would
(`response_selector.faq.response.utter_action` = `utter_faq/delivery_time`), which is what the retrieval action
`utter_faq` reads. One linear model instead of a DIET network: seconds to train, nothing to load.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    RESPONSE_IDENTIFIER_DELIMITER,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.nlu.training_data.util import intent_response_key_to_template_key
from sklearn.feature_extraction.text import TfidfVectorizer

from encoder.sentence_encoder import SentenceEncoder
from nlu.components import linear_features as features

log = logging.getLogger(__name__)
META_FILE = "meta.json"
WEIGHTS_FILE = "weights.npz"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    """Intent classification with a linear SVM over n-gram TF-IDF and (optionally) sentence embeddings."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "char_ngrams": [1, 4],
            "char_min_df": 2,
            "word_ngrams": [1, 2],
            "word_min_df": 1,
            # A directory with the sentence encoder's model.safetensors and tokenizer.json; null: none.
            "encoder": None,
            "encoder_weight": 1.0,
            "C": 1.0,
            # Confidence = sigmoid(slope * (score - center)): 0.5 at the SVM score `center`.
            "center": 0.0,
            "slope": 4.0,
            # Instead of slope/center, a logistic model of whether the best intent is right:
            # confidence = sigmoid(bias + score * s + margin * (s - best other s) + neighbour * cos
            # + distance * d), cos the cosine to the class's nearest training example, d the
            # Mahalanobis distance to its examples' mean embedding (both need `encoder`). Fit on
            # validation data by `python -m bench.tune_center --calibrate`; null: slope/center.
            "calibration": None,
            # Not a topic of its own for the Mahalanobis distance: its examples are anything else.
            "out_of_scope_intent": "out_of_scope",
            "ranking_length": 10,
            # Learn the sub-intents of retrieval intents (faq/<topic>) and report them as a
            # ResponseSelector does; false: a retrieval intent is one class (faq).
            "retrieval_intents": False,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vectorizers: list[TfidfVectorizer] | None = None,
        classes: list[str] | None = None,
        coef: np.ndarray | None = None,
        intercept: np.ndarray | None = None,
        responses: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.vectorizers = vectorizers or []
        self.classes = classes or []
        self.coef = coef
        self.intercept = intercept
        # Responses of the retrieval intents' sub-intents, by utter action (utter_faq/<topic>).
        self.responses = responses or {}
        # With a `neighbour` calibration: the training examples' sentence embeddings, grouped by
        # class (class k's rows start at neighbour_starts[k]).
        self.neighbour_embeddings: np.ndarray | None = None
        self.neighbour_starts: np.ndarray | None = None
        self._neighbours_float32: np.ndarray | None = None
        # With a `distance` calibration: each class's mean embedding, whether it is an in-scope
        # class, and the precision matrix of the in-scope examples around their class means.
        self.distance_means: np.ndarray | None = None
        self.distance_in_scope: np.ndarray | None = None
        self.distance_precision: np.ndarray | None = None

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentClassifier:
        return cls(config, model_storage, resource)

    # --- features ---------------------------------------------------------------------------

    def _encoder(self) -> SentenceEncoder | None:
        return features.Encoders.get(self._config["encoder"]) if self._config.get("encoder") else None

    def _features(self, texts: list[str]) -> sp.csr_matrix:
        blocks = [vectorizer.transform(texts) for vectorizer in self.vectorizers]
        encoder = self._encoder()
        if encoder is not None:
            blocks.append(sp.csr_matrix(encoder.encode(texts) * np.float32(self._config["encoder_weight"])))
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    # --- training ---------------------------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        """Fit the vectorizers and the SVM on the intent examples; persist them."""
        from sklearn.svm import LinearSVC

        full = self._config.get("retrieval_intents", False)
        _, texts, labels = features.labelled(training_data, full)
        if len(set(labels)) < 2:
            log.warning("LinearIntentClassifier needs at least two intents to train; it will predict nothing")
            return self._resource
        if full:
            keys = {label for label in labels if RESPONSE_IDENTIFIER_DELIMITER in label}
            self.responses = {
                key: training_data.responses[key]
                for key in sorted(intent_response_key_to_template_key(label) for label in keys)
                if key in training_data.responses
            }
            missing = sorted(
                label for label in keys if intent_response_key_to_template_key(label) not in self.responses
            )
            if missing and training_data.responses:  # none at all: trained without a domain (bench, tests)
                log.warning(
                    "LinearIntentClassifier: no responses for %s; add utter_<intent>/<key> to the domain", missing
                )
        config = self._config
        self.vectorizers = [
            features.vectorizer("char", config["char_ngrams"], config["char_min_df"]),
            features.vectorizer("word", config["word_ngrams"], config["word_min_df"]),
        ]
        for vectorizer in self.vectorizers:
            vectorizer.fit(texts)
        svm = LinearSVC(C=config["C"], random_state=0).fit(self._features(texts), labels)
        self.classes = [str(label) for label in svm.classes_]
        self.coef = svm.coef_.astype(np.float32)
        self.intercept = svm.intercept_.astype(np.float32)
        if len(self.classes) == 2:  # binary: one weight vector for the second class
            self.coef = np.vstack([-self.coef, self.coef])
            self.intercept = np.concatenate([-self.intercept, self.intercept])
        if self._uses("neighbour") or self._uses("distance"):
            position = {name: k for k, name in enumerate(self.classes)}
            self._fit_embedding_features(self._encoder().encode(texts), np.array([position[label] for label in labels]))
        self.persist()
        return self._resource

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            meta = {
                "classes": self.classes,
                "responses": self.responses,
                "vectorizers": [
                    {"analyzer": v.analyzer, "ngram_range": list(v.ngram_range), "vocabulary": v.vocabulary_}
                    for v in self.vectorizers
                ],
            }
            (Path(directory) / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, default=int))
            arrays = {f"idf_{i}": v.idf_.astype(np.float32) for i, v in enumerate(self.vectorizers)}
            for name in (
                "neighbour_embeddings",
                "neighbour_starts",
                "distance_means",
                "distance_in_scope",
                "distance_precision",
            ):
                if getattr(self, name) is not None:
                    arrays[name] = getattr(self, name)
            np.savez_compressed(Path(directory) / WEIGHTS_FILE, coef=self.coef, intercept=self.intercept, **arrays)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        try:
            with model_storage.read_from(resource) as directory:
                meta = json.loads((Path(directory) / META_FILE).read_text())
                with np.load(Path(directory) / WEIGHTS_FILE) as weights:
                    arrays = {name: weights[name] for name in weights.files}
        except (ValueError, FileNotFoundError):
            log.warning("LinearIntentClassifier has no trained model; it will predict nothing")
            return cls(config, model_storage, resource)
        vectorizers = [
            features.restore(
                features.vectorizer(
                    "char" if v["analyzer"] == "char_wb" else "word", v["ngram_range"], 1, v["vocabulary"]
                ),
                arrays[f"idf_{i}"],
            )
            for i, v in enumerate(meta["vectorizers"])
        ]
        component = cls(
            config,
            model_storage,
            resource,
            vectorizers,
            meta["classes"],
            arrays["coef"],
            arrays["intercept"],
            meta.get("responses"),
        )
        for name in (
            "neighbour_embeddings",
            "neighbour_starts",
            "distance_means",
            "distance_in_scope",
            "distance_precision",
        ):
            setattr(component, name, arrays.get(name))
        component._encoder()  # load the encoder now, not on the first message
        return component

    # --- prediction -------------------------------------------------------------------------

    def scores(self, texts: list[str]) -> np.ndarray:
        """The SVM score of every intent (columns in `self.classes` order) for each text."""
        return np.asarray(self._features(texts) @ self.coef.T) + self.intercept

    def _uses(self, feature: str) -> bool:
        return bool((self._config.get("calibration") or {}).get(feature)) and bool(self._config.get("encoder"))

    def _fit_embedding_features(self, embeddings: np.ndarray, index: np.ndarray, ridge: float = 1e-3) -> None:
        """What the calibration's embedding features need: the examples' embeddings grouped by class
        (`neighbour`); the class means and the shared precision matrix of the in-scope examples (`distance`)."""
        if self._uses("neighbour"):
            order = np.argsort(index, kind="stable")
            self.neighbour_embeddings = embeddings[order].astype(np.float16)
            counts = np.bincount(index, minlength=len(self.classes))
            self.neighbour_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if not self._uses("distance"):
            return
        self.distance_means = np.stack([embeddings[index == k].mean(axis=0) for k in range(len(self.classes))])
        self.distance_in_scope = np.array([name != self._config.get("out_of_scope_intent") for name in self.classes])
        inside = self.distance_in_scope[index]
        centred = embeddings[inside] - self.distance_means[index[inside]]
        covariance = centred.T @ centred / max(len(centred), 1) + ridge * np.eye(embeddings.shape[1])
        self.distance_precision = np.linalg.inv(covariance).astype(np.float32)
        self.distance_means = self.distance_means.astype(np.float32)

    def distances(self, texts: list[str]) -> np.ndarray | None:
        """Each text's squared Mahalanobis distance to every class's mean, per dimension (None without them).

        An out-of-scope class has no topic to be near: it gets the distance to the nearest in-scope class.
        """
        if self.distance_means is None or self._encoder() is None:
            return None
        embeddings = self._encoder().encode(texts)
        projected = embeddings @ self.distance_precision
        means_projected = self.distance_means @ self.distance_precision
        squared = (
            (projected * embeddings).sum(axis=1, keepdims=True)
            - 2.0 * embeddings @ means_projected.T
            + (means_projected * self.distance_means).sum(axis=1)
        ) / embeddings.shape[1]
        if self.distance_in_scope.any() and not self.distance_in_scope.all():
            squared[:, ~self.distance_in_scope] = squared[:, self.distance_in_scope].min(axis=1, keepdims=True)
        return squared

    def extra_features(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The per-class features the calibration weighs besides the SVM score."""
        found = {"neighbour": self.neighbours(texts), "distance": self.distances(texts)}
        return {name: values for name, values in found.items() if values is not None}

    def neighbours(self, texts: list[str]) -> np.ndarray | None:
        """Each text's cosine to the nearest training example of every class (None without them)."""
        if self.neighbour_embeddings is None or self._encoder() is None:
            return None
        if self._neighbours_float32 is None:  # stored as float16; converted once, not per message
            self._neighbours_float32 = np.ascontiguousarray(self.neighbour_embeddings.astype(np.float32).T)
        similarity = self._encoder().encode(texts) @ self._neighbours_float32
        return np.maximum.reduceat(similarity, self.neighbour_starts, axis=1)

    def confidence(self, scores: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Confidence of every intent: a sigmoid of its SVM score, or the calibrated model of `calibration`."""
        calibration = self._config.get("calibration")
        if not calibration:
            return 1.0 / (1.0 + np.exp(-self._config["slope"] * (scores - self._config["center"])))
        return 1.0 / (1.0 + np.exp(-features.calibrated_logit(scores, extra, calibration)))

    def retrieval_intents(self) -> list[str]:
        """The retrieval intents among the classes (`faq` for classes `faq/<topic>`)."""
        return sorted(
            {
                name.split(RESPONSE_IDENTIFIER_DELIMITER)[0]
                for name in self.classes
                if RESPONSE_IDENTIFIER_DELIMITER in name
            }
        )

    def process(self, messages: list[Message]) -> list[Message]:
        """Set the intent and ranking of each message that has text (and the response selector's pick)."""
        if self.coef is None:
            return messages
        todo = [message for message in messages if message.get(TEXT)]
        if not todo:
            return messages
        texts = [message.get(TEXT) for message in todo]
        confidences = self.confidence(self.scores(texts), self.extra_features(texts))
        retrieval = self.retrieval_intents()
        for message, row in zip(todo, confidences):
            order = np.argsort(-row)
            ranking = features.intent_ranking(
                [self.classes[i] for i in order], row[order], self._config["ranking_length"]
            )
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
            if retrieval:
                selected = self.response_selection(retrieval, [self.classes[i] for i in order], row[order])
                message.set(RESPONSE_SELECTOR_PROPERTY_NAME, selected, add_to_output=True)
        return messages

    def response_selection(self, retrieval: list[str], names: list[str], confidences: np.ndarray) -> dict[str, Any]:
        """The `response_selector` parse data of Rasa's ResponseSelector: each retrieval intent's best sub-intent."""
        selected: dict[str, Any] = {RESPONSE_SELECTOR_RETRIEVAL_INTENTS: retrieval}
        length = max(1, self._config["ranking_length"])
        for intent in retrieval:
            prefix = intent + RESPONSE_IDENTIFIER_DELIMITER
            ranked = [
                (name, float(confidence)) for name, confidence in zip(names, confidences) if name.startswith(prefix)
            ]
            best, confidence = ranked[0]
            utter_action = intent_response_key_to_template_key(best)
            selected[intent] = {
                RESPONSE_SELECTOR_PREDICTION_KEY: {
                    RESPONSE_SELECTOR_RESPONSES_KEY: self.responses.get(utter_action) or [{TEXT: best}],
                    PREDICTED_CONFIDENCE_KEY: confidence,
                    INTENT_RESPONSE_KEY: best,
                    RESPONSE_SELECTOR_UTTER_ACTION_KEY: utter_action,
                },
                RESPONSE_SELECTOR_RANKING_KEY: [
                    {"id": features.label_id(name), PREDICTED_CONFIDENCE_KEY: conf, INTENT_RESPONSE_KEY: name}
                    for name, conf in ranked[:length]
                ],
            }
        return selected

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
