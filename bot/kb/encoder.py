"""The sentence encoder the help-center index uses, and encoding off the event loop.

The only module of `bot.kb` that imports the encoder's implementation, so that where it lives can change in one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from nlu.components.sentence_encoder import DEFAULT_DIR, SentenceEncoder

__all__ = ["DEFAULT_DIR", "Encoder", "encode_async", "load_encoder"]


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised rows of float32, in order."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def load_encoder(directory: str | Path = DEFAULT_DIR) -> SentenceEncoder:
    """MiniLM-L6 from `directory` (model.safetensors and tokenizer.json); FileNotFoundError says how to fetch it."""
    return SentenceEncoder.load(directory)


async def encode_async(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """`encoder.encode(texts)` in a worker thread: a batch of passages takes seconds, the event loop must not wait."""
    return await asyncio.to_thread(encoder.encode, list(texts))
