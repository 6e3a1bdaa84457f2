"""The sentence encoder the help-center index uses, and encoding off the event loop.

The only module of `bot.kb` that reaches the encoder's implementation (`encoder.sentence_encoder`, shared with the
Rasa side), so that where it lives can change here alone. It is loaded by name: `encoder/` is not under the app's
strict type check yet, and a plain import would make mypy check it as part of `bot/`.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, cast

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]  # one L2-normalised row per text

_IMPLEMENTATION = importlib.import_module("encoder.sentence_encoder")
DEFAULT_DIR: Path = _IMPLEMENTATION.DEFAULT_DIR

__all__ = ["DEFAULT_DIR", "Encoder", "Vectors", "encode_async", "load_encoder"]


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised rows of float32, in order."""

    def encode(self, texts: Sequence[str]) -> Vectors: ...


def load_encoder(directory: str | Path = DEFAULT_DIR) -> Encoder:
    """MiniLM-L6 from `directory` (model.safetensors and tokenizer.json); FileNotFoundError says how to fetch it."""
    return cast(Encoder, _IMPLEMENTATION.SentenceEncoder.load(directory))


async def encode_async(encoder: Encoder, texts: Sequence[str]) -> Vectors:
    """`encoder.encode(texts)` in a worker thread: a batch of passages takes seconds, the event loop must not wait."""
    return await asyncio.to_thread(encoder.encode, list(texts))
