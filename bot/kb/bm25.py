"""Okapi BM25 over passages that come and go one at a time: postings and document frequencies kept up to date."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable

K1 = 1.2
B = 0.75


class BM25:
    """BM25 (k1 1.2, b 0.75; idf = ln(1 + (N - df + 0.5) / (df + 0.5))) over documents added and removed by key."""

    def __init__(self, k1: float = K1, b: float = B) -> None:
        self.k1 = k1
        self.b = b
        self._postings: dict[str, dict[Hashable, int]] = {}
        self._lengths: dict[Hashable, int] = {}
        self._terms: dict[Hashable, tuple[str, ...]] = {}
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, key: Hashable, terms: Iterable[str]) -> None:
        """Index a document's terms under `key` (replacing what `key` held)."""
        self.remove(key)
        counts = Counter(terms)
        for term, count in counts.items():
            self._postings.setdefault(term, {})[key] = count
        length = sum(counts.values())
        self._lengths[key] = length
        self._terms[key] = tuple(counts)
        self._total_length += length

    def remove(self, key: Hashable) -> None:
        """Forget the document under `key`, if any (its terms' frequencies drop with it)."""
        length = self._lengths.pop(key, None)
        if length is None:
            return
        self._total_length -= length
        for term in self._terms.pop(key):
            del self._postings[term][key]
            if not self._postings[term]:
                del self._postings[term]

    def idf(self, term: str) -> float:
        df = len(self._postings.get(term, ()))
        return math.log(1.0 + (len(self._lengths) - df + 0.5) / (df + 0.5))

    def scores(self, query_terms: Iterable[str]) -> dict[Hashable, float]:
        """BM25 of every document sharing a term with the query (the others score 0); repeated query terms count once."""
        if not self._lengths:
            return {}
        average = self._total_length / len(self._lengths) or 1.0
        out: dict[Hashable, float] = {}
        for term in set(query_terms):
            posting = self._postings.get(term)
            if not posting:
                continue
            idf = self.idf(term)
            for key, count in posting.items():
                norm = self.k1 * (1.0 - self.b + self.b * self._lengths[key] / average)
                out[key] = out.get(key, 0.0) + idf * count * (self.k1 + 1.0) / (count + norm)
        return out

    def ceiling(self, query_terms: Iterable[str]) -> float:
        """An upper bound of any document's score for the query (each term's idf times k1 + 1): the scale for 0..1."""
        return sum(self.idf(term) for term in set(query_terms)) * (self.k1 + 1.0)
