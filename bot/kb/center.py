"""The help center's search as one object: an index, the encoder, the decision model; answers or declines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bot.kb.decision import Model, load_model
from bot.kb.encoder import Encoder, encode_async
from bot.kb.index import Index
from bot.kb.search import Hit, rank
from bot.kb.text import text_hash
from bot.kb.trim import LIMIT, trim


@dataclass(frozen=True)
class Answer:
    """The decision on one query: `hit` is the best candidate (None with an empty index), `answered` whether the
    probability reached the threshold, and `text` the trimmed passage when answered ("" otherwise)."""

    hit: Hit | None
    probability: float
    answered: bool
    text: str


class HelpCenter:
    """Search, decide and trim; encoding can run in a worker thread (`*_async`) so the event loop is never held."""

    def __init__(self, encoder: Encoder, model: Model | None = None, index: Index | None = None) -> None:
        self.encoder = encoder
        self.model = model if model is not None else load_model()
        self.index = index if index is not None else Index(encoder)

    def search(self, query: str, limit: int = 5, query_vector: np.ndarray | None = None) -> list[Hit]:
        vector = self.encoder.encode([query])[0] if query_vector is None else query_vector
        return rank(self.index, query, vector, self.model.ranking, limit)

    def decide(self, query: str, hits: Sequence[Hit], limit: int = LIMIT) -> Answer:
        if not hits:
            return Answer(None, 0.0, False, "")
        probability = self.model.probability(hits[0].features)
        answered = probability >= self.model.threshold
        return Answer(hits[0], probability, answered, trim(hits[0].passage, query, limit) if answered else "")

    def answer(self, query: str, query_vector: np.ndarray | None = None) -> Answer:
        return self.decide(query, self.search(query, query_vector=query_vector))

    async def answer_async(self, query: str) -> Answer:
        vector = (await encode_async(self.encoder, [query]))[0]
        return self.answer(query, vector)

    async def put_article_async(
        self, article_id: str, title: str, passages: Sequence[str], vectors: Mapping[str, np.ndarray] = {}
    ) -> dict[str, np.ndarray]:
        """Add or replace an article, encoding what has no vector in a worker thread; returns the new vectors."""
        todo = self.index.missing(title, passages, vectors)
        encoded = await encode_async(self.encoder, todo) if todo else np.zeros((0, 0), np.float32)
        new = {text_hash(text): vector for text, vector in zip(todo, encoded, strict=True)}
        self.index.put_article(article_id, title, passages, {**vectors, **new})
        return new
