"""A sentence encoder whose last layer is tuned on a model's own examples (`encoder.last_layer`), for serving.

- `Frozen` runs every layer but the last, once per process and directory (`Frozen.get`), in onnxruntime where it is
  installed, and keeps the states of the last texts it read (a few hundred: each is tokens x dimension floats; a
  benchmark that reads the same texts for many models raises `keep`). Its weights are loaded without a full graph of
  their own.
- `TunedEncoder` puts a tuned last layer on top of it, with `SentenceEncoder`'s interface where the classifiers use
  it (`encode`, `tokenizer`, `dimension`), and keeps its own vectors by text, least recently used out; a model's
  training examples are all kept, so training runs the frozen layers over them once.

Both are safe to call from several threads (one lock each). Only mean pooling is supported (every shipped encoder).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from encoder import last_layer

STATES_KEPT = 256  # texts whose frozen states are kept (about 50 kB each for MPNet, 400 kB at 128 tokens)
VECTORS_KEPT = 4096  # texts whose tuned vectors are kept, per model, besides its training examples (3 kB each)


class Frozen:
    """An encoder's layers but the last, with their outputs kept by text."""

    loaded: ClassVar[dict[str, Frozen]] = {}

    def __init__(self, encoder: Any, keep: int = STATES_KEPT, backend: str | None = None) -> None:
        from encoder import onnx_forward

        if getattr(encoder, "pooling", "mean") != "mean":
            raise ValueError("a tuned last layer needs an encoder with mean pooling")
        self.encoder = encoder
        self.encoding = last_layer.encoding_of(encoder)
        self.keep = keep
        self._states: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._session = None
        frozen = encoder.layers[:-1]
        if frozen and onnx_forward.choose_backend(backend) == onnx_forward.ONNXRUNTIME:
            self._session = onnx_forward.OnnxForward.of(encoder, layers=frozen)

    @classmethod
    def get(cls, directory: str | Path) -> Frozen:
        """The process's one `Frozen` for the encoder in `directory` (loaded on numpy: no graph of all layers)."""
        from encoder.sentence_encoder import SentenceEncoder

        key = str(Path(directory).resolve())
        if key not in cls.loaded:
            cls.loaded[key] = cls(SentenceEncoder.load(directory, backend="numpy"))
        return cls.loaded[key]

    @property
    def last(self) -> dict[str, Any]:
        """The encoder's own (untuned) last layer."""
        return self.encoder.layers[-1]

    def states(self, texts: Sequence[str], batch: int = 64) -> list[np.ndarray]:
        """Each text's hidden states entering the last layer (tokens, dimension)."""
        with self._lock:
            return self._states_of(texts, batch)

    def _states_of(self, texts: Sequence[str], batch: int) -> list[np.ndarray]:
        from encoder.wordpiece import MAX_TOKENS

        encoder = self.encoder
        found: dict[str, np.ndarray] = {}
        todo = []
        for text in dict.fromkeys(texts):
            if text in self._states:
                self._states.move_to_end(text)
                found[text] = self._states[text]
            else:
                todo.append(text)
        tokens = {text: encoder.tokenizer.encode(encoder.prefix + text, MAX_TOKENS) for text in todo}
        order = sorted(todo, key=lambda text: len(tokens[text]))  # little padding
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            x, mask = encoder._embed([tokens[text] for text in chunk])
            position = encoder.architecture.position_bias(mask.shape[1])
            if self._session is not None:
                x = self._session.forward(x, mask, position)
            else:
                x = encoder._layers(x, mask, position, layers=encoder.layers[:-1])
            for row, text in enumerate(chunk):
                found[text] = np.array(x[row, : len(tokens[text])], dtype=np.float32)
                self._states[text] = found[text]
        while len(self._states) > self.keep:
            self._states.popitem(last=False)
        return [found[text] for text in texts]


def unlike(
    strangers: Sequence[np.ndarray], examples: Sequence[np.ndarray], frozen: Frozen, max_cosine: float
) -> list[np.ndarray]:
    """The strangers' states whose frozen sentence vector's cosine to every example's is below `max_cosine` (all of
    them at 1.0 or more)."""
    if not strangers or not examples or max_cosine >= 1.0:
        return list(strangers)
    own = last_layer.flat(frozen.last)
    vectors = last_layer.embed(strangers, own, frozen.encoding) @ last_layer.embed(examples, own, frozen.encoding).T
    return [state for state, cosine in zip(strangers, vectors.max(1)) if cosine < max_cosine]


class TunedEncoder:
    """`Frozen`'s states through a tuned last layer: L2-normalised sentence vectors, as `SentenceEncoder.encode`."""

    def __init__(self, frozen: Frozen, layer: dict[str, Any], keep: int = VECTORS_KEPT) -> None:
        self.frozen = frozen
        self.params = last_layer.flat(layer)
        expected = {name: value.shape for name, value in last_layer.flat(frozen.last).items()}
        if {name: value.shape for name, value in self.params.items()} != expected:
            raise ValueError("the tuned layer does not fit this encoder's last layer (another encoder?)")
        self.keep = keep
        self.strangers = 0  # how many strangers the layer was tuned on (`trained`)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def trained(
        cls,
        frozen: Frozen,
        texts: Sequence[str],
        labels: np.ndarray,
        settings: last_layer.Settings,
        strangers: Sequence[str] = (),
        max_cosine: float = 1.0,
    ) -> TunedEncoder:
        """The last layer tuned on `texts` labelled with intent numbers `labels`, and on those of `strangers` whose
        frozen vector's cosine to every text is below `max_cosine` (outlier exposure, `last_layer.tune`: a stranger
        that reads like one of the bot's own examples is not pushed away from it); the texts' vectors kept."""
        states = frozen.states(texts)
        background = unlike(frozen.states(strangers) if strangers else [], states, frozen, max_cosine)
        layer, _ = last_layer.tune(states, labels, frozen.last, frozen.encoding, settings, background)
        tuned = cls(frozen, layer, keep=VECTORS_KEPT + len(texts))
        tuned.strangers = len(background)
        tuned._vectors.update(zip(texts, last_layer.embed(states, tuned.params, frozen.encoding)))
        return tuned

    @property
    def tokenizer(self) -> Any:
        return self.frozen.encoder.tokenizer

    @property
    def dimension(self) -> int:
        return int(self.frozen.encoder.dimension)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            todo = [text for text in dict.fromkeys(texts) if text not in self._vectors]
            if todo:
                vectors = last_layer.embed(self.frozen.states(todo), self.params, self.frozen.encoding)
                self._vectors.update(zip(todo, vectors))
            out = np.zeros((len(texts), self.dimension), dtype=np.float32)
            for row, text in enumerate(texts):
                out[row] = self._vectors[text]
                self._vectors.move_to_end(text)
            while len(self._vectors) > self.keep:
                self._vectors.popitem(last=False)
        return out
