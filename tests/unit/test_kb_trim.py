"""The answer text: only the passage's own sentences, in order, within the limit, never cut inside a word."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kb.text import sentences
from bot.kb.trim import trim, trim_pieces

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzAB0123456789", min_size=1, max_size=14)
SENTENCE = st.builds(
    lambda first, rest, end: " ".join([first.capitalize(), *rest]) + end,
    WORD,
    st.lists(WORD, max_size=40),
    st.sampled_from([".", "!", "?", ""]),
)
PASSAGE = st.builds(
    lambda parts, glue: glue.join(parts),
    st.lists(SENTENCE, min_size=1, max_size=12),
    st.sampled_from([" ", "\n", "  "]),
)


@settings(deadline=None, max_examples=200)
@given(PASSAGE, st.lists(WORD, max_size=5).map(" ".join), st.integers(1, 700))
def test_trimming_keeps_whole_words_of_the_passage_in_order(passage: str, query: str, limit: int) -> None:
    pieces = trim_pieces(passage, query, limit)
    text = trim(passage, query, limit)
    assert len(text) <= limit
    assert text == " ".join(pieces)
    whole = sentences(passage)
    assert all(sentence in passage for sentence in whole), "the sentences are verbatim slices of the passage"
    # Each piece is the next sentence in the passage's order; only the first may be a sentence cut at a word's end.
    # (Matched sentence by sentence: a piece may also occur inside an earlier, longer sentence.)
    following = 0
    for number, piece in enumerate(pieces):
        assert piece
        for index in range(following, len(whole)):
            sentence = whole[index]
            if sentence == piece or (
                number == 0 and sentence.startswith(piece) and not re.match(r"\w", sentence[len(piece)])
            ):
                following = index + 1
                break
        else:
            raise AssertionError(f"{piece!r} is not a sentence of the passage after sentence {following}")
        assert not re.search(r"\s$", piece) and not re.match(r"\s", piece)


def test_a_long_passage_keeps_the_sentences_that_answer() -> None:
    filler = "This sentence is about something else entirely and goes on for a while. " * 6
    passage = filler + "To change your delivery address open Orders and press Edit address. " + filler
    assert trim(passage, "how can I change the delivery address?") == (
        "To change your delivery address open Orders and press Edit address."
    )


def test_a_short_passage_is_kept_whole() -> None:
    passage = "Sizes run small. Order one size up.\nSee the size table."
    assert trim(passage, "what size should I order") == "Sizes run small. Order one size up. See the size table."


def test_a_sentence_longer_than_the_limit_is_cut_at_a_word_end() -> None:
    assert trim("Alpha beta gamma delta.", "beta", limit=13) == "Alpha beta"
    assert trim("Alphabet", "alphabet", limit=5) == ""
