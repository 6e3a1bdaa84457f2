"""The yardstick of `make bench-kb`: StackFAQ split by article id parity (on generated folders in StackFAQ's layout,
so the suite needs no data set), and the fit's folds and logistic model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import kb_data
from bench.kb_fit import FOLDS, logistic, out_of_fold


def _stackfaq_shaped(directory: Path, queries_per_article: list[int], held: set[int]) -> None:
    """A folder in StackFAQ's layout (articles.jsonl, queries.csv, heldout_articles.txt) with article sf<n> asked
    queries_per_article[n] times, the articles numbered in `held` held out of the base."""
    ids = [f"sf{n:03d}" for n in range(len(queries_per_article))]
    lines = [
        json.dumps({"id": a, "title": f"How do I do thing {a}?", "body": f"Step one for {a}.\n\nStep two."})
        for a in ids
    ]
    (directory / "articles.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (directory / "queries.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "article_id"])
        for article_id, many in zip(ids, queries_per_article, strict=True):
            writer.writerows([f"question {k} about {article_id}", article_id] for k in range(many))
    (directory / "heldout_articles.txt").write_text("\n".join(ids[n] for n in sorted(held)) + "\n", encoding="utf-8")


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    counts=st.lists(st.integers(0, 4), min_size=2, max_size=40),
    held_every=st.integers(2, 7),
)
def test_no_article_is_on_both_sides_of_the_split(tmp_path_factory, counts: list[int], held_every: int) -> None:
    directory = tmp_path_factory.mktemp("stackfaq")
    held = {n for n in range(len(counts)) if n % held_every == held_every - 1}
    _stackfaq_shaped(directory, counts, held)
    validation, test = kb_data.queries("validation", directory), kb_data.queries("test", directory)
    tuned = {q.article_id for q in validation}
    reported = {q.article_id for q in test}
    assert not tuned & reported
    assert all(int(a[2:]) % 2 == 0 for a in tuned) and all(int(a[2:]) % 2 == 1 for a in reported)
    assert len(validation) + len(test) == sum(counts), "every query on one side"
    # Held-out (unanswerable) queries are split the same way, and are never in the base.
    held_ids = kb_data.heldout_ids(directory)
    base = {article.id for article in kb_data.base(directory)}
    assert len(base) == len(counts) - len(held) and not held_ids & base
    asked = {f"sf{n:03d}" for n, many in enumerate(counts) if many}
    assert {q.article_id for q in validation if not q.answerable} == {
        a for a in held_ids & asked if int(a[2:]) % 2 == 0
    }
    assert {q.article_id for q in test if not q.answerable} == {a for a in held_ids & asked if int(a[2:]) % 2 == 1}
    assert all(q.answerable == (q.article_id in base) for q in validation + test)


def test_every_fold_of_the_fit_holds_unanswerable_articles() -> None:
    # Unanswerable articles every fifth id, as in StackFAQ: dealt in id order they would all share one fold.
    groups = [f"sf{n:03d}" for n in range(0, 100, 2) for _ in range(3)]
    y = np.array([0.0 if int(g[2:]) % 10 == 4 else 1.0 for g in groups])
    x = np.column_stack([y + np.random.default_rng(0).normal(0, 0.8, len(y)), np.ones(len(y))])
    probabilities = out_of_fold(x, y, groups)
    assert ((probabilities > 0.5) == (y > 0)).mean() > 0.8, "a fold without negatives would answer everything"
    assert FOLDS <= len({g for g, label in zip(groups, y, strict=True) if not label})


def test_logistic_recovers_a_known_model() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 2))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))).astype(float)
    weights, bias = logistic(x, y, l2=0.0)
    assert weights == pytest.approx([2.0, -1.0], abs=0.2)
    assert bias == pytest.approx(0.5, abs=0.15)
