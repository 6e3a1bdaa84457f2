"""Fine-tuning only a sentence encoder's last transformer layer on an intent set's few examples, in numpy.

Measured on CLINC150 validation with PyTorch (`bench/fewshot_lastlayer.py`, `bench/fewshot_lastlayer_cw.py`): tuning
MPNet's last layer on a 10-shot draw, then refitting the few-shot calibration on tuned draws, raises in-scope
accuracy at 5 % confident-wrong from 89.8 to 91.3 %. Rasa's environment has no PyTorch, so this module does the same
in numpy: a step's gradients in bounded chunks under one of `encoder.tuning_loss`'s losses (the prototype loss,
shipped, SetFit's pair loss or the supervised contrastive loss), through the layer's forward and backward passes and
mean pooling (`encoder.layer_pass`), and torch's AdamW step (`encoder.adamw`).

The layer is the encoder's own (`SentenceEncoder.layers[-1]`: matrices as `x @ matrix`, LayerNorms as (weight, bias)
pairs) and the states it is tuned on are the hidden states entering it, computed once by the frozen layers
(`encoder.tuned.Frozen`). Gradients are checked against finite differences in `tests/unit/test_last_layer.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from encoder.adamw import AdamW
from encoder.layer_pass import Params, attention_bias, layer_backward, layer_forward, pool_backward, pool_forward
from encoder.tuning_loss import COUPLED, LOSSES, contrastive_loss, pair_loss, proto_loss

# Padded tokens a step runs at once (`chunks`): about 112 kB each for MPNet, some 230 MB; more run in chunks.
STEP_TOKENS = 2048
KEPT_CHUNKS = 2  # a coupled loss's chunks whose forward pass is kept for their backward pass (`step_gradients`)


@dataclass(frozen=True)
class Settings:
    """The measured recipe: proto loss, 2 epochs, AdamW at 1e-3 for the layer and the prototypes (`PAIRS`: the pair
    loss's; `CONTRASTIVE`: the contrastive loss's)."""

    loss: str = "proto"  # or "pairs", "contrastive" (encoder.tuning_loss)
    epochs: int = 2
    lr: float = 1e-3
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    scale: float = 20.0
    intents: int = 16  # intents per batch, all their examples
    seed: int = 0
    # Strangers' states passed to `tune` (outlier exposure): `background_per_step` of them join every step, each
    # weighing `background_weight` in the loss; "uniform" pulls their softmax over the prototypes towards uniform,
    # "energy" pushes down the log-sum-exp of their cosines (divided by the scale: about their highest cosine).
    background: str = "uniform"
    background_weight: float = 1.0
    background_per_step: int = 16


# SetFit's pair loss: +0.6 to +0.7 points of in-scope accuracy at the same confident-wrong on CLINC150 validation at
# k = 10, for about twice the tuning time (docs/understanding.md, "SetFit's pair loss in the numpy tuning").
PAIRS = Settings(loss="pairs", epochs=4, lr=3e-4)
# The supervised contrastive loss at a scale of 10 (a temperature of 0.1), measured on CLINC150 validation at k = 10:
# in the prototype loss's tuning time, with a calibration of its own, as good as the pair loss's 4 epochs
# (docs/understanding.md, "A supervised contrastive loss").
CONTRASTIVE = Settings(loss="contrastive", epochs=2, lr=1e-3, scale=10.0)


def flat(layer: dict[str, Any]) -> Params:
    """The encoder's layer as float arrays by name, its (weight, bias) pairs split into `name.weight`, `name.bias`."""
    out: Params = {}
    for name, value in layer.items():
        if isinstance(value, tuple):
            out[name + ".weight"], out[name + ".bias"] = (np.array(v, dtype=np.float32) for v in value)
        else:
            out[name] = np.array(value, dtype=np.float32)
    return out


def nested(params: Params) -> dict[str, Any]:
    """`flat`'s inverse: the layer as `SentenceEncoder.layers` holds it."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name.endswith(".weight"):
            out[name[: -len(".weight")]] = (value, params[name[: -len(".weight")] + ".bias"])
        elif not name.endswith(".bias"):
            out[name] = value
    return out


# --- tuning --------------------------------------------------------------------------------------------------------


def pad(states: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Token states of several texts (tokens, dim) as one zero-padded batch, and its mask."""
    length, dim = max(len(s) for s in states), states[0].shape[1]
    x = np.zeros((len(states), length, dim), dtype=np.float32)
    mask = np.zeros((len(states), length), dtype=np.float32)
    for row, s in enumerate(states):
        x[row, : len(s)] = s
        mask[row, : len(s)] = 1.0
    return x, mask


@dataclass
class Encoding:
    """How the encoder runs its layers: heads, LayerNorm epsilon, and its relative-position bias by length."""

    heads: int
    eps: float
    position_bias: Any = None  # length -> (heads, length, length) or None

    def bias(self, mask: np.ndarray) -> np.ndarray:
        position = None if self.position_bias is None else self.position_bias(mask.shape[1])
        return attention_bias(mask, position)


def embed(states: Sequence[np.ndarray], params: Params, encoding: Encoding, batch: int = 128) -> np.ndarray:
    """The sentence vectors of `states` through the layer `params` (batches of similar length)."""
    order = sorted(range(len(states)), key=lambda i: len(states[i]))
    out = np.zeros((len(states), params["out"].shape[1]), dtype=np.float32)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        x, mask = pad([states[i] for i in chunk])
        hidden, _ = layer_forward(x, encoding.bias(mask), params, encoding.heads, encoding.eps, mask)
        out[chunk] = pool_forward(hidden, mask)[0]
    return out


def chunks(states: Sequence[np.ndarray], tokens: int = STEP_TOKENS) -> list[list[int]]:
    """The states' indices in length-sorted chunks of at most `tokens` padded tokens (one state at least)."""
    found: list[list[int]] = []
    for i in sorted(range(len(states)), key=lambda i: len(states[i])):
        if found and (len(found[-1]) + 1) * len(states[i]) <= tokens:
            found[-1].append(i)
        else:
            found.append([i])
    return found


def step_gradients(
    states: Sequence[np.ndarray],
    labels: np.ndarray,
    params: Params,
    prototypes: np.ndarray,
    encoding: Encoding,
    scale: float,
    tokens: int = STEP_TOKENS,
    background: tuple[str, float] = ("uniform", 1.0),
    loss: str = "proto",
) -> tuple[float, Params, np.ndarray]:
    """One step's mean loss and gradients over `states`, in `chunks` (the same sums as one batch), so memory stays
    bounded however many examples an intent has. Rows labelled -1 are strangers. The `proto` loss is a mean over
    rows: each chunk runs forward and back at once. The `pairs` and `contrastive` losses couple rows of different
    chunks: every chunk runs forward first (the first `KEPT_CHUNKS` keep what their backward pass needs; the others
    run again). `scale` multiplies the cosines of the `proto` and `contrastive` losses."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: one of {', '.join(LOSSES)}")
    parts = chunks(states, tokens)

    def forward(chunk: list[int]) -> tuple[np.ndarray, tuple, dict[str, Any]]:
        x, mask = pad([states[i] for i in chunk])
        hidden, cache = layer_forward(x, encoding.bias(mask), params, encoding.heads, encoding.eps, mask)
        return (*pool_forward(hidden, mask), cache)

    grads: Params = {}

    def backward(grad_vectors: np.ndarray, pooled: tuple, cache: dict[str, Any]) -> None:
        for name, grad in layer_backward(pool_backward(grad_vectors, pooled), cache, params).items():
            grads[name] = grads[name] + grad if name in grads else grad

    if loss in COUPLED:
        vectors = np.zeros((len(states), params["out_bias"].shape[0]))
        kept = {}
        for number, chunk in enumerate(parts):
            vectors[chunk], *rest = forward(chunk)
            if number < KEPT_CHUNKS:
                kept[number] = rest
        total_loss, grad_all = (
            pair_loss(vectors, labels) if loss == "pairs" else contrastive_loss(vectors, labels, scale)
        )
        for number, chunk in enumerate(parts):
            pooled, cache = kept.pop(number) if number in kept else forward(chunk)[1:]
            backward(grad_all[chunk].astype(pooled[0].dtype), pooled, cache)
        return total_loss, grads, np.zeros_like(prototypes)
    total_loss, grad_prototypes = 0.0, np.zeros_like(prototypes)
    for chunk in parts:
        share = len(chunk) / len(states)
        vectors, pooled, cache = forward(chunk)
        part_loss, grad_vectors, grad_chunk = proto_loss(vectors, labels[chunk], prototypes, scale, *background)
        backward(grad_vectors * share, pooled, cache)
        total_loss += part_loss * share
        grad_prototypes += grad_chunk * share
    return total_loss, grads, grad_prototypes


def tune(
    states: Sequence[np.ndarray],
    labels: np.ndarray,
    layer: dict[str, Any],
    encoding: Encoding,
    settings: Settings,
    background: Sequence[np.ndarray] = (),
) -> tuple[dict[str, Any], list[float]]:
    """A tuned copy of `layer` (as the encoder holds it) on the examples' states and intent numbers 0..n-1 (each with
    an example); and each step's loss. A step takes all the examples of `settings.intents` intents, every intent's
    prototype in every softmax, and the next `settings.background_per_step` of the `background` strangers' states
    (a seeded order, cycled)."""
    params = flat(layer)
    labels = np.asarray(labels)
    classes = int(labels.max()) + 1
    by_class = [np.flatnonzero(labels == c) for c in range(classes)]
    if any(len(members) == 0 for members in by_class):
        raise ValueError("every intent number from 0 to the highest needs an example")
    prototypes = np.zeros((classes, params["out_bias"].shape[0]), dtype=np.float32)
    if settings.loss == "proto":  # the pair loss has no prototypes
        np.add.at(prototypes, labels, embed(states, params, encoding))
    prototypes /= np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
    rates = {name: settings.lr for name in params} | {"prototypes": settings.head_lr}
    optimizer = AdamW(rates, settings.weight_decay)
    strangers = _cycle(len(background), settings.background_per_step, np.random.default_rng(settings.seed + 1))
    losses = []
    for index in steps(by_class, settings):
        extra = next(strangers)
        loss, grads, grad_prototypes = step_gradients(
            [states[i] for i in index] + [background[i] for i in extra],
            np.concatenate([labels[index], np.full(len(extra), -1)]),
            params,
            prototypes,
            encoding,
            settings.scale,
            background=(settings.background, settings.background_weight),
            loss=settings.loss,
        )
        both = params | {"prototypes": prototypes}
        optimizer.step(both, grads | {"prototypes": grad_prototypes})
        prototypes = both["prototypes"]
        losses.append(loss)
    return nested(params), losses


def steps(by_class: Sequence[np.ndarray], settings: Settings) -> Any:
    """Each step's example indices: every epoch, the intents in a seeded order, `settings.intents` of them a step,
    all their examples (`by_class`: each intent's indices)."""
    rng = np.random.default_rng(settings.seed)
    for _ in range(settings.epochs):
        order = rng.permutation(len(by_class))
        for first in range(0, len(by_class), settings.intents):
            yield np.concatenate([by_class[c] for c in order[first : first + settings.intents]])


def _cycle(size: int, each: int, rng: np.random.Generator) -> Any:
    """Endless groups of min(`each`, `size`) distinct indices, in turn from a stream of seeded permutations of
    range(`size`); an index met twice for one group waits for the next."""
    each = min(each, size)
    queue: list[int] = []
    while True:
        while len(set(queue)) < each:
            queue += rng.permutation(size).tolist()
        group: list[int] = []
        rest: list[int] = []
        for i in queue:
            (group if len(group) < each and i not in group else rest).append(i)
        queue = rest
        yield np.array(group, dtype=int)


# --- the encoder around it ----------------------------------------------------------------------------------------


def encoding_of(encoder: Any) -> Encoding:
    """How `encoder` (a `SentenceEncoder`) runs its layers."""
    architecture = encoder.architecture
    return Encoding(encoder.heads, architecture.epsilon, architecture.position_bias)
