"""What `make bench-kb` and the fit share: building an index, ranking queries, the figures of a decision."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.kb_data import Article, Query
from bot.kb.encoder import Encoder
from bot.kb.index import Index
from bot.kb.search import Hit, Weights, rank
from bot.kb.text import text_hash


def build(articles: Sequence[Article], encoder: Encoder) -> Index:
    """An index of `articles`, encoding through `encoder` (one batch for all of them)."""
    index = Index(encoder)
    texts = [text for article in articles for text in index.texts_to_encode(article.title, article.passages)]
    vectors = dict(zip(map(text_hash, texts), encoder.encode(texts), strict=True)) if texts else {}
    for article in articles:
        index.put_article(article.id, article.title, article.passages, vectors)
    return index


@dataclass(frozen=True)
class Ranked:
    query: Query
    hits: list[Hit]


def ranked(index: Index, queries: Sequence[Query], vectors: np.ndarray, weights: Weights) -> list[Ranked]:
    return [Ranked(q, rank(index, q.text, v, weights)) for q, v in zip(queries, vectors, strict=True)]


def retrieval(results: Sequence[Ranked]) -> dict[str, float]:
    """P@1, MRR@5 and R@5 over the answerable queries (article level)."""
    answerable = [r for r in results if r.query.answerable]
    positions = [
        next((i for i, h in enumerate(r.hits) if h.article_id == r.query.article_id), None) for r in answerable
    ]
    n = len(answerable) or 1
    return {
        "queries": len(answerable),
        "p_at_1": sum(p == 0 for p in positions) / n,
        "mrr_at_5": sum(1 / (p + 1) for p in positions if p is not None and p < 5) / n,
        "r_at_5": sum(p is not None and p < 5 for p in positions) / n,
    }


def decisions(results: Sequence[Ranked], answers: Callable[[Hit], bool]) -> dict[str, float | int]:
    """Answerable answered with the right article, unanswerable declined, wrong answers among all answers."""
    right = wrong = declined_unanswerable = 0
    answerable = sum(r.query.answerable for r in results)
    unanswerable = len(results) - answerable
    for r in results:
        answered = bool(r.hits) and answers(r.hits[0])
        if not answered:
            declined_unanswerable += not r.query.answerable
        elif r.query.answerable and r.hits[0].article_id == r.query.article_id:
            right += 1
        else:
            wrong += 1
    return {
        "answerable": answerable,
        "unanswerable": unanswerable,
        "answered_right": right / answerable if answerable else float("nan"),
        "unanswerable_declined": declined_unanswerable / unanswerable if unanswerable else float("nan"),
        "wrong_among_answers": wrong / (right + wrong) if right + wrong else 0.0,
        "answers": right + wrong,
    }
