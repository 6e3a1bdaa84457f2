"""SentencePiece Unigram tokenization (XLM-RoBERTa's vocabulary), for encoders that use it instead of WordPiece.

multilingual-e5-small (`encoder.e5_wheel`) reads text through XLM-R's SentencePiece model: each character is mapped
through a normalisation table (NFKC-like, from the model's own precompiled map), runs of spaces become one, a space
is put in front and every space becomes the metaspace "▁", and the text is split into the vocabulary's pieces of the
highest total log-probability (Viterbi). A character no piece covers is `<unk>`.

`tokenizer.json` (as written by `encoder.e5_wheel`) holds `model.type: "Unigram"`, `model.vocab` as [piece, score]
pairs in id order, `model.unk_id`, the special tokens, and `normalizer.map` (a code point -> its replacement).
"""

from __future__ import annotations

META = "\u2581"


class Unigram:
    """Viterbi over Unigram pieces, word by word (no piece holds the metaspace after its first character)."""

    def __init__(
        self, vocab: list[tuple[str, float]], unk_id: int, bos_id: int, eos_id: int, normalize: dict[str, str]
    ) -> None:
        self.ids = {piece: index for index, (piece, _) in enumerate(vocab)}
        self.scores = [score for _, score in vocab]
        self.unk_id, self.cls_id, self.sep_id = unk_id, bos_id, eos_id
        self.unk_score = min(self.scores) - 10.0
        self.max_chars = max(len(piece) for piece, _ in vocab)
        self.normalize = normalize
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab(self) -> dict[str, int]:
        """Whole words (pieces that start a word), lower-cased, to their first id: the lower, the more frequent."""
        words: dict[str, int] = {}
        for piece, index in self.ids.items():
            if piece.startswith(META) and len(piece) > 1:
                words.setdefault(piece[1:].lower(), index)
        return words

    @classmethod
    def from_tokenizer_json(cls, data: dict) -> Unigram:
        model = data["model"]
        specials = data["special"]
        normalize = {chr(int(code)): text for code, text in data.get("normalizer", {}).get("map", {}).items()}
        vocab = [(piece, float(score)) for piece, score in model["vocab"]]
        return cls(vocab, model["unk_id"], specials["bos_id"], specials["eos_id"], normalize)

    def pieces_text(self, text: str) -> str:
        """The normalised text with metaspaces, as the Viterbi search sees it."""
        normalize = self.normalize
        chars = "".join(normalize.get(char, char) for char in text)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        if not chars.startswith(" "):
            chars = " " + chars
        return chars.replace(" ", META)

    def word_ids(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        n = len(word)
        best = [0.0] + [float("-inf")] * n
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        for start in range(n):
            if best[start] == float("-inf"):
                continue
            for end in range(start + 1, min(n, start + self.max_chars) + 1):
                index = self.ids.get(word[start:end])
                if index is not None and index != self.unk_id:
                    score = best[start] + self.scores[index]
                    if score > best[end]:
                        best[end], back[end] = score, (start, index)
            score = best[start] + self.unk_score
            if score > best[start + 1]:
                best[start + 1], back[start + 1] = score, (start, self.unk_id)
        ids: list[int] = []
        position = n
        while position > 0:
            position, index = back[position]
            ids.append(index)
        ids.reverse()
        if len(self._cache) < 200_000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str, max_tokens: int) -> list[int]:
        """Token ids of `text` between `<s>` and `</s>`, truncated to `max_tokens`."""
        ids: list[int] = []
        # The text starts with a metaspace, so the first part is empty; a trailing space is a lone "▁".
        for word in self.pieces_text(text).split(META)[1:]:
            ids.extend(self.word_ids(META + word))
            if len(ids) >= max_tokens:
                break
        return [self.cls_id, *ids[: max_tokens - 2], self.sep_id]
