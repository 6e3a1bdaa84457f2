"""The answer text: the sentences of the best passage that answer the query, in their order, within a limit."""

from __future__ import annotations

import re

from bot.kb.text import sentences, terms

LIMIT = 600
_SEPARATOR = " "
_WORD_CHAR = re.compile(r"\w")


def _cut(sentence: str, limit: int) -> str:
    """The longest prefix of `sentence` of at most `limit` characters ending at a word's end ("" if none)."""
    if len(sentence) <= limit:
        return sentence
    end = limit
    while end > 0 and (_WORD_CHAR.match(sentence[end - 1]) is None or _WORD_CHAR.match(sentence[end]) is not None):
        end -= 1
    return sentence[:end].rstrip()


def trim_pieces(passage: str, query: str, limit: int = LIMIT) -> list[str]:
    """Sentences of `passage` (verbatim), in passage order, joined within `limit` characters.

    A passage that fits is kept whole. Otherwise the sentences sharing terms with the query are taken, most shared
    terms first (earlier first on ties), while they fit; when none shares a term, the opening sentences are. A first
    sentence longer than the limit is cut at the end of a word.
    """
    found = sentences(passage)
    if sum(map(len, found)) + len(_SEPARATOR) * (len(found) - 1) <= limit:
        return found
    wanted = set(terms(query))
    score = [len(wanted & set(terms(sentence))) for sentence in found]
    order = [i for i in sorted(range(len(found)), key=lambda i: (-score[i], i)) if score[i] > 0]
    if not order:
        order = list(range(len(found)))
    chosen: list[int] = []
    used = 0
    for i in order:
        cost = len(found[i]) + (len(_SEPARATOR) if chosen else 0)
        if used + cost <= limit:
            chosen.append(i)
            used += cost
        elif not chosen:
            cut = _cut(found[i], limit)
            return [cut] if cut else []
    return [found[i] for i in sorted(chosen)]


def trim(passage: str, query: str, limit: int = LIMIT) -> str:
    """`trim_pieces` joined by spaces: at most `limit` characters, never cut inside a word."""
    return _SEPARATOR.join(trim_pieces(passage, query, limit))
