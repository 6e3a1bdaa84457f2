"""BM25, the index terms and the ranking features on corpora small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kb.bm25 import BM25
from bot.kb.index import Index
from bot.kb.search import Weights, rank
from bot.kb.text import encoding_text, terms, text_hash


def test_bm25_scores_by_hand() -> None:
    bm25 = BM25()
    bm25.add(1, ["a", "b"])
    bm25.add(2, ["a", "c", "c"])
    bm25.add(3, ["d"])
    # N 3, average length 2: idf(a) = ln(1 + 1.5 / 2.5), idf(c) = ln(1 + 2.5 / 1.5)
    assert bm25.idf("a") == pytest.approx(math.log(1.6))
    assert bm25.idf("c") == pytest.approx(math.log(8 / 3))
    scores = bm25.scores(["a", "c", "a"])
    assert scores[1] == pytest.approx(0.4700036, abs=1e-6)  # a once, length = average: idf * 2.2 / 2.2
    assert scores[2] == pytest.approx(0.3901919 + 1.1823693, abs=1e-6)  # length 3: norm 1.65
    assert set(scores) == {1, 2}
    assert bm25.ceiling(["a", "c"]) == pytest.approx((math.log(1.6) + math.log(8 / 3)) * 2.2)


def test_removing_a_document_updates_frequencies() -> None:
    bm25 = BM25()
    bm25.add(1, ["a", "b"])
    bm25.add(2, ["a", "c", "c"])
    bm25.add(3, ["d"])
    bm25.remove(3)
    bm25.remove(3)
    assert len(bm25) == 2
    assert bm25.scores(["a", "c"]) == pytest.approx({1: 0.1985680, 2: 1.0708543}, abs=1e-6)
    assert bm25.scores(["d"]) == {}


documents = st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=6)


@settings(deadline=None, max_examples=60)
@given(
    st.dictionaries(st.integers(0, 20), documents, min_size=1, max_size=8),
    st.data(),
)
def test_add_and_remove_equal_a_rebuild(corpus: dict[int, list[str]], data: st.DataObject) -> None:
    removed = data.draw(st.sets(st.sampled_from(sorted(corpus))))
    replaced = data.draw(st.dictionaries(st.sampled_from(sorted(corpus)), documents, max_size=3))
    incremental = BM25()
    for key, words in corpus.items():
        incremental.add(key, words)
    for key, words in replaced.items():
        incremental.add(key, words)
    for key in removed:
        incremental.remove(key)
    final = {key: replaced.get(key, words) for key, words in corpus.items() if key not in removed}
    rebuilt = BM25()
    for key, words in final.items():
        rebuilt.add(key, words)
    query = data.draw(documents)
    assert incremental.scores(query) == pytest.approx(rebuilt.scores(query))


def test_terms_drop_function_words_and_meet_at_one_stem() -> None:
    assert terms("How do I delete my deleted files?") == ["delet", "delet", "fil"]
    assert terms("Deleting the file") == ["delet", "fil"]
    assert encoding_text("How do I?", "Like this.") == "How do I? Like this."
    assert encoding_text("Sizes", "S to XL.") == "Sizes. S to XL."


def test_features_of_a_two_article_base_by_hand() -> None:
    index = Index()
    a1 = ("Delete account", "Open settings and press delete.")
    a2 = ("Change password", "Open settings, then security.")
    vectors = {
        text_hash(a1[0]): np.array([1.0, 0.0]),
        text_hash(encoding_text(*a1)): np.array([0.6, 0.8]),
        text_hash(a2[0]): np.array([0.0, 1.0]),
        text_hash(encoding_text(*a2)): np.array([0.8, 0.6]),
    }
    index.put_article("a1", a1[0], [a1[1]], vectors)
    index.put_article("a2", a2[0], [a2[1]], vectors)
    hits = rank(index, "delete my account", np.array([1.0, 0.0]), Weights(title=1.0, passage=1.0, bm25=0.3))
    assert [hit.article_id for hit in hits] == ["a1", "a2"]
    # a1's passage: terms delet account open setting press delet (6, average 5.5); idf(delet) = idf(account) = ln 2
    bm25 = math.log(2) * 4.4 / (2 + 1.2 * (0.25 + 0.75 * 6 / 5.5)) + math.log(2) * 2.2 / (
        1 + 1.2 * (0.25 + 0.75 * 6 / 5.5)
    )
    bm25 /= 2 * math.log(2) * 2.2
    assert bm25 == pytest.approx(0.523833, abs=1e-6)
    assert hits[0].features == pytest.approx(
        {
            "score": 1.0 + 0.6 + 0.3 * bm25,
            "margin": 1.6 + 0.3 * bm25 - 0.8,
            "cos_title": 1.0,
            "cos_passage": 0.6,
            "bm25": bm25,
            "overlap": 1.0,
            "title_overlap": 1.0,
        }
    )
    assert hits[1].features["score"] == pytest.approx(0.8)
    assert hits[1].features["overlap"] == 0.0
    assert hits[0].passage == a1[1] and hits[0].title == a1[0]


def test_an_article_without_vectors_and_no_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="no vector"):
        Index().put_article("a1", "Title", ["Text."])
