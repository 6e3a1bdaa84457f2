"""FewShotIntentClassifier's parts: the nearest-example evidence, the blend, the shipped calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rasa.shared.nlu.constants import INTENT

from nlu.components import fewshot_intent as fewshot
from nlu.components.linear_features import calibrated_logit
from nlu.components.linear_intent import LinearIntentClassifier
from tests.nlu.test_linear_intent import load, make, predict, training_data
from tests.unit.test_sentence_encoder import tiny_dir  # noqa: F401  (fixture)


def test_margins_are_each_class_minus_the_best_other() -> None:
    values = np.array([[0.2, 0.9, 0.5], [0.1, 0.1, -0.3]])
    np.testing.assert_allclose(fewshot.margins(values), [[-0.7, 0.4, -0.4], [0.0, 0.0, -0.4]])


def test_one_class_has_no_margin() -> None:
    np.testing.assert_array_equal(fewshot.margins(np.array([[0.7], [0.1]])), [[0.0], [0.0]])


def test_blend_adds_the_weighted_cosine() -> None:
    scores = np.array([[-0.5, 0.25]], dtype=np.float32)
    cosines = np.array([[0.5, 0.25]], dtype=np.float32)
    np.testing.assert_allclose(fewshot.blend(scores, cosines, 2.0), [[0.5, 0.75]])
    assert fewshot.blend(scores, None, 2.0) is scores
    assert fewshot.blend(scores, cosines, 0.0) is scores


def test_evidence_is_the_cosine_and_its_margin() -> None:
    found = fewshot.evidence(np.array([[0.8, 0.6]]))
    np.testing.assert_allclose(found["neighbour"], [[0.8, 0.6]])
    np.testing.assert_allclose(found["neighbour_margin"], [[0.2, -0.2]])
    assert fewshot.evidence(None) == {}


def test_the_calibration_weighs_the_cosine_margin() -> None:
    scores = np.array([[0.0, 1.0]])
    extra = fewshot.evidence(np.array([[0.5, 0.75]]))
    logit = calibrated_logit(scores, extra, {"bias": -1.0, "score": 2.0, "neighbour_margin": 4.0})
    np.testing.assert_allclose(logit, [[-1.0 + 0.0 - 1.0, -1.0 + 2.0 + 1.0]])


def test_the_shipped_calibration_is_plain_json_fit_elsewhere() -> None:
    shipped = json.loads(fewshot.SHIPPED_CALIBRATION.read_text())
    assert "CLINC150" in shipped["fit_on"]
    loaded = fewshot.shipped_calibration()
    assert set(loaded["weights"]) <= {"bias", "score", "margin", "neighbour", "neighbour_margin", "log_examples"}
    assert loaded["neighbour_blend"] >= 0


def test_each_encoder_gets_the_calibration_fit_with_its_embeddings() -> None:
    mpnet = fewshot.calibration_for("var/encoders/all-mpnet-base-v2")
    assert mpnet.name == "fewshot_calibration.all-mpnet-base-v2.json.txt"
    fit = json.loads(mpnet.read_text())
    assert "CLINC150" in fit["fit_on"] and "--encoder var/encoders/all-mpnet-base-v2" in fit["command"]
    assert fewshot.shipped_calibration(mpnet)["weights"] != fewshot.shipped_calibration()["weights"]
    # MiniLM's, and any encoder without a calibration of its own, get the one shipped first.
    assert fewshot.calibration_for("var/encoders/all-MiniLM-L6-v2") == fewshot.SHIPPED_CALIBRATION
    assert fewshot.calibration_for("elsewhere/some-encoder") == fewshot.SHIPPED_CALIBRATION
    # Where bench.fewshot_calibrate --write puts each: MiniLM's in the first file, another encoder's in its own.
    assert (
        fewshot.calibration_file(None)
        == fewshot.calibration_file(fewshot.DEFAULT_ENCODER)
        == fewshot.SHIPPED_CALIBRATION
    )
    assert fewshot.calibration_file("elsewhere/some-encoder").name == "fewshot_calibration.some-encoder.json.txt"
    assert fewshot.calibration_for(None) == fewshot.SHIPPED_CALIBRATION


def test_the_classifier_weighs_with_its_encoders_calibration(tmp_path: Path) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    directory = "var/encoders/all-mpnet-base-v2"  # named only: nothing is encoded here
    component = make(LocalModelStorage(tmp_path), fewshot.FewShotIntentClassifier, encoder=directory)
    assert component._calibration() == fewshot.shipped_calibration(fewshot.calibration_for(directory))["weights"]
    assert component._calibration() != fewshot.shipped_calibration()["weights"]


def test_a_calibration_file_is_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json.txt"
    path.write_text(json.dumps({"neighbour_blend": 1.5, "weights": {"bias": -2, "neighbour": 8.25}}))
    assert fewshot.shipped_calibration(path) == {
        "weights": {"bias": -2.0, "neighbour": 8.25},
        "neighbour_blend": 1.5,
    }


def random_matrices(count: int = 300) -> list[np.ndarray]:
    """Seeded random score matrices, 1-5 rows and 2-6 classes, ties included (.venv-rasa has no hypothesis)."""
    rng = np.random.default_rng(18)
    found = []
    for _ in range(count):
        shape = (int(rng.integers(1, 6)), int(rng.integers(2, 7)))
        values = rng.uniform(-5, 5, shape)
        if rng.random() < 0.3:  # ties: rounded to a coarse grid
            values = np.round(values)
        found.append(values)
    return found


@pytest.mark.parametrize("values", random_matrices())
def test_only_the_best_class_has_a_positive_margin(values: np.ndarray) -> None:
    """The margin is the best class's lead over the second (never negative); every other class is behind."""
    found = fewshot.margins(values)
    rows = np.arange(len(values))
    best = values.argmax(axis=1)
    ordered = np.sort(values, axis=1)
    np.testing.assert_allclose(found[rows, best], ordered[:, -1] - ordered[:, -2])
    others = np.ones_like(values, dtype=bool)
    others[rows, best] = False
    assert (found[others] <= 0).all()


@pytest.mark.parametrize(("values", "weight"), zip(random_matrices(100), np.linspace(0.0, 4.0, 100)))
def test_with_equal_scores_the_nearer_example_ranks_first(values: np.ndarray, weight: float) -> None:
    """With equal SVM scores, the blend ranks first the class with the nearest example."""
    same = np.repeat(values[:, :1], values.shape[1], axis=1)
    cosines = np.clip(values / 5.0, -1, 1) + np.arange(values.shape[1]) * 1e-6  # no ties
    blended = fewshot.blend(same, cosines, weight)
    if weight > 0:
        assert (blended.argmax(axis=1) == cosines.argmax(axis=1)).all()
    else:
        np.testing.assert_array_equal(blended, same)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_blend_keeps_the_shape(weight: float) -> None:
    scores = np.zeros((3, 4))
    assert fewshot.blend(scores, np.ones((3, 4)), weight).shape == (3, 4)


def test_class_counts_follow_the_first_rows() -> None:
    np.testing.assert_array_equal(fewshot.class_counts(np.array([0, 2, 7]), 10), [2, 5, 3])


def test_evidence_carries_the_log_of_each_class_size() -> None:
    found = fewshot.evidence(np.array([[0.5, 0.25], [0.0, 1.0]]), np.array([1, 20]))
    np.testing.assert_allclose(found["log_examples"], [[0.0, np.log(20)], [0.0, np.log(20)]])


def test_trains_with_the_shipped_calibration_and_loads_the_same(
    tmp_path: Path,
    tiny_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    from encoder.sentence_encoder import SentenceEncoder
    from nlu.components import linear_features

    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    monkeypatch.setattr(linear_features.Encoders, "loaded", {str(tiny_dir.resolve()): encoder})
    storage = LocalModelStorage(tmp_path)
    component = make(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir))
    component.train(training_data())
    texts = ["track my package", "hello", "is it raining in paris"]
    shipped = fewshot.shipped_calibration()
    linear = LinearIntentClassifier.scores(component, texts)
    cosines = component.neighbours(texts)
    # The ranking is the SVM score plus the shipped blend of the nearest-example cosine...
    np.testing.assert_allclose(component.scores(texts), linear + shipped["neighbour_blend"] * cosines, rtol=1e-5)
    # ...and the confidence the shipped calibration of it, with 6 examples a class.
    extra = component.extra_features(texts)
    np.testing.assert_allclose(extra["log_examples"], np.log(6.0), rtol=1e-6)
    expected = 1 / (1 + np.exp(-calibrated_logit(component.scores(texts), extra, shipped["weights"])))
    np.testing.assert_allclose(component.confidence(component.scores(texts), extra), expected, rtol=1e-5)
    loaded = load(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir))
    np.testing.assert_allclose(loaded.scores(texts), component.scores(texts), rtol=1e-5)
    message = predict(loaded, "track my package")
    assert message.get(INTENT)["name"] == "track"
    assert message.get(INTENT)["confidence"] == pytest.approx(float(expected[0].max()), rel=1e-5)


def test_weights_in_the_config_replace_the_shipped_ones(
    tmp_path: Path,
    tiny_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    from encoder.sentence_encoder import SentenceEncoder
    from nlu.components import linear_features

    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    monkeypatch.setattr(linear_features.Encoders, "loaded", {str(tiny_dir.resolve()): encoder})
    component = make(
        LocalModelStorage(tmp_path),
        fewshot.FewShotIntentClassifier,
        encoder=str(tiny_dir),
        calibration={"bias": 0.0},
        neighbour_blend=0.0,
    )
    component.train(training_data())
    texts = ["hello"]
    np.testing.assert_allclose(component.scores(texts), LinearIntentClassifier.scores(component, texts))
    np.testing.assert_allclose(component.confidence(component.scores(texts), component.extra_features(texts)), 0.5)


def test_centroids_are_the_normalised_mean_of_each_class() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]], dtype=np.float16)
    np.testing.assert_allclose(fewshot.centroids(embeddings, np.array([0, 2])), [[0.5**0.5, 0.5**0.5], [0.0, 1.0]])


def test_derived_features_agreement_and_products_with_the_class_size() -> None:
    scores = np.array([[1.0, 0.5, 0.0], [1.0, 0.5, 0.0]])
    extra = fewshot.evidence(np.array([[0.9, 0.2, 0.1], [0.2, 0.9, 0.1]]), np.array([5, 5, 20]))
    found = fewshot.derived(scores, extra)
    # The first message's best score and nearest example agree; the second's do not (no class leads on both).
    np.testing.assert_array_equal(found["agree"], [[1, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(found["score_log_examples"], scores * np.log([5, 5, 20]))
    np.testing.assert_allclose(found["neighbour_log_examples"], extra["neighbour"] * np.log([5, 5, 20]))
    assert fewshot.derived(scores, {}) == {}


def test_a_mistyped_message_is_read_as_its_training_words(
    tmp_path: Path,
    tiny_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    from encoder.sentence_encoder import SentenceEncoder
    from nlu.components import linear_features

    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    monkeypatch.setattr(linear_features.Encoders, "loaded", {str(tiny_dir.resolve()): encoder})
    storage = LocalModelStorage(tmp_path)
    component = make(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir))
    component.train(training_data())
    assert component.spelled(["trakc my pakcage pls", "rfund"]) == ["track my package pls", "refund"]
    typo, right = ["trakc my pakcage"], ["track my package"]
    np.testing.assert_allclose(component.scores(typo), component.scores(right), rtol=1e-6)
    np.testing.assert_allclose(
        component.extra_features(typo)["neighbour"], component.extra_features(right)["neighbour"]
    )
    loaded = load(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir))
    assert loaded.spelled(typo) == right  # the bot's own words are in the model
    (tmp_path / "off").mkdir()
    off = make(
        LocalModelStorage(tmp_path / "off"), fewshot.FewShotIntentClassifier, encoder=str(tiny_dir), spelling=False
    )
    off.train(training_data())
    assert off.spelled(typo) == typo
