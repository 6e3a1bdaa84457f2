"""The yardstick of `make bench-kb`: StackFAQ split by article id parity, and the fit's folds and logistic model."""

from __future__ import annotations

import numpy as np
import pytest

from bench import kb_data
from bench.kb_fit import FOLDS, logistic, out_of_fold
from tests.conftest import skip_or_fail


@pytest.fixture(scope="module")
def stackfaq() -> None:
    if not (kb_data.STACKFAQ / "queries.csv").is_file():
        skip_or_fail(f"StackFAQ is not in {kb_data.STACKFAQ} (the shared data sets, see its README)")


@pytest.mark.usefixtures("stackfaq")
def test_no_article_is_on_both_sides_of_the_split() -> None:
    validation, test = kb_data.queries("validation"), kb_data.queries("test")
    tuned = {q.article_id for q in validation}
    reported = {q.article_id for q in test}
    assert not tuned & reported
    assert all(int(a[2:]) % 2 == 0 for a in tuned) and all(int(a[2:]) % 2 == 1 for a in reported)
    assert len(validation) + len(test) == 1249
    # Held-out (unanswerable) queries are split the same way, and are never in the base.
    held = kb_data.heldout_ids()
    base = {article.id for article in kb_data.base()}
    assert len(held) == 25 and len(base) == 100 and not held & base
    assert {q.article_id for q in validation if not q.answerable} == {a for a in held if int(a[2:]) % 2 == 0}
    assert {q.article_id for q in test if not q.answerable} == {a for a in held if int(a[2:]) % 2 == 1}
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
