"""The help-center index: passages with their vectors and BM25 terms, changed one article at a time.

Vectors are keyed by the sha256 of the text they encode (`text.text_hash`): an article's title alone, and each
passage as "title. passage" (`text.encoding_text`). Whoever stores them (the database) hands them back through
`put_article(..., vectors=...)`, and `missing` says which texts still need encoding, so a restart or an edit of one
article encodes only what changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bot.kb.bm25 import BM25
from bot.kb.encoder import Encoder
from bot.kb.text import encoding_text, terms, text_hash


@dataclass(frozen=True)
class Passage:
    """A paragraph of an article, with the article's title."""

    article_id: str
    title: str
    text: str

    @property
    def encoded(self) -> str:
        return encoding_text(self.title, self.text)


@dataclass
class _Article:
    title: str
    keys: list[int]
    title_terms: frozenset[str]


@dataclass(frozen=True)
class Matrices:
    """The live vectors stacked for one matrix product per query; rebuilt after a change, on the next query.

    Articles with at least one passage, in `article_ids` order; their passages' rows are contiguous, article i's
    starting at `starts[i]`.
    """

    article_ids: list[str]
    titles: np.ndarray
    passage_keys: list[int]
    passages: np.ndarray
    starts: np.ndarray


class Index:
    """Articles' passages: BM25 over title + passage, and MiniLM vectors of the title and of each passage."""

    def __init__(self, encoder: Encoder | None = None) -> None:
        self.encoder = encoder
        self.bm25 = BM25()
        self._articles: dict[str, _Article] = {}
        self._passages: dict[int, Passage] = {}
        self._passage_terms: dict[int, frozenset[str]] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._next_key = 0
        self._matrices: Matrices | None = None

    def __len__(self) -> int:
        return len(self._articles)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._articles

    @property
    def article_ids(self) -> list[str]:
        return list(self._articles)

    def title(self, article_id: str) -> str:
        return self._articles[article_id].title

    def passages(self, article_id: str) -> list[Passage]:
        return [self._passages[key] for key in self._articles[article_id].keys]

    @staticmethod
    def texts_to_encode(title: str, passages: Sequence[str]) -> list[str]:
        """The texts whose vectors an article needs: its title, then each passage as encoded."""
        return [title, *(encoding_text(title, passage) for passage in passages)]

    def missing(self, title: str, passages: Sequence[str], vectors: Mapping[str, np.ndarray] = {}) -> list[str]:
        """The texts of this article that neither `vectors` nor the index has a vector for (each once, in order)."""
        texts = self.texts_to_encode(title, passages)
        return list(
            dict.fromkeys(t for t in texts if text_hash(t) not in vectors and text_hash(t) not in self._vectors)
        )

    def put_article(
        self, article_id: str, title: str, passages: Sequence[str], vectors: Mapping[str, np.ndarray] = {}
    ) -> None:
        """Add an article or replace its passages; texts without a vector (given or known) are encoded now."""
        todo = self.missing(title, passages, vectors)
        if todo and self.encoder is None:
            raise ValueError(f"article {article_id}: {len(todo)} texts have no vector and the index has no encoder")
        found = dict(zip((text_hash(t) for t in todo), self.encoder.encode(todo) if todo else [], strict=True))
        needed = {text_hash(text) for text in self.texts_to_encode(title, passages)}
        for key in needed:
            vector = found.get(key)
            if vector is None:
                vector = vectors.get(key)
            if vector is not None:
                self._vectors[key] = np.asarray(vector, dtype=np.float32)
        self.remove_article(article_id)
        keys = []
        for text in passages:
            passage = Passage(article_id, title, text)
            key, self._next_key = self._next_key, self._next_key + 1
            self._passages[key] = passage
            passage_terms = terms(f"{title} {text}")
            self._passage_terms[key] = frozenset(passage_terms)
            self.bm25.add(key, passage_terms)
            keys.append(key)
        self._articles[article_id] = _Article(title, keys, frozenset(terms(title)))
        self._matrices = None

    def remove_article(self, article_id: str) -> None:
        """Take an article out (its vectors stay known, so putting it back encodes nothing); unknown ids are ignored."""
        article = self._articles.pop(article_id, None)
        if article is None:
            return
        for key in article.keys:
            del self._passages[key]
            del self._passage_terms[key]
            self.bm25.remove(key)
        self._matrices = None

    def export_vectors(self) -> dict[str, np.ndarray]:
        """The vectors the live articles use, by text hash: what the database stores."""
        used = {text_hash(a.title) for a in self._articles.values()}
        used |= {text_hash(p.encoded) for p in self._passages.values()}
        return {key: self._vectors[key] for key in used}

    def forget_unused_vectors(self) -> None:
        """Drop the vectors no live article uses (those of edited or removed texts)."""
        self._vectors = self.export_vectors()

    def matrices(self) -> Matrices:
        if self._matrices is None:
            ids = [article_id for article_id, article in self._articles.items() if article.keys]
            keys = [key for article_id in ids for key in self._articles[article_id].keys]
            starts = np.cumsum([0] + [len(self._articles[a].keys) for a in ids[:-1]]) if ids else np.zeros(0, int)
            dimension = next(iter(self._vectors.values())).shape[0] if self._vectors else 0

            def stack(hashes: list[str]) -> np.ndarray:
                return np.stack([self._vectors[h] for h in hashes]) if hashes else np.zeros((0, dimension), np.float32)

            self._matrices = Matrices(
                ids,
                stack([text_hash(self._articles[a].title) for a in ids]),
                keys,
                stack([text_hash(self._passages[k].encoded) for k in keys]),
                np.asarray(starts, dtype=np.intp),
            )
        return self._matrices

    def passage(self, key: int) -> Passage:
        return self._passages[key]

    def passage_terms(self, key: int) -> frozenset[str]:
        return self._passage_terms[key]

    def title_terms(self, article_id: str) -> frozenset[str]:
        return self._articles[article_id].title_terms

    def article_keys(self, article_id: str) -> list[int]:
        return self._articles[article_id].keys
