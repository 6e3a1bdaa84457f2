"""One transformer layer's forward and backward pass, and mean pooling, in numpy: what `encoder.last_layer` tunes.

The layer is as `SentenceEncoder._layers` runs it (matrices as `x @ matrix`, LayerNorms as `name.weight`,
`name.bias`). Given a batch's mask, everything but the attention runs on the real tokens only. Gradients are checked
against finite differences in `tests/unit/test_last_layer.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np
from scipy.special import erf

from encoder.onnx_forward import cores

Params = dict[str, np.ndarray]

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_CORES = cores()
_pool: ThreadPoolExecutor | None = None  # `_by_rows`'s threads, started on first use


# --- one layer, forward and backward --------------------------------------------------------------------------------


def _norm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> tuple[np.ndarray, tuple]:
    mean = x.mean(-1, keepdims=True)
    inverse = 1.0 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)
    normal = (x - mean) * inverse
    return normal * weight + bias, (normal, inverse, weight)


def _norm_backward(grad: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    normal, inverse, weight = cache
    grad_normal = grad * weight
    grad_x = inverse * (
        grad_normal - grad_normal.mean(-1, keepdims=True) - normal * (grad_normal * normal).mean(-1, keepdims=True)
    )
    return grad_x, (grad * normal).sum(0), grad.sum(0)


def gelu(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GELU(x) = x Φ(x), and Φ(x) (the normal CDF) kept for `gelu_slope`; in place, and in row blocks on every core
    (the error function alone was a sixth of a tuning step on one)."""
    cdf, out = np.empty_like(x), np.empty_like(x)

    def block(rows: slice) -> None:
        part = cdf[rows]
        np.multiply(x[rows], np.asarray(1.0 / _SQRT2, dtype=x.dtype), out=part)
        erf(part, out=part)
        part += 1.0
        part *= 0.5
        np.multiply(x[rows], part, out=out[rows])

    _by_rows(block, len(x))
    return out, cdf


def gelu_slope(x: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """GELU's derivative at x, Φ(x) + x φ(x), given `gelu`'s Φ(x)."""
    slope = np.empty_like(x)

    def block(rows: slice) -> None:
        part = slope[rows]
        np.multiply(x[rows], x[rows], out=part)
        part *= -0.5
        np.exp(part, out=part)
        part *= x[rows]
        part *= 1.0 / _SQRT2PI
        part += cdf[rows]

    _by_rows(block, len(x))
    return slope


def _by_rows(work: Callable[[slice], None], count: int) -> None:
    """`work` on `count` rows in one block per core, in threads: numpy's and scipy's loops run without the GIL."""
    global _pool
    blocks = min(_CORES, max(1, count // 256))
    if blocks == 1:
        work(slice(0, count))
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(_CORES, thread_name_prefix="layer-pass")
    edges = [count * i // blocks for i in range(blocks + 1)]
    list(_pool.map(work, [slice(start, end) for start, end in pairwise(edges)]))


def attention_bias(mask: np.ndarray, position_bias: np.ndarray | None) -> np.ndarray:
    """What the scores get added: -1e9 on padding keys, and the encoder's relative-position bias where it has one."""
    bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
    return bias if position_bias is None else bias + position_bias[None]


def layer_forward(
    x: np.ndarray, bias: np.ndarray, params: Params, heads: int, eps: float, mask: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The layer as `SentenceEncoder._layers` runs it: x (batch, length, dim) -> its output, and the backward cache.
    Given the batch's `mask`, everything but the attention runs on the real tokens only (a step's chunk is about a
    third padding) and the padding's outputs are zero; the real tokens' outputs are the same either way."""
    size, length, dim = x.shape
    width = dim // heads
    scale = 1.0 / math.sqrt(width)
    real = None if mask is None else np.flatnonzero(mask.reshape(-1))
    rows = _packed(x.reshape(size * length, dim), real)
    qkv = _padded(rows @ params["qkv"] + params["qkv_bias"], real, size * length)
    qkv = qkv.reshape(size, length, 3, heads, width).transpose(2, 0, 3, 1, 4)
    query, key, value = qkv[0], qkv[1], qkv[2]
    scores = (query @ key.transpose(0, 1, 3, 2)) * scale + bias
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    attention = scores / scores.sum(-1, keepdims=True)
    context = _packed((attention @ value).transpose(0, 2, 1, 3).reshape(size * length, dim), real)
    first, norm1 = _norm_forward(
        rows + context @ params["out"] + params["out_bias"], params["norm1.weight"], params["norm1.bias"], eps
    )
    up = first @ params["up"] + params["up_bias"]
    hidden, cdf = gelu(up)
    out, norm2 = _norm_forward(
        first + hidden @ params["down"] + params["down_bias"], params["norm2.weight"], params["norm2.bias"], eps
    )
    cache = {
        "shape": (size, length, dim, heads, width, scale),
        "real": real,
        "rows": rows,
        "qkv": (query, key, value),
        "attention": attention,
        "context": context,
        "first": first,
        "norm1": norm1,
        "up": up,
        "hidden": hidden,
        "cdf": cdf,
        "norm2": norm2,
    }
    return _padded(out, real, size * length).reshape(size, length, dim), cache


def _packed(rows: np.ndarray, real: np.ndarray | None) -> np.ndarray:
    """The rows of the real tokens (all of them without a mask)."""
    return rows if real is None else rows[real]


def _padded(rows: np.ndarray, real: np.ndarray | None, count: int) -> np.ndarray:
    """`_packed`'s inverse: `count` rows, zero where a token is padding."""
    if real is None:
        return rows
    out = np.zeros((count, rows.shape[1]), dtype=rows.dtype)
    out[real] = rows
    return out


def layer_backward(grad_out: np.ndarray, cache: dict[str, Any], params: Params) -> Params:
    """The gradients of the layer's parameters, given the gradient of its output (batch, length, dim)."""
    size, length, dim, heads, width, scale = cache["shape"]
    real = cache["real"]
    grads: Params = {}
    grad, grads["norm2.weight"], grads["norm2.bias"] = _norm_backward(
        _packed(grad_out.reshape(-1, dim), real), cache["norm2"]
    )
    grads["down"] = cache["hidden"].T @ grad
    grads["down_bias"] = grad.sum(0)
    grad_up = grad @ params["down"].T
    grad_up *= gelu_slope(cache["up"], cache["cdf"])
    grads["up"] = cache["first"].T @ grad_up
    grads["up_bias"] = grad_up.sum(0)
    grad_first = grad + grad_up @ params["up"].T
    grad, grads["norm1.weight"], grads["norm1.bias"] = _norm_backward(grad_first, cache["norm1"])
    grads["out"] = cache["context"].T @ grad
    grads["out_bias"] = grad.sum(0)
    grad_context = _padded(grad @ params["out"].T, real, size * length)
    grad_context = grad_context.reshape(size, length, heads, width).transpose(0, 2, 1, 3)
    query, key, value = cache["qkv"]
    attention = cache["attention"]
    grad_value = attention.transpose(0, 1, 3, 2) @ grad_context
    grad_attention = grad_context @ value.transpose(0, 1, 3, 2)
    grad_scores = attention * (grad_attention - (grad_attention * attention).sum(-1, keepdims=True)) * scale
    grad_query = grad_scores @ key
    grad_key = grad_scores.transpose(0, 1, 3, 2) @ query
    grad_qkv = np.stack([grad_query, grad_key, grad_value]).transpose(1, 3, 0, 2, 4).reshape(size * length, 3 * dim)
    grad_qkv = _packed(grad_qkv, real)
    grads["qkv"] = cache["rows"].T @ grad_qkv
    grads["qkv_bias"] = grad_qkv.sum(0)
    return grads


# --- pooling -------------------------------------------------------------------------------------------------------


def pool_forward(out: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Mean over the real tokens, L2-normalised: the sentence vectors (batch, dim)."""
    counts = mask.sum(1, keepdims=True)
    mean = (out * mask[:, :, None]).sum(1) / counts
    norms = np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    vectors = mean / norms
    return vectors, (vectors, norms, mask, counts)


def pool_backward(grad: np.ndarray, cache: tuple) -> np.ndarray:
    vectors, norms, mask, counts = cache
    grad_mean = (grad - vectors * (grad * vectors).sum(1, keepdims=True)) / norms
    return (grad_mean / counts)[:, None, :] * mask[:, :, None]
