"""The few-shot calibration's fitting (bench/fewshot_calibrate.py) and the benchmark's reading of its config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.fewshot import FEWSHOT, LINEAR, pipeline
from bench.fewshot_calibrate import MORE, curve, left_out, size_line, top_features
from nlu.components.fewshot_intent import evidence

ROOT = Path(__file__).resolve().parents[2]
INTENTS = [f"intent_{i}" for i in range(150)]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("share", [0.0, 0.2, 0.5])
def test_a_seeded_share_of_the_intents_is_left_out(seed: int, share: float) -> None:
    out = left_out(INTENTS, share, seed)
    assert len(out) == round(share * len(INTENTS))
    assert out <= set(INTENTS)
    assert left_out(list(reversed(INTENTS)), share, seed) == out  # the order given does not matter


def test_seeds_leave_out_different_intents() -> None:
    assert left_out(INTENTS, 0.2, 0) != left_out(INTENTS, 0.2, 1)


def test_curve_on_a_small_example() -> None:
    logit = np.array([2.0, 0.5, -1.0, 1.0, -2.0])
    right = np.array([True, False, True, False, False])
    stranger = np.array([False, False, False, True, True])
    (row,) = curve(logit, right, stranger, np.array([0.0]))
    # Answered: 2.0 (right), 0.5 (wrong), 1.0 (a stranger); declined: -1.0 (a miss), -2.0 (a stranger).
    assert row == {"shift": 0.0, "accuracy": pytest.approx(1 / 3), "oos_recall": 0.5, "confident_wrong": 0.4}


def test_top_features_of_the_best_class() -> None:
    scores = np.array([[0.5, -0.25, 0.0]])
    cosines = np.array([[0.25, 0.75, 0.5]])
    extra = evidence(cosines, np.array([10, 10, 20]), centroid=np.array([[0.125, 0.5, 0.25]]))
    best, features = top_features(scores, extra, blend=1.0)
    # Blended: 0.75, 0.5, 0.5: the first class; its margin 0.25; its cosine 0.25, 0.5 behind the best other.
    assert best.tolist() == [0]
    np.testing.assert_allclose(features, [[0.75, 0.25, 0.25, -0.5, np.log(10.0)]])
    _, more = top_features(scores, extra, blend=1.0, names=MORE)
    # Its mean example's cosine; the nearest example does not agree; score and cosine times the log of 10.
    np.testing.assert_allclose(more, [[0.125, 0.0, 0.75 * np.log(10.0), 0.25 * np.log(10.0)]], rtol=1e-6)


def test_the_benchmark_reads_either_classifier() -> None:
    fewshot, fallback = pipeline(ROOT / "bench" / "configs" / "clinc150-fewshot.yml")
    assert fewshot["component"] == FEWSHOT
    assert fallback["threshold"] == 0.5
    linear, _ = pipeline(ROOT / "bench" / "configs" / "clinc150-minilm.yml")
    assert linear["component"] == LINEAR


def test_the_threshold_by_size_goes_through_each_sizes_own_point() -> None:
    # Strangers' logits: at k = 5 they sit higher (half of them at 1.0) than at k = 50 (half at -1.0).
    logit = np.array([1.0, -2.0, -1.0, -2.0, 3.0, 3.0])
    judged = np.array([True, True, True, True, False, False])
    sizes = np.array([5, 5, 50, 50, 5, 50])
    a, b = size_line(logit, judged, sizes, target=1.0, shifts=np.round(np.arange(-3, 3.001, 0.5), 1))
    # Each k's lowest threshold declining all its strangers: 1.5 at k = 5, -0.5 at k = 50; the line through both.
    assert a + b * np.log(5) == pytest.approx(1.5)
    assert a + b * np.log(50) == pytest.approx(-0.5)
    assert size_line(logit, judged, np.full(6, 10), 1.0, np.array([0.0, 1.5])) == (1.5, 0.0)
