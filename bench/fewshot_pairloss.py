"""SetFit's cosine pair loss in the numpy tuning of the encoder's last layer, measured: `encoder.last_layer` with
`Settings(loss="pairs")` (the whole layer tuned) or, with `--part ffn`, only its feed-forward block (the attention
block frozen, so each example's attention output is computed once and the feed-forward tokens need no padding).

    PYTHONPATH=. .venv-rasa/bin/python -m bench.fewshot_pairloss --lr 3e-4 --epochs 4 [--part ffn] \\
        [--loss contrastive --scale 10] -- tune --backend numpy --dir D --shots
    then bench.fewshot_lastlayer_cw's `collect` and `sweep` on D, as for the prototype loss.

Measured: docs/understanding.md, "SetFit's pair loss in the numpy tuning" and "The pair loss's cost".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from encoder import last_layer, layer_pass
from encoder.tuning_loss import COUPLED, pair_loss


def ffn_inputs(states: Sequence[np.ndarray], params: last_layer.Params, encoding: last_layer.Encoding) -> list:
    """Each state's tokens after the layer's (frozen) attention block: what its feed-forward block reads."""
    out: list[np.ndarray] = [np.empty(0)] * len(states)
    for chunk in last_layer.chunks(states):
        x, mask = last_layer.pad([states[i] for i in chunk])
        _, cache = layer_pass.layer_forward(x, encoding.bias(mask), params, encoding.heads, encoding.eps)
        first = cache["first"].reshape(x.shape)
        for row, i in enumerate(chunk):
            out[i] = first[row, : len(states[i])]
    return out


def ffn_step(
    firsts: Sequence[np.ndarray], labels: np.ndarray, params: last_layer.Params, eps: float
) -> tuple[float, last_layer.Params]:
    """The pair loss and its gradients for the feed-forward block alone: its tokens need no padding (no attention)."""
    rows = np.concatenate(firsts)
    lengths = np.array([len(f) for f in firsts])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    up = rows @ params["up"] + params["up_bias"]
    hidden, cdf = layer_pass.gelu(up)
    out, norm2 = layer_pass._norm_forward(
        rows + hidden @ params["down"] + params["down_bias"], params["norm2.weight"], params["norm2.bias"], eps
    )
    mean = np.add.reduceat(out, starts, axis=0) / lengths[:, None]
    norms = np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    vectors = mean / norms
    loss, grad_vectors = pair_loss(vectors, labels)
    grad_mean = (grad_vectors - vectors * (grad_vectors * vectors).sum(1, keepdims=True)) / norms / lengths[:, None]
    grads: last_layer.Params = {}
    grad, grads["norm2.weight"], grads["norm2.bias"] = layer_pass._norm_backward(
        np.repeat(grad_mean, lengths, axis=0).astype(rows.dtype), norm2
    )
    grads["down"] = hidden.T @ grad
    grads["down_bias"] = grad.sum(0)
    grad_up = (grad @ params["down"].T) * layer_pass.gelu_slope(up, cdf)
    grads["up"] = rows.T @ grad_up
    grads["up_bias"] = grad_up.sum(0)
    return loss, grads


def tune_ffn(
    states: Sequence[np.ndarray],
    labels: np.ndarray,
    layer: dict[str, Any],
    encoding: last_layer.Encoding,
    settings: last_layer.Settings,
    background: Sequence[np.ndarray] = (),
) -> tuple[dict[str, Any], list[float]]:
    """`last_layer.tune` with the pair loss, the attention block frozen and only the feed-forward block tuned (no
    strangers: this form was measured without them)."""
    if len(background):
        raise ValueError("the feed-forward form takes no strangers (--background, --generated)")
    params = last_layer.flat(layer)
    firsts = ffn_inputs(states, params, encoding)
    labels = np.asarray(labels)
    by_class = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
    tuned = ("up", "up_bias", "down", "down_bias", "norm2.weight", "norm2.bias")
    optimizer = last_layer.AdamW({name: settings.lr for name in tuned}, settings.weight_decay)
    losses = []
    for index in last_layer.steps(by_class, settings):
        loss, grads = ffn_step([firsts[i] for i in index], labels[index], params, encoding.eps)
        optimizer.step(params, grads)
        losses.append(loss)
    return last_layer.nested(params), losses


def main(argv: Sequence[str] | None = None) -> int:
    from bench import fewshot_lastlayer_cw

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--part", choices=("layer", "ffn"), default="layer", help="what is tuned")
    parser.add_argument("--loss", choices=COUPLED, default="pairs", help="the whole layer's loss (--part layer)")
    parser.add_argument(
        "--scale", type=float, default=last_layer.CONTRASTIVE.scale, help="the contrastive loss's cosine multiplier"
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="bench.fewshot_lastlayer_cw's arguments")
    args = parser.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if args.part == "ffn":
        last_layer.tune = tune_ffn  # type: ignore[assignment]  # what the benchmark's numpy backend calls
    fewshot_lastlayer_cw.SETTINGS.update(loss=args.loss, lr=args.lr, epochs=args.epochs, scale=args.scale)
    return fewshot_lastlayer_cw.main(rest)


if __name__ == "__main__":
    sys.exit(main())
