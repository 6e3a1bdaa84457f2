"""The pooled fit's threshold (StackFAQ + the shop's validation set) and the shop's question files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench import kb_shop
from bench.kb_data import Query
from bench.kb_eval import Ranked
from bench.kb_fit import WRONG_COST, choose_pooled_threshold, curve
from bot.kb.search import Hit


def _ranked(article_id: str, top: str | None) -> Ranked:
    hits = [] if top is None else [Hit(top, top, "", 1.0, {})]
    return Ranked(Query("q", article_id, not article_id.startswith("none")), hits)


def test_the_pooled_threshold_trades_right_answers_against_wrong_ones_across_sets() -> None:
    # set a: right answers at 0.9 and 0.6, a wrong one at 0.5; set b: a wrong one at 0.7, an unanswerable at 0.2.
    sets = {
        "a": [_ranked("x", "x"), _ranked("y", "y"), _ranked("z", "x")],
        "b": [_ranked("w", "v"), _ranked("none-1", "v"), _ranked("none-2", None)],
    }
    probabilities = np.array([0.9, 0.6, 0.5, 0.7, 0.2])
    at = curve(sets, probabilities, 0.6)
    assert at["a"] == {"right": 2, "wrong": 0, "answerable": 3, "unanswerable_declined": 0}
    assert at["b"] == {"right": 0, "wrong": 1, "answerable": 1, "unanswerable_declined": 2}
    # 0.6 answers two right and one wrong: 2 - 3 < 0; 0.9 answers one right and nothing wrong: the best.
    assert WRONG_COST > 1
    assert choose_pooled_threshold(sets, probabilities) == 0.9


def test_a_question_file_reads_as_queries_apart_from_stackfaq_ids(tmp_path: Path) -> None:
    path = tmp_path / "questions.yml"
    path.write_text(
        "questions:\n  - {text: how do I pair, article: pair-aura-headphones}\n  - {text: a poem, article: null}\n",
        encoding="utf-8",
    )
    first, second = kb_shop.shop_queries(path)
    assert first == Query("how do I pair", "shop:pair-aura-headphones", True)
    assert not second.answerable and second.article_id.startswith("shop:none-")


def test_the_shop_articles_are_split_as_the_app_splits_them() -> None:
    articles = kb_shop.shop_articles()
    assert len(articles) >= 30
    assert all(article.id.startswith(kb_shop.PREFIX) and article.passages for article in articles)
