"""What an MPNet checkpoint (all-mpnet-base-v2) needs beyond BERT's layers: its names, its positions and the
relative-position bias every layer adds to its attention scores.

MPNet's layers are BERT's with other names (`attention.attn.q` for `attention.self.query`, `attention.LayerNorm` for
`attention.output.LayerNorm`), no token-type embedding, LayerNorm's epsilon at 1e-5, absolute positions counted from 2
(RoBERTa's padding index 1, plus one), and one table of 32 buckets x heads, shared by the layers, that turns the
distance between two tokens into a bias on their attention score (T5's log-spaced buckets, both directions).
`SentenceEncoder` renames the weights with `as_bert` and asks `Architecture` for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BIAS_TABLE = "encoder.relative_attention_bias.weight"
BUCKETS, MAX_DISTANCE = 32, 128
_RENAMED = {
    "attention.attn.q.": "attention.self.query.",
    "attention.attn.k.": "attention.self.key.",
    "attention.attn.v.": "attention.self.value.",
    "attention.attn.o.": "attention.output.dense.",
    "attention.LayerNorm.": "attention.output.LayerNorm.",
}


@dataclass(frozen=True)
class Architecture:
    """How a checkpoint departs from BERT's: LayerNorm's epsilon, the first position's row, and the relative-position
    table (buckets x heads) or None."""

    epsilon: float = 1e-12
    first_position: int = 0
    relative_bias: np.ndarray | None = None

    def position_bias(self, length: int) -> np.ndarray | None:
        """(heads, length, length): what attention adds to the score of query i on key j, or None (BERT)."""
        if self.relative_bias is None:
            return None
        return np.ascontiguousarray(self.relative_bias[relative_buckets(length)].transpose(2, 0, 1))


BERT = Architecture()


def is_mpnet(weights: dict[str, np.ndarray]) -> bool:
    return BIAS_TABLE in weights


def as_bert(weights: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Architecture]:
    """An MPNet checkpoint's weights under BERT's names (a zero token-type row added), and its `Architecture`."""
    renamed: dict[str, np.ndarray] = {}
    for name, value in weights.items():
        for old, new in _RENAMED.items():
            if old in name:
                name = name.replace(old, new)
                break
        renamed[name] = value
    width = renamed["embeddings.word_embeddings.weight"].shape[1]
    renamed["embeddings.token_type_embeddings.weight"] = np.zeros((1, width), dtype=np.float32)
    table = np.ascontiguousarray(weights[BIAS_TABLE], dtype=np.float32)
    return renamed, Architecture(epsilon=1e-5, first_position=2, relative_bias=table)


def relative_buckets(length: int, buckets: int = BUCKETS, max_distance: int = MAX_DISTANCE) -> np.ndarray:
    """(length, length) bucket of key j seen from query i: half the buckets for keys before the query, half for keys
    after; within each half, distances below a quarter of the buckets exactly, longer ones on a log scale up to
    `max_distance` (and beyond it, the last bucket)."""
    position = np.arange(length)
    distance = position[None, :] - position[:, None]  # key - query
    half = buckets // 2
    bucket = np.where(distance > 0, half, 0)  # keys after the query use the upper half
    n = np.abs(distance)
    exact = half // 2
    with np.errstate(divide="ignore"):
        logarithmic = exact + (np.log(np.maximum(n, 1) / exact) / np.log(max_distance / exact) * (half - exact)).astype(
            np.int64
        )
    logarithmic = np.minimum(logarithmic, half - 1)
    return bucket + np.where(n < exact, n, logarithmic)
