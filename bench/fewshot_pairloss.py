"""SetFit's cosine pair loss in place of the prototype loss when the encoder's last layer is tuned (a measurement;
the product tunes with `encoder.last_layer.proto_loss`). Every pair of a step's examples is pulled to cosine 1 when
both are of one intent and to 0 otherwise (a stranger, labelled -1, is of no intent): the mean squared difference
over the ordered pairs. The step is `last_layer.step_gradients`'s, in length-sorted chunks of at most `tokens`
padded tokens, but in two passes: the vectors first (a pair couples two chunks), then each chunk's backward pass.

    PYTHONPATH=. .venv-rasa/bin/python -m bench.fewshot_pairloss --lr 3e-4 --epochs 4 -- \\
        tune --backend numpy --dir D --shots
    then bench.fewshot_lastlayer_cw's `collect` and `sweep` on D, as for the prototype loss.

Measured: docs/understanding.md, "SetFit's pair loss in the numpy tuning".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from encoder import last_layer


def pair_loss(vectors: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean over ordered pairs of (cosine − same intent)², and its gradient by the (unit) vectors."""
    labels = np.asarray(labels)
    same = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
    gap = vectors @ vectors.T - same
    np.fill_diagonal(gap, 0.0)
    pairs = len(vectors) * (len(vectors) - 1)
    return float((gap**2).sum() / pairs), 4.0 * gap @ vectors / pairs


def step_gradients(
    states: Sequence[np.ndarray],
    labels: np.ndarray,
    params: last_layer.Params,
    prototypes: np.ndarray,
    encoding: last_layer.Encoding,
    scale: float,
    tokens: int = last_layer.STEP_TOKENS,
    background: Any = None,
) -> tuple[float, last_layer.Params, np.ndarray]:
    """`last_layer.step_gradients` with the pair loss (the prototypes, scale and stranger loss unused)."""
    parts = last_layer.chunks(states, tokens)

    def forward(chunk: list[int]) -> tuple[np.ndarray, Any, Any]:
        x, mask = last_layer.pad([states[i] for i in chunk])
        hidden, cache = last_layer.layer_forward(x, encoding.bias(mask), params, encoding.heads, encoding.eps)
        vectors, pooled = last_layer.pool_forward(hidden, mask)
        return vectors, pooled, cache

    vectors = np.zeros((len(states), params["out_bias"].shape[0]))
    for chunk in parts:
        vectors[chunk] = forward(chunk)[0]
    loss, grad_vectors = pair_loss(vectors, labels)
    grads: last_layer.Params = {}
    for chunk in parts:
        rows, pooled, cache = forward(chunk)
        grad_in = last_layer.pool_backward(grad_vectors[chunk].astype(rows.dtype), pooled)
        for name, grad in last_layer.layer_backward(grad_in, cache, params).items():
            grads[name] = grads[name] + grad if name in grads else grad
    return loss, grads, np.zeros_like(prototypes)


def main(argv: Sequence[str] | None = None) -> int:
    from bench import fewshot_lastlayer_cw

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="bench.fewshot_lastlayer_cw's arguments")
    args = parser.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    last_layer.step_gradients = step_gradients  # type: ignore[assignment]  # what `last_layer.tune` calls
    fewshot_lastlayer_cw.SETTINGS.update(lr=args.lr, epochs=args.epochs)
    return fewshot_lastlayer_cw.main(rest)


if __name__ == "__main__":
    sys.exit(main())
