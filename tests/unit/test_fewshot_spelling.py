"""Putting a mistyped word back (nlu/components/fewshot_spelling.py): known words kept, one keystroke, own words first."""

from __future__ import annotations

import random
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fewshot_data import typo as mistype
from nlu.components.fewshot_spelling import Speller, one_keystroke

VOCABULARY = {"[UNK]": 100, "##ing": 101, "the": 1996, "weather": 4633, "whether": 3251, "parcel": 20463, "form": 2433}
OWN = ["where", "is", "my", "parcel", "delivery", "refund"]
lower_words = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=10)


def test_a_word_one_keystroke_off_is_put_back() -> None:
    speller = Speller(OWN, VOCABULARY)
    assert speller.text("Where is my delivry?") == "Where is my delivery?"
    assert speller.text("refnud please") == "refund please"  # two letters swapped
    assert speller.text("weathr today") == "weather today"  # one of the encoder's words


def test_known_short_and_far_words_are_left_alone() -> None:
    speller = Speller(OWN, VOCABULARY)
    assert speller.text("the form, ok? xq 42") == "the form, ok? xq 42"
    assert speller.text("zzzzzz parcels") == "zzzzzz parcel"  # a plural is an edit, so is a stranger's word
    assert speller.word("qwxzv") == "qwxzv"


def test_the_bots_own_words_come_first_then_the_more_frequent() -> None:
    # "whethr" is a keystroke from "whether" only; "parcek" from the bot's own "parcel".
    speller = Speller(OWN, VOCABULARY)
    assert speller.word("whethr") == "whether"
    assert Speller(["weather"], VOCABULARY).word("wether") == "weather"  # own before the more frequent "whether"
    assert Speller([], VOCABULARY).word("wether") == "whether"  # the more frequent of the two


@settings(deadline=None)
@given(word=lower_words)
def test_one_keystroke_is_every_single_edit_and_never_the_word(word: str) -> None:
    near = one_keystroke(word)
    assert word not in near
    assert all(abs(len(other) - len(word)) <= 1 for other in near)
    assert word[1:] in near and word + "a" in near or word == "a"


@settings(deadline=None)
@given(
    words=st.lists(lower_words.filter(lambda w: len(w) >= 3), min_size=1, max_size=20, unique=True),
    seed=st.integers(0, 100),
)
def test_a_known_word_is_kept_and_a_correction_is_one_keystroke_off(words: list[str], seed: int) -> None:
    speller = Speller(words, VOCABULARY)
    for word in words:
        assert speller.word(word) == word
        typo = mistype(word, random.Random(seed))
        fixed = speller.word(typo)
        assert fixed == typo or fixed in one_keystroke(typo.lower())
        assert fixed == typo or fixed in set(words) | set(VOCABULARY)
