"""The pure parts of the few-shot benchmark (bench/fewshot_data.py): the seeded draw, the noise, the figures."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fewshot_data import draw, figures, plain, spread, typo, with_typos


@dataclass(frozen=True)
class Ex:
    text: str
    intent: str


intents = st.lists(st.sampled_from(["weather", "timer", "recipe", "alarm", "out_of_scope"]), min_size=1, max_size=60)
words = st.text(alphabet=string.ascii_letters + "'?!,.0123456789", min_size=1, max_size=12)
texts = st.lists(st.lists(words, min_size=0, max_size=12).map(" ".join), min_size=1, max_size=40)


@settings(deadline=None)
@given(labels=intents, k=st.integers(1, 25), seed=st.integers(0, 10))
def test_the_draw_is_seeded_takes_k_of_each_intent_and_never_out_of_scope(labels: list[str], k: int, seed: int) -> None:
    examples = [Ex(f"text {i}", label) for i, label in enumerate(labels)]
    drawn = draw(examples, k, seed)
    assert drawn == draw(examples, k, seed)  # the same seed draws the same examples
    assert all(example.intent != "out_of_scope" for example in drawn)
    for intent in set(labels) - {"out_of_scope"}:
        assert sum(e.intent == intent for e in drawn) == min(k, labels.count(intent))
    assert drawn == [e for e in examples if e in drawn]  # in the data's order, no duplicates
    assert set(draw(examples, max(1, k // 2), seed)) <= set(drawn)  # fewer shots: a part of the larger draw


def test_seeds_draw_differently() -> None:
    examples = [Ex(f"text {i}", "weather" if i % 2 else "timer") for i in range(200)]
    assert draw(examples, 5, 0) != draw(examples, 5, 1)


@settings(deadline=None)
@given(corpus=texts, share=st.sampled_from([0.05, 0.1, 0.5]), seed=st.integers(0, 5))
def test_typos_are_seeded_and_hit_the_stated_share_of_words(corpus: list[str], share: float, seed: int) -> None:
    noisy = with_typos(corpus, share, seed)
    assert noisy == with_typos(corpus, share, seed)
    before = [word for text in corpus for word in text.split()]
    after = [word for text in noisy for word in text.split()]
    assert len(after) == len(before)  # a typo never removes or splits a word
    assert sum(a != b for a, b in zip(before, after)) == round(share * len(before))


@settings(deadline=None)
@given(word=words, seed=st.integers(0, 1000))
def test_a_typo_always_changes_the_word_by_one_keystroke(word: str, seed: int) -> None:
    result = typo(word, random.Random(seed))
    assert result != word and result and not any(char.isspace() for char in result)
    assert abs(len(result) - len(word)) <= 1


def test_plain_is_lower_case_without_punctuation() -> None:
    assert plain("Where's my PARCEL?!  It's late…") == "where s my parcel it s late"


def test_figures_on_a_small_example() -> None:
    truth = ["weather", "weather", "timer", "timer", "out_of_scope", "out_of_scope", "out_of_scope", "recipe"]
    top = ["weather", "timer", "timer", "recipe", "timer", "weather", "recipe", "recipe"]
    answered = ["weather", "timer", "nlu_fallback", "recipe", "nlu_fallback", "weather", "nlu_fallback", "recipe"]
    result = figures(truth, answered, top)
    assert result["accuracy"] == pytest.approx(2 / 5)  # weather, recipe; the declined timer is a miss
    assert result["top1"] == pytest.approx(3 / 5)  # before declining, the timer was right
    assert result["oos_recall"] == pytest.approx(2 / 3)
    assert result["confident_wrong"] == pytest.approx(3 / 8)  # weather->timer, timer->recipe, oos->weather
    assert result["confident_wrong_in_scope"] == pytest.approx(2 / 5)
    assert result["declined_in_scope"] == pytest.approx(1 / 5)


def test_figures_without_out_of_scope_messages_have_no_recall() -> None:
    result = figures(["a", "b"], ["a", "out_of_scope"], ["a", "b"])
    assert result["oos_recall"] is None and result["accuracy"] == 0.5 and result["confident_wrong"] == 0.0


def test_spread() -> None:
    assert spread([0.5, 0.7, 0.6]) == {"mean": pytest.approx(0.6), "sd": pytest.approx(0.1), "min": 0.5, "max": 0.7}
    assert spread([None]) is None
