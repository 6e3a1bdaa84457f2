"""torch.optim.AdamW's step in numpy, for the last layer's tuning (`encoder.last_layer`); checked against the
formula in tests/unit/test_last_layer.py."""

from __future__ import annotations

import math

import numpy as np

Params = dict[str, np.ndarray]


class AdamW:
    """torch.optim.AdamW's step (betas 0.9 / 0.999, eps 1e-8, decoupled weight decay) over named arrays."""

    def __init__(self, rates: dict[str, float], weight_decay: float) -> None:
        self.rates, self.weight_decay, self.steps = rates, weight_decay, 0
        self.first: Params = {}
        self.second: Params = {}

    def step(self, params: Params, grads: Params) -> None:
        self.steps += 1
        correction1 = 1.0 - 0.9**self.steps
        correction2 = math.sqrt(1.0 - 0.999**self.steps)
        for name, grad in grads.items():
            rate = self.rates[name]
            first = self.first.setdefault(name, np.zeros_like(grad))
            second = self.second.setdefault(name, np.zeros_like(grad))
            first *= 0.9
            first += 0.1 * grad
            second *= 0.999
            second += 0.001 * grad * grad
            params[name] *= 1.0 - rate * self.weight_decay
            params[name] -= (rate / correction1) * first / (np.sqrt(second) / correction2 + 1e-8)
