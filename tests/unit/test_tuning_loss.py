"""SetFit's pair loss and the supervised contrastive loss in the last layer's tuning (encoder/tuning_loss.py,
encoder/last_layer.py): their gradients are their slopes, a step in chunks (forward passes kept or run again) has the
gradients of one batch, and tuning with the pair loss learns the intents and pushes strangers away."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from encoder import last_layer
from encoder.last_layer import PAIRS, Encoding
from encoder.sentence_encoder import SentenceEncoder
from encoder.tuned import Frozen
from encoder.tuning_loss import contrastive_loss, pair_loss
from tests.unit.test_last_layer import DIM, TOY, random_layer, step_case, toy
from tests.unit.test_sentence_encoder import tiny_dir  # noqa: F401  (fixture)


@pytest.mark.parametrize(
    "loss", [pair_loss, lambda v, labels: contrastive_loss(v, labels, 3.0)], ids=["pairs", "contrastive"]
)
def test_the_coupled_losss_gradient_is_its_slope(loss: Callable) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 5))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array([0, 0, 1, 1, 2, -1, -1])
    _, grad = loss(vectors, labels)
    slopes = np.zeros_like(vectors)
    for i, j in np.ndindex(*vectors.shape):
        step = np.zeros_like(vectors)
        step[i, j] = 1e-6
        slopes[i, j] = (loss(vectors + step, labels)[0] - loss(vectors - step, labels)[0]) / 2e-6
    np.testing.assert_allclose(grad, slopes, atol=1e-8)


def test_the_contrastive_loss_by_hand() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # anchor 0: its partner 1 at cosine 0 against the stranger at 1; anchor 1: partner and stranger both at 0
    found = contrastive_loss(vectors, np.array([0, 0, -1]), 1.0)[0]
    assert found == pytest.approx((math.log(1 + math.e) + math.log(2)) / 2)
    assert contrastive_loss(vectors, np.array([0, 1, -1]), 1.0)[0] == 0.0  # no anchor: nothing to learn
    with np.errstate(all="raise"):  # one row: no anchor, and no softmax over nothing
        loss, grad = contrastive_loss(vectors[:1], np.array([0]), 1.0)
    assert loss == 0.0 and not grad.any()


def test_the_pair_loss_by_hand() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # pairs (0,1) same intent at cosine 0: 1; (0,2) strangers apart at cosine 1: 1; (1,2) at 0: 0; each twice of 6
    assert pair_loss(vectors, np.array([0, 0, -1]))[0] == pytest.approx(4 / 6)
    assert pair_loss(vectors[:1], np.array([0]))[0] == 0.0  # one row: no pair


@pytest.mark.parametrize("loss", ["pairs", "contrastive"])
@pytest.mark.parametrize("kept", [0, 1, 2, 99], ids=lambda kept: f"kept {kept}")
def test_a_coupled_step_in_chunks_has_the_gradients_of_one_batch(
    kept: int, loss: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    states, labels, params, prototypes, encoding = step_case(2)
    whole = last_layer.step_gradients(states, labels, params, prototypes, encoding, 5.0, 10**9, loss=loss)
    monkeypatch.setattr(last_layer, "KEPT_CHUNKS", kept)
    chunked = last_layer.step_gradients(states, labels, params, prototypes, encoding, 5.0, 8, loss=loss)
    assert len(last_layer.chunks(states, 8)) > 2
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)
    assert set(chunked[1]) == set(params)
    for name, grad in whole[1].items():
        np.testing.assert_allclose(chunked[1][name], grad, rtol=1e-9, atol=1e-12)
    assert not chunked[2].any()  # neither loss has prototypes


@pytest.mark.parametrize("loss", ["pairs", "contrastive"])
def test_the_coupled_steps_gradient_is_the_losss_slope(loss: str) -> None:
    rng = np.random.default_rng(3)
    params = random_layer(rng)
    states = [rng.normal(0, 1, (n, DIM)) for n in (5, 3, 4, 2)]
    labels, prototypes = np.array([0, 1, 0, -1]), np.zeros((2, DIM))
    encoding = Encoding(2, 1e-5)

    def value() -> float:
        return last_layer.step_gradients(states, labels, params, prototypes, encoding, 5.0, 8, loss=loss)[0]

    _, grads, _ = last_layer.step_gradients(states, labels, params, prototypes, encoding, 5.0, 8, loss=loss)
    for name in ("qkv", "down_bias", "norm1.weight"):
        flat = params[name].reshape(-1)
        for index in rng.choice(flat.size, 3, replace=False):
            saved = flat[index]
            flat[index] = saved + 1e-6
            up = value()
            flat[index] = saved - 1e-6
            down = value()
            flat[index] = saved
            assert grads[name].reshape(-1)[index] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-9)


def test_an_unknown_loss_is_refused() -> None:
    states, labels, params, prototypes, encoding = step_case(2)
    with pytest.raises(ValueError, match="unknown loss 'triplet'"):
        last_layer.step_gradients(states, labels, params, prototypes, encoding, 5.0, loss="triplet")


def test_tuning_with_pairs_learns_the_intents_and_pushes_strangers_away(tiny_dir: Path) -> None:  # noqa: F811
    encoder = SentenceEncoder.load(tiny_dir, heads=2, backend="numpy")
    examples = {intent: TOY[intent] for intent in (0, 1, 2)}
    texts, labels = toy(examples)
    frozen = Frozen(encoder)
    states, strangers = frozen.states(texts), frozen.states(TOY[3])  # the fourth intent's examples as strangers
    encoding = last_layer.encoding_of(encoder)
    settings = last_layer.Settings(loss="pairs", epochs=40, lr=1e-2, intents=3)
    tuned, losses = last_layer.tune(states, labels, encoder.layers[-1], encoding, settings, strangers)
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    vectors = last_layer.embed(states + strangers, last_layer.flat(tuned), encoding)
    centroids = np.vstack([vectors[:9][labels == c].mean(0) for c in examples])
    assert ((vectors[:9] @ centroids.T).argmax(1) == labels).all()
    plain, _ = last_layer.tune(states, labels, encoder.layers[-1], encoding, settings)
    untouched = last_layer.embed(states + strangers, last_layer.flat(plain), encoding)
    assert (vectors[9:] @ vectors[:9].T).max(1).mean() < (untouched[9:] @ untouched[:9].T).max(1).mean()
    assert PAIRS.loss == "pairs" and PAIRS.epochs == 4 and PAIRS.lr == 3e-4  # the recipe measured on CLINC150
