"""The pair-loss measurement's feed-forward form (bench/fewshot_pairloss.py): with the attention block frozen, its
step has the whole layer's loss and, for the feed-forward block, its gradients."""

from __future__ import annotations

import numpy as np
import pytest

from bench.fewshot_pairloss import ffn_inputs, ffn_step, tune_ffn
from encoder import last_layer
from encoder.last_layer import step_gradients
from tests.unit.test_last_layer import step_case


def test_the_feed_forward_step_has_the_full_steps_loss_and_gradients() -> None:
    states, labels, params, prototypes, encoding = step_case(4)
    loss, grads, _ = step_gradients(states, labels, params, prototypes, encoding, 5.0, loss="pairs")
    ffn_loss, ffn_grads = ffn_step(ffn_inputs(states, params, encoding), labels, params, encoding.eps)
    assert ffn_loss == pytest.approx(loss, rel=1e-9)
    assert set(ffn_grads) == {"up", "up_bias", "down", "down_bias", "norm2.weight", "norm2.bias"}
    for name, grad in ffn_grads.items():
        np.testing.assert_allclose(grad, grads[name], rtol=1e-7, atol=1e-12)


def test_the_feed_forward_form_refuses_strangers_it_would_ignore() -> None:
    states, _, params, _, encoding = step_case(4)
    layer = last_layer.nested(params)
    with pytest.raises(ValueError, match="takes no strangers"):
        tune_ffn(states, np.array([0, 1, 2, 0, 1, 2, 0]), layer, encoding, last_layer.PAIRS, states[:1])
