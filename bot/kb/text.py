"""Words, sentences and hashes of help-center text: what the lexical scores and the trimming agree on."""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# A sentence ends at . ! or ? followed by white space and a capital, a digit or an opening mark ("e.g. this" goes
# on), or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\s*\n+\s*")

# Function words carry no evidence of a topic; "how do I" is in every question.
STOPWORDS = frozenset(
    {
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "i'm",
        "it's",
        "don't",
        "can't",
        "way",
        "want",
        "need",
        "get",
        "possible",
        "there's",
    }
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits, with an apostrophe ending such as "don't")."""
    return _WORD.findall(text.lower())


def _stem(word: str) -> str:
    """A light suffix strip: "deleting", "deleted", "deletes" and "delete" all give "delet"."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + keep
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def terms(text: str) -> list[str]:
    """The index terms of a text: its words without stop words, lightly stemmed, in order (repeats kept)."""
    return [_stem(word) for word in words(text) if word not in STOPWORDS]


def sentences(text: str) -> list[str]:
    """The sentences of a passage, each a verbatim slice of it (stripped), in order."""
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece and piece.strip()]


def text_hash(text: str) -> str:
    """The key a passage's vector is stored under: sha256 of its encoded text, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encoding_text(title: str, passage: str) -> str:
    """What is encoded for a passage: its article's title, then the passage."""
    title = title.strip()
    if title and title[-1] not in ".?!:":
        title += "."
    return f"{title} {passage.strip()}".strip()
