"""Hybrid retrieval: each article scored by its best passage (MiniLM cosine + BM25) plus its title's cosine.

The features of a candidate are what the answer decision (`decision.py`) reads: how close the query is to the title
and to the best passage, how much of the query's words (idf-weighted) the article has, and how far it stands ahead of
the next article.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.kb.index import Index
from bot.kb.text import terms

FEATURES = ("score", "margin", "cos_title", "cos_passage", "bm25", "overlap", "title_overlap")


@dataclass(frozen=True)
class Weights:
    """How the article score adds up: title cosine, best passage's cosine and its BM25 (0..1, over the ceiling)."""

    title: float = 1.0
    passage: float = 1.0
    bm25: float = 0.3


@dataclass(frozen=True)
class Hit:
    """A candidate article with its best passage and the features of that match."""

    article_id: str
    title: str
    passage: str
    score: float
    features: dict[str, float]


def _share(query_terms: list[str], found: frozenset[str], index: Index) -> float:
    """The idf-weighted share of the query's terms found in `found` (0 for a query without terms)."""
    unique = set(query_terms)
    total = sum(index.bm25.idf(term) for term in unique)
    return sum(index.bm25.idf(term) for term in unique if term in found) / total if total else 0.0


def rank(index: Index, query: str, query_vector: np.ndarray, weights: Weights = Weights(), limit: int = 5) -> list[Hit]:
    """The `limit` best articles for the query (ties by article id), each with its best passage and features."""
    matrices = index.matrices()
    if not matrices.article_ids:
        return []
    vector = np.asarray(query_vector, dtype=np.float32)
    query_terms = terms(query)
    ceiling = index.bm25.ceiling(query_terms)
    lexical = index.bm25.scores(query_terms)
    bm25 = np.array([lexical.get(key, 0.0) / ceiling if ceiling else 0.0 for key in matrices.passage_keys])
    cos_passage = matrices.passages @ vector
    cos_title = matrices.titles @ vector
    per_passage = weights.passage * cos_passage + weights.bm25 * bm25
    best = np.maximum.reduceat(per_passage, matrices.starts)
    group = np.repeat(np.arange(len(matrices.starts)), np.diff(np.append(matrices.starts, len(per_passage))))
    # The first row of each article reaching its maximum: its best passage.
    at_best = np.flatnonzero(per_passage == best[group])
    best_row = np.full(len(best), -1)
    for row in at_best[::-1]:
        best_row[group[row]] = row
    scores = weights.title * cos_title + best
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], matrices.article_ids[i]))[: limit + 1]
    hits = []
    for position, i in enumerate(order[:limit]):
        article_id = matrices.article_ids[i]
        row = int(best_row[i])
        key = matrices.passage_keys[row]
        following = scores[order[position + 1]] if position + 1 < len(order) else 0.0
        features = {
            "score": float(scores[i]),
            "margin": float(scores[i] - following),
            "cos_title": float(cos_title[i]),
            "cos_passage": float(cos_passage[row]),
            "bm25": float(bm25[row]),
            "overlap": _share(query_terms, index.passage_terms(key), index),
            "title_overlap": _share(query_terms, index.title_terms(article_id), index),
        }
        hits.append(Hit(article_id, index.title(article_id), index.passage(key).text, float(scores[i]), features))
    return hits
