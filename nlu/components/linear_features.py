"""The pure parts of LinearIntentClassifier (nlu/components/linear_intent.py): its TF-IDF vectorizers, Rasa's
intent ranking from its classes, the calibrated confidence's logit, label ids, and the sentence encoders loaded once
per process. Nothing here touches Rasa's graph; the benchmarks (bench/tune_center.py) use it too."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    PREDICTED_CONFIDENCE_KEY,
    RESPONSE_IDENTIFIER_DELIMITER,
    TEXT,
)
from sklearn.feature_extraction.text import TfidfVectorizer

from encoder.sentence_encoder import SentenceEncoder


def vectorizer(kind: str, ngrams: list[int], min_df: int, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    analyzer = "char_wb" if kind == "char" else "word"
    return TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=tuple(ngrams),
        min_df=1 if vocabulary else min_df,
        sublinear_tf=True,
        lowercase=True,
        dtype=np.float32,
        vocabulary=vocabulary,
    )


def restore(vectorizer: TfidfVectorizer, idf: np.ndarray) -> TfidfVectorizer:
    vectorizer._validate_vocabulary()
    vectorizer.idf_ = idf
    return vectorizer


def intent_ranking(names: list[str], confidences: np.ndarray, length: int) -> list[dict[str, Any]]:
    """Rasa's intent ranking from classes sorted by confidence: a retrieval intent's sub-intents
    (faq/<topic>) count as their base intent (faq), at the confidence of the best of them."""
    ranking: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, confidence in zip(names, confidences):
        base = name.split(RESPONSE_IDENTIFIER_DELIMITER)[0]
        if base not in seen:
            seen.add(base)
            ranking.append({INTENT_NAME_KEY: base, PREDICTED_CONFIDENCE_KEY: float(confidence)})
            if len(ranking) >= max(1, length):
                break
    return ranking


def calibrated_logit(scores: np.ndarray, extra: dict[str, np.ndarray] | None, weights: dict[str, float]) -> np.ndarray:
    """bias + score * s + margin * (s - the best other class's s) [+ neighbour * cos] [+ distance * d], every class.

    `extra` holds the per-class features other than the score: `neighbour` (cosine to the class's
    nearest training example) and `distance` (Mahalanobis distance to the class's mean embedding).

    The margin is positive for the best class only: a close second makes the best one less sure.
    """
    if scores.shape[1] < 2:
        margin = np.zeros_like(scores)
    else:
        top_two = np.sort(scores, axis=1)[:, -2:]
        best_other = np.where(scores >= top_two[:, 1:], top_two[:, :1], top_two[:, 1:])
        margin = scores - best_other
    logit = weights.get("bias", 0.0) + weights.get("score", 0.0) * scores + weights.get("margin", 0.0) * margin
    for name, values in (extra or {}).items():
        if weights.get(name):
            logit = logit + weights[name] * values
    return logit


def labelled(training_data: Any, full: bool) -> tuple[list[Any], list[str], list[str]]:
    """The intent examples with a text and an intent, their texts, and their labels (the full retrieval intent,
    faq/<topic>, when `full`)."""
    examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
    labels = [m.get_full_intent() if full else m.get(INTENT) for m in examples]
    return examples, [m.get(TEXT) for m in examples], labels


def label_id(name: str) -> int:
    """A stable id for a label (Rasa's ResponseSelector numbers its labels; only uniqueness matters)."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:6], "big")


class Encoders:
    """Sentence encoders loaded once per process, by directory: several models may share one."""

    loaded: dict[str, SentenceEncoder] = {}  # noqa: RUF012 (shared by every instance on purpose)

    @classmethod
    def get(cls, directory: str) -> SentenceEncoder:
        key = str(Path(directory).resolve())
        if key not in cls.loaded:
            cls.loaded[key] = SentenceEncoder.load(directory)
        return cls.loaded[key]
