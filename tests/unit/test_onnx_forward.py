"""The onnxruntime forward pass (encoder/onnx_forward.py) gives the numpy forward pass's vectors.

The tiny random-weights encoder of test_sentence_encoder stands in for MiniLM, so these need no download; where the
real weights have been fetched (var/encoders), the real model is compared too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoder import onnx_forward
from encoder.sentence_encoder import DEFAULT_DIR, SentenceEncoder
from tests.unit.test_sentence_encoder import tiny_dir  # noqa: F401  (fixture)

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (requirements/app.txt and rasa.txt have it)")

ROOT = Path(__file__).resolve().parents[2]
# Lengths from 2 to 16 tokens in one batch: most rows are padded.
TEXTS = [
    "where is my order",
    "cafe",
    "",
    "my unknown order is where, a123?",
    "order order order, my order is unknown cafe? where is it, where is a123",
    "?",
    "is my cafe order where",
]


def both(directory: Path, heads: int = 12) -> tuple[SentenceEncoder, SentenceEncoder]:
    numpy_encoder = SentenceEncoder.load(directory, heads=heads, backend="numpy")
    onnx_encoder = SentenceEncoder.load(directory, heads=heads, backend="onnxruntime")
    assert (numpy_encoder._onnx, onnx_encoder.backend) == (None, "onnxruntime")
    return numpy_encoder, onnx_encoder


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_tiny_encoder_gives_the_same_vectors_on_both_backends(tiny_dir: Path, pooling: str) -> None:  # noqa: F811
    (tiny_dir / "encoder.json").write_text(json.dumps({"pooling": pooling}))
    numpy_encoder, onnx_encoder = both(tiny_dir, heads=2)
    assert onnx_encoder.pooling == pooling
    expected, actual = numpy_encoder.encode(TEXTS, batch_size=8), onnx_encoder.encode(TEXTS, batch_size=8)
    assert cosines(expected, actual).min() >= 0.99999
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    # One at a time (no padding) too, and the hidden states of every real token, not only their pooled sum.
    onnx_encoder._cache.clear()
    np.testing.assert_allclose(np.vstack([onnx_encoder.encode([text]) for text in TEXTS]), expected, atol=1e-5)
    batch = [onnx_encoder.tokenizer.encode(text) for text in TEXTS]
    embeddings, mask = onnx_encoder._embed(batch)
    real = mask.astype(bool)
    np.testing.assert_allclose(
        onnx_encoder._onnx.forward(embeddings, mask)[real], numpy_encoder._layers(embeddings, mask)[real], atol=1e-4
    )


def test_a_graph_without_the_attention_mask_would_fail_the_comparison(tiny_dir: Path) -> None:  # noqa: F811
    """The comparison above can fail: attending to the padding (every mask 1) changes the padded rows' vectors."""
    numpy_encoder, onnx_encoder = both(tiny_dir, heads=2)
    batch = [onnx_encoder.tokenizer.encode(text) for text in TEXTS]
    embeddings, mask = onnx_encoder._embed(batch)
    hidden = onnx_encoder._onnx.forward(embeddings, np.ones_like(mask))
    pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    padded = mask.sum(1) < mask.shape[1]
    expected = numpy_encoder.encode(TEXTS)
    assert cosines(pooled[padded], expected[padded]).max() < 0.99999


def test_the_backend_is_chosen_by_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(onnx_forward.ENVIRONMENT, raising=False)
    assert onnx_forward.choose_backend() == "onnxruntime"
    monkeypatch.setenv(onnx_forward.ENVIRONMENT, "numpy")
    assert onnx_forward.choose_backend() == "numpy"
    assert onnx_forward.choose_backend("onnxruntime") == "onnxruntime"
    monkeypatch.setenv(onnx_forward.ENVIRONMENT, "torch")
    with pytest.raises(ValueError, match="FRONTLINE_ENCODER_BACKEND"):
        onnx_forward.choose_backend()


def test_the_disk_cache_keeps_the_backends_apart(tiny_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    numpy_encoder = SentenceEncoder.load(tiny_dir, heads=2, cache=tmp_path / "cache", backend="numpy")
    onnx_encoder = SentenceEncoder.load(tiny_dir, heads=2, cache=tmp_path / "cache", backend="onnxruntime")
    assert numpy_encoder.store is not None and onnx_encoder.store is not None
    assert numpy_encoder.store.model != onnx_encoder.store.model


@pytest.mark.skipif(
    not (DEFAULT_DIR / "model.safetensors").is_file(), reason="MiniLM weights not fetched (make bench-nlu fetches them)"
)
def test_real_weights_give_the_same_vectors_on_both_backends() -> None:
    numpy_encoder, onnx_encoder = both(DEFAULT_DIR)
    paragraphs = [
        paragraph
        for path in sorted((ROOT / "help_center").glob("*.md"))
        for paragraph in path.read_text(encoding="utf-8").split("\n\n")
        if len(paragraph) > 40
    ]
    texts = ["where is my order", "can I pay with PayPal?", "hi", *paragraphs[:60], "refund " * 200]
    expected, actual = numpy_encoder.encode(texts), onnx_encoder.encode(texts)
    assert cosines(expected, actual).min() >= 0.99999
    assert expected[0] @ expected[1] == pytest.approx(actual[0] @ actual[1], abs=1e-4)
