"""The losses a last layer is tuned with (`encoder.last_layer`), on a step's L2-normalised sentence vectors.

- `proto_loss`, the shipped one: a softmax over learnable cosine prototypes; strangers (label -1) pulled towards a
  uniform softmax or their energy pushed down (outlier exposure).
- `pair_loss`, SetFit's: every pair of the step's vectors pulled to cosine 1 when both are of one intent and to 0
  otherwise (a stranger is of no intent). It couples every row to every other, so a step in chunks runs its forward
  passes first (`last_layer.step_gradients`).
- `contrastive_loss`, the supervised contrastive loss (Khosla et al., 2020): each example's softmax over every other
  example of the step, at `scale` x their cosines, pulled towards those of its own intent. It couples rows as the
  pair loss does.

Measured in docs/understanding.md ("SetFit's pair loss in the numpy tuning", "A supervised contrastive loss");
gradients checked against finite differences in tests/unit/test_last_layer.py and tests/unit/test_tuning_loss.py.
"""

from __future__ import annotations

import numpy as np

LOSSES = ("proto", "pairs", "contrastive")
COUPLED = ("pairs", "contrastive")  # losses that couple every row of a step to every other


def proto_loss(
    vectors: np.ndarray,
    labels: np.ndarray,
    prototypes: np.ndarray,
    scale: float,
    background: str = "uniform",
    weight: float = 1.0,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Cross-entropy of `scale` x the cosines to every (normalised) prototype, averaged over the rows: the loss, and
    its gradients by the vectors and by the prototypes. A row labelled -1 is a stranger: `background` "uniform" is
    the cross-entropy of its softmax against the uniform distribution, "energy" the log-sum-exp of its logits over
    the scale; either weighs `weight`."""
    lengths = np.linalg.norm(prototypes, axis=1, keepdims=True)
    unit = prototypes / lengths
    logits = scale * vectors @ unit.T
    top = logits.max(1, keepdims=True)
    probabilities = np.exp(logits - top)
    sums = probabilities.sum(1, keepdims=True)
    probabilities /= sums
    known = np.flatnonzero(labels >= 0)
    strangers = np.flatnonzero(labels < 0)
    total = float(-np.log(probabilities[known, labels[known]] + 1e-30).sum())
    grad_logits = probabilities.copy()
    grad_logits[known, labels[known]] -= 1.0
    if len(strangers):
        log_sum = (top + np.log(sums))[strangers, 0]
        if background == "uniform":
            total += weight * float((log_sum - logits[strangers].mean(1)).sum())
            grad_logits[strangers] = weight * (probabilities[strangers] - 1.0 / logits.shape[1])
        elif background == "energy":
            total += weight * float(log_sum.sum()) / scale
            grad_logits[strangers] = weight * probabilities[strangers] / scale
        else:
            raise ValueError(f"unknown background loss {background!r}")
    grad_logits /= len(labels)
    grad_unit = scale * grad_logits.T @ vectors
    grad_prototypes = (grad_unit - unit * (grad_unit * unit).sum(1, keepdims=True)) / lengths
    return total / len(labels), scale * grad_logits @ unit, grad_prototypes


def pair_loss(vectors: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean over ordered pairs of (cosine - same intent)², and its gradient by the (unit) vectors."""
    labels = np.asarray(labels)
    same = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
    gap = vectors @ vectors.T - same
    np.fill_diagonal(gap, 0.0)
    pairs = max(len(vectors) * (len(vectors) - 1), 1)
    return float((gap**2).sum() / pairs), 4.0 * gap @ vectors / pairs


def contrastive_loss(vectors: np.ndarray, labels: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
    """The supervised contrastive loss of the (unit) vectors and its gradient by them: for each row with another row
    of its intent (an anchor), the mean over those of -log softmax(`scale` x cosine) over every other row; the mean
    over anchors. A stranger (-1) is an anchor of nothing and weighs against every anchor."""
    labels = np.asarray(labels)
    positive = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
    np.fill_diagonal(positive, False)
    counts = positive.sum(1)
    anchors = np.flatnonzero(counts)
    if len(anchors) == 0:  # one row, or no intent twice: nothing to pull together
        return 0.0, np.zeros_like(vectors)
    logits = scale * vectors @ vectors.T
    np.fill_diagonal(logits, -np.inf)
    top = logits.max(1, keepdims=True)
    probabilities = np.exp(logits - top)
    sums = probabilities.sum(1, keepdims=True)
    probabilities /= sums
    log_softmax = np.where(positive, logits - top - np.log(sums), 0.0)
    loss = float(-(log_softmax[anchors].sum(1) / counts[anchors]).mean())
    grad_logits = np.zeros_like(logits)
    grad_logits[anchors] = probabilities[anchors] - positive[anchors] / counts[anchors, None]
    grad_logits /= len(anchors)
    return loss, scale * (grad_logits + grad_logits.T) @ vectors
