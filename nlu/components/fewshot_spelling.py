"""A customer's mistyped word put back before the few-shot classifier reads the message: one keystroke, known words.

The sentence encoder splits a word it does not know ("delivry") into pieces that mean something else, and an intent
with a few examples has seen none of its typos, so a typo costs more in a few-shot bot. `Speller` replaces a word of
three letters or more that is neither in the bot's training examples nor a whole word of the encoder's vocabulary by
a word one keystroke away (a letter replaced, dropped, added, or two swapped) that is: the bot's own words first,
then the encoder's, the more frequent first (its vocabulary is in order of frequency). Anything else is left as it
is. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_WORD = re.compile(r"[A-Za-z]+")


def one_keystroke(word: str) -> set[str]:
    """Every string one letter replaced, dropped, added or two neighbours swapped away from `word`."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    dropped = {a + b[1:] for a, b in splits if b}
    swapped = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaced = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    added = {a + c + b for a, b in splits for c in _LETTERS}
    return (dropped | swapped | replaced | added) - {word}


class Speller:
    """Puts a word back to a known one a keystroke away; the bot's own words before the encoder's."""

    def __init__(self, own: Iterable[str], vocabulary: Mapping[str, int]) -> None:
        self.own = {word.lower() for word in own if word.isalpha()}
        # Whole words of the encoder's vocabulary (not "##" pieces) by rank: the lower, the more frequent.
        self.general = {word: rank for word, rank in vocabulary.items() if word.isascii() and word.isalpha()}
        self._done: dict[str, str] = {}

    def word(self, word: str) -> str:
        """`word` (lower case) if it is known, short or has no known word a keystroke away; else that word."""
        lower = word.lower()
        if len(lower) < 3 or lower in self.own or lower in self.general:
            return word
        if lower not in self._done:
            near = one_keystroke(lower)
            own = sorted(near & self.own, key=lambda w: (self.general.get(w, len(self.general)), w))
            general = sorted((w for w in near & self.general.keys() if len(w) >= 3), key=lambda w: self.general[w])
            self._done[lower] = (own or general or [word])[0]
        return self._done[lower]

    def text(self, text: str) -> str:
        """`text` with each unknown word put back where one keystroke does it."""
        return _WORD.sub(lambda found: self.word(found.group(0)), text)
