"""Fit the help center's ranking weights and answer decision on StackFAQ's VALIDATION half only.

Validation: the queries of even-numbered articles (answerable ones, and the held-out articles' ones, which have no
answer in the base), plus CLINC150's 100 `oos_val` queries as more questions to decline. The test half (odd
articles) and CLINC150's `oos_test` are never read here. Writes `bot/kb/decision.json`.

    .venv/bin/python -m bench.kb_fit [--cache var/wt-kbsearch/vectors.npz]
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import kb_data
from bench.kb_eval import Ranked, build, decisions, ranked, retrieval
from bot.kb.decision import DEFAULT_MODEL, Model
from bot.kb.encoder import load_encoder
from bot.kb.search import FEATURES, Weights

L2 = 1.0  # ridge on the standardised weights: a few hundred examples, seven features
FOLDS = 5
MIN_ANSWERED_RIGHT = 0.935  # the threshold: as many declined as possible while this share is answered right


def logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = 50) -> tuple[np.ndarray, float]:
    """Newton's method for L2-regularised logistic regression (the bias is not penalised): (weights, bias)."""
    rows, columns = x.shape
    design = np.hstack([x, np.ones((rows, 1))])
    theta = np.zeros(columns + 1)
    penalty = np.diag([l2] * columns + [0.0])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (p - y) + penalty @ theta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def examples(results: Sequence[Ranked]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Top candidates' features, whether the top is the right article, and the query's article (for folds)."""
    rows = [r for r in results if r.hits]
    x = np.array([[r.hits[0].features[name] for name in FEATURES] for r in rows])
    y = np.array([float(r.query.answerable and r.hits[0].article_id == r.query.article_id) for r in rows])
    return x, y, [r.query.article_id for r in rows]


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: list[str]) -> np.ndarray:
    """Each example's probability from a model fit without its article's queries (folds by article).

    Articles are dealt to folds separately by whether their top candidates are ever right, so that every fold has
    unanswerable articles (held-out ids are every fifth: dealt together, they would all land in one fold).
    """
    answerable = {g for g, label in zip(groups, y, strict=True) if label}
    fold_of: dict[str, int] = {}
    for kind in (sorted(answerable), sorted(set(groups) - answerable)):
        fold_of |= {name: i % FOLDS for i, name in enumerate(kind)}
    fold = np.array([fold_of[g] for g in groups])
    out = np.zeros(len(y))
    for k in range(FOLDS):
        train = fold != k
        mean, scale = x[train].mean(0), x[train].std(0) + 1e-9
        weights, bias = logistic((x[train] - mean) / scale, y[train])
        out[~train] = 1 / (1 + np.exp(-(((x[~train] - mean) / scale) @ weights + bias)))
    return out


def choose_threshold(results: Sequence[Ranked], probabilities: np.ndarray) -> float:
    """The highest threshold at which MIN_ANSWERED_RIGHT of the answerable queries are still answered right."""
    rows = [r for r in results if r.hits]
    answerable = sum(r.query.answerable for r in results)
    right = sorted(
        (
            p
            for r, p in zip(rows, probabilities, strict=True)
            if r.query.answerable and r.hits[0].article_id == r.query.article_id
        ),
        reverse=True,
    )
    needed = int(np.ceil(MIN_ANSWERED_RIGHT * answerable))
    if needed > len(right):
        return float(right[-1]) if right else 0.5
    return float(right[needed - 1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="vectors by text hash (.npz), reused between runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    encoder = kb_data.VectorCache(load_encoder(), args.cache)
    index = build(kb_data.base(), encoder)
    validation = kb_data.queries("validation")
    oos = [kb_data.Query(text, f"clinc-oos-val-{i}", False) for i, text in enumerate(kb_data.clinc_oos("val"))]
    vectors = encoder.encode([q.text for q in validation])
    oos_vectors = encoder.encode([q.text for q in oos])

    grid = []
    for title, bm25 in itertools.product((0.5, 1.0, 1.5), (0.0, 0.1, 0.2, 0.3, 0.5, 0.8)):
        weights = Weights(title=title, passage=1.0, bm25=bm25)
        figures = retrieval(ranked(index, validation, vectors, weights))
        grid.append((figures["p_at_1"], figures["mrr_at_5"], title, bm25))
        print(f"title {title} bm25 {bm25}: P@1 {figures['p_at_1']:.3f} MRR@5 {figures['mrr_at_5']:.3f}")
    _, _, title, bm25 = max(grid)
    weights = Weights(title=title, passage=1.0, bm25=bm25)

    results = ranked(index, validation, vectors, weights) + ranked(index, oos, oos_vectors, weights)
    x, y, groups = examples(results)
    threshold = choose_threshold(results, out_of_fold(x, y, groups))
    mean, scale = x.mean(0), x.std(0) + 1e-9
    coefficients, bias = logistic((x - mean) / scale, y)
    model = Model(
        weights=dict(zip(FEATURES, map(float, coefficients), strict=True)),
        bias=bias,
        threshold=threshold,
        mean=dict(zip(FEATURES, map(float, mean), strict=True)),
        scale=dict(zip(FEATURES, map(float, scale), strict=True)),
        ranking=weights,
        about={
            "fit_on": "StackFAQ validation half (even-numbered articles' queries, answerable and held-out) "
            "+ CLINC150 oos_val; base = the 100 articles not in heldout_articles.txt",
            "examples": len(y),
            "positives": int(y.sum()),
            "threshold_rule": f"highest out-of-fold threshold answering >= {MIN_ANSWERED_RIGHT} of answerable right",
            "command": ".venv/bin/python -m bench.kb_fit",
        },
    )
    answers = lambda hit: model.answers(hit.features)
    print(
        json.dumps(
            {
                "ranking": weights.__dict__,
                "threshold": threshold,
                "StackFAQ validation (in-sample)": decisions(results[: len(validation)], answers),
                "CLINC150 oos_val declined (in-sample)": decisions(results[len(validation) :], answers)[
                    "unanswerable_declined"
                ],
            },
            indent=1,
        )
    )
    args.out.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
