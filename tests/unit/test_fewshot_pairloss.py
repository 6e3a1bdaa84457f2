"""The pair-loss measurement (bench/fewshot_pairloss.py): its gradients are the loss's slopes, and a step in chunks
has the gradients of one batch."""

from __future__ import annotations

import numpy as np
import pytest

from bench.fewshot_pairloss import pair_loss, step_gradients
from encoder.last_layer import Encoding
from tests.unit.test_last_layer import DIM, random_layer, step_case


def test_the_pair_gradient_is_the_losss_slope() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 5))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array([0, 0, 1, 1, 2, -1, -1])
    _, grad = pair_loss(vectors, labels)
    slopes = np.zeros_like(vectors)
    for i, j in np.ndindex(*vectors.shape):
        step = np.zeros_like(vectors)
        step[i, j] = 1e-6
        slopes[i, j] = (pair_loss(vectors + step, labels)[0] - pair_loss(vectors - step, labels)[0]) / 2e-6
    np.testing.assert_allclose(grad, slopes, atol=1e-8)


def test_the_pair_loss_by_hand() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # pairs (0,1) same intent at cosine 0: 1; (0,2) strangers apart at cosine 1: 1; (1,2) at 0: 0; each twice of 6
    assert pair_loss(vectors, np.array([0, 0, -1]))[0] == pytest.approx(4 / 6)


def test_a_pair_step_in_chunks_has_the_gradients_of_one_batch() -> None:
    states, labels, params, prototypes, encoding = step_case(2)
    whole = step_gradients(states, labels, params, prototypes, encoding, 5.0, 10**9)
    chunked = step_gradients(states, labels, params, prototypes, encoding, 5.0, 8)
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)
    for name, grad in whole[1].items():
        np.testing.assert_allclose(chunked[1][name], grad, rtol=1e-9, atol=1e-12)


def test_the_step_gradient_is_the_losss_slope() -> None:
    rng = np.random.default_rng(3)
    params = random_layer(rng)
    states = [rng.normal(0, 1, (n, DIM)) for n in (5, 3, 4, 2)]
    labels, prototypes = np.array([0, 1, 0, -1]), np.zeros((2, DIM))
    encoding = Encoding(2, 1e-5)
    _, grads, _ = step_gradients(states, labels, params, prototypes, encoding, 5.0)
    for name in ("qkv", "down_bias", "norm1.weight"):
        flat = params[name].reshape(-1)
        for index in rng.choice(flat.size, 3, replace=False):
            saved = flat[index]
            flat[index] = saved + 1e-6
            up = step_gradients(states, labels, params, prototypes, encoding, 5.0)[0]
            flat[index] = saved - 1e-6
            down = step_gradients(states, labels, params, prototypes, encoding, 5.0)[0]
            flat[index] = saved
            assert grads[name].reshape(-1)[index] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-9)
