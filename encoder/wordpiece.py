"""BERT's uncased WordPiece tokenizer, read from a `tokenizer.json`: MiniLM's and MPNet's vocabularies."""

from __future__ import annotations

import unicodedata

MAX_TOKENS = 128  # what the encoders were trained with; longer messages are truncated


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def basic_words(text: str) -> list[str]:
    """BERT's basic tokenization: clean, lower-case, strip accents, split on spaces and punctuation."""
    chars = []
    for char in text:
        code = ord(char)
        if code == 0 or code == 0xFFFD or (unicodedata.category(char).startswith("C") and char not in "\t\n\r"):
            continue
        if char.isspace():
            chars.append(" ")
        elif _is_cjk(code):
            chars.append(f" {char} ")
        else:
            chars.append(char)
    text = unicodedata.normalize("NFD", "".join(chars).lower())
    text = "".join(char for char in text if unicodedata.category(char) != "Mn")
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for char in chunk:
            if _is_punctuation(char):
                if current:
                    words.append(current)
                    current = ""
                words.append(char)
            else:
                current += char
        if current:
            words.append(current)
    return words


class WordPiece:
    """Greedy longest-match-first WordPiece over a fixed vocabulary."""

    def __init__(
        self,
        vocab: dict[str, int],
        unknown: str = "[UNK]",
        max_word_chars: int = 100,
        ends: tuple[str, str] = ("[CLS]", "[SEP]"),
    ) -> None:
        self.vocab = vocab
        self.unknown_id = vocab[unknown]
        self.cls_id, self.sep_id = vocab[ends[0]], vocab[ends[1]]
        self.max_word_chars = max_word_chars
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_tokenizer_json(cls, data: dict) -> WordPiece:
        model = data["model"]
        # The tokens around a text: BERT's [CLS] ... [SEP], or what the post-processor names (MPNet's <s> ... </s>).
        post = data.get("post_processor") or {}
        ends = (post["cls"][0], post["sep"][0]) if "cls" in post and "sep" in post else ("[CLS]", "[SEP]")
        unknown, longest = model.get("unk_token", "[UNK]"), model.get("max_input_chars_per_word", 100)
        return cls(model["vocab"], unknown, longest, ends)

    def word_ids(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        ids: list[int] = []
        if len(word) > self.max_word_chars:
            ids = [self.unknown_id]
        else:
            start = 0
            while start < len(word):
                end = len(word)
                found = None
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        found = self.vocab[piece]
                        break
                    end -= 1
                if found is None:
                    ids = [self.unknown_id]
                    break
                ids.append(found)
                start = end
        if len(self._cache) < 200_000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        """Token ids of `text` between its two end tokens ([CLS] ... [SEP], or <s> ... </s>), truncated to
        `max_tokens`."""
        ids = [piece for word in basic_words(text) for piece in self.word_ids(word)]
        return [self.cls_id, *ids[: max_tokens - 2], self.sep_id]
