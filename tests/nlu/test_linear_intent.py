"""LinearIntentClassifier: trains, persists as arrays and JSON, loads, and reports a confidence around `center`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.linear_intent import META_FILE, WEIGHTS_FILE, LinearIntentClassifier
from tests.unit.test_sentence_encoder import tiny_dir  # noqa: F401  (fixture)

EXAMPLES = {
    "greet": ["hello", "hi there", "good morning", "hey", "hello, anyone there?", "hi, good afternoon"],
    "track": [
        "where is my order",
        "my parcel has not arrived",
        "track my package",
        "where's my delivery",
        "when will my order arrive",
        "has my parcel shipped yet",
    ],
    "refund": [
        "i want my money back",
        "can i get a refund",
        "refund my order please",
        "how do refunds work",
        "money back for a broken item",
        "please refund me",
    ],
}


def training_data() -> TrainingData:
    return TrainingData([Message.build(text=t, intent=i) for i, texts in EXAMPLES.items() for t in texts])


def make(storage: LocalModelStorage, cls: type = LinearIntentClassifier, **config) -> LinearIntentClassifier:
    return cls.create(
        {**cls.get_default_config(), "char_min_df": 1, **config},
        storage,
        Resource("linear"),
        ExecutionContext(GraphSchema({}), "test"),
    )


def load(storage: LocalModelStorage, cls: type = LinearIntentClassifier, **config) -> LinearIntentClassifier:
    return cls.load(
        {**cls.get_default_config(), **config},
        storage,
        Resource("linear"),
        ExecutionContext(GraphSchema({}), "test"),
    )


def predict(component: LinearIntentClassifier, text: str) -> Message:
    message = Message({TEXT: text})
    component.process([message])
    return message


@pytest.fixture()
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


def test_trains_persists_and_loads_the_same_model(storage: LocalModelStorage) -> None:
    trained = make(storage)
    trained.train(training_data())
    loaded = load(storage)
    texts = ["hello there", "where is my parcel", "i'd like a refund", "zzz qqq"]
    np.testing.assert_allclose(loaded.scores(texts), trained.scores(texts), rtol=1e-5, atol=1e-6)
    assert [predict(loaded, t).get(INTENT)["name"] for t in texts[:3]] == ["greet", "track", "refund"]
    with storage.read_from(Resource("linear")) as directory:
        assert sorted(p.name for p in Path(directory).iterdir()) == sorted([META_FILE, WEIGHTS_FILE])


def test_ranking_is_sorted_and_confidence_is_half_at_center(storage: LocalModelStorage) -> None:
    component = make(storage, center=0.25, slope=4.0)
    component.train(training_data())
    message = predict(component, "where is my order")
    ranking = message.get(INTENT_RANKING_KEY)
    assert next(r["name"] for r in ranking) == "track" == message.get(INTENT)["name"]
    assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking), reverse=True)
    assert component.confidence(np.array([0.25]))[0] == pytest.approx(0.5)
    assert component.confidence(np.array([1.0]))[0] > 0.9


def test_unrelated_text_scores_lower_than_a_paraphrase(storage: LocalModelStorage) -> None:
    component = make(storage)
    component.train(training_data())
    paraphrase, unrelated = component.scores(["where has my parcel got to", "the quantum theory of gravity"]).max(
        axis=1
    )
    assert paraphrase > unrelated


def test_with_a_sentence_encoder(storage: LocalModelStorage, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from encoder.sentence_encoder import SentenceEncoder
    from nlu.components import linear_features

    monkeypatch.setattr(
        linear_features.Encoders, "loaded", {str(tiny_dir.resolve()): SentenceEncoder.load(tiny_dir, heads=2)}
    )
    component = make(storage, encoder=str(tiny_dir))
    component.train(training_data())
    assert component.coef.shape[1] == sum(len(v.vocabulary_) for v in component.vectorizers) + 8
    loaded = load(storage, encoder=str(tiny_dir))
    assert predict(loaded, "can i get a refund").get(INTENT)["name"] == "refund"


def test_without_training_it_predicts_nothing(storage: LocalModelStorage) -> None:
    component = load(storage)
    assert predict(component, "hello").get(INTENT) is None


def test_calibrated_logit_weighs_score_margin_and_neighbour() -> None:
    from nlu.components.linear_features import calibrated_logit

    scores = np.array([[1.0, 0.2, -0.5], [0.3, 0.3, -1.0]])
    logit = calibrated_logit(scores, None, {"bias": -1.0, "score": 2.0, "margin": 3.0})
    # best class: margin over the second; others: (negative) margin under the best
    np.testing.assert_allclose(logit[0], [-1 + 2 * 1.0 + 3 * 0.8, -1 + 2 * 0.2 - 3 * 0.8, -1 - 2 * 0.5 - 3 * 1.5])
    np.testing.assert_allclose(logit[1, :2], [-1 + 2 * 0.3, -1 + 2 * 0.3])  # a tie: no margin for either
    near = np.array([[0.9, 0.1, 0.0], [0.0, 0.0, 0.0]])
    with_near = calibrated_logit(scores, {"neighbour": near, "distance": near}, {"neighbour": 2.0, "distance": -1.0})
    np.testing.assert_allclose(with_near[0], [0.9, 0.1, 0.0])
    assert calibrated_logit(scores, {"neighbour": near}, {"neighbour": 0.0}).sum() == 0.0


def test_a_close_second_lowers_the_calibrated_confidence(storage: LocalModelStorage) -> None:
    component = make(storage, calibration={"bias": 0.0, "score": 4.0, "margin": 4.0})
    component.train(training_data())
    clear, mixed = component.scores(["where is my order", "hello, where is my refund"])
    confidence = component.confidence(np.vstack([clear, mixed]))
    assert confidence[0].max() > confidence[1].max()
    assert confidence[0].argmax() == clear.argmax()


def test_neighbour_calibration_keeps_the_examples_embeddings(
    storage: LocalModelStorage,
    tiny_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from encoder.sentence_encoder import SentenceEncoder
    from nlu.components import linear_features

    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    monkeypatch.setattr(linear_features.Encoders, "loaded", {str(tiny_dir.resolve()): encoder})
    calibration = {"bias": -1.0, "score": 2.0, "margin": 1.0, "neighbour": 3.0}
    component = make(storage, encoder=str(tiny_dir), calibration=calibration)
    component.train(training_data())
    assert component.neighbour_embeddings.shape == (18, 8)
    near = component.neighbours(["track my package", "hello"])
    # An example seen in training is its own nearest neighbour.
    assert near[0, component.classes.index("track")] == pytest.approx(1.0, abs=1e-3)
    expected = encoder.encode(["hello"]) @ encoder.encode(EXAMPLES["refund"]).T
    assert near[1, component.classes.index("refund")] == pytest.approx(expected.max(), abs=1e-3)
    loaded = load(storage, encoder=str(tiny_dir), calibration=calibration)
    np.testing.assert_allclose(loaded.neighbours(["hello"]), near[1:], atol=1e-6)
    assert predict(loaded, "track my package").get(INTENT)["name"] == "track"


def test_distance_calibration_keeps_class_means_and_a_shared_precision(
    storage: LocalModelStorage,
    tiny_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from encoder.sentence_encoder import SentenceEncoder
    from nlu.components import linear_features

    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    monkeypatch.setattr(linear_features.Encoders, "loaded", {str(tiny_dir.resolve()): encoder})
    calibration = {"bias": 1.0, "score": 1.0, "margin": 1.0, "distance": -2.0}
    component = make(storage, encoder=str(tiny_dir), calibration=calibration)
    data = training_data()
    unrelated = ["the weather on mars", "a poem about cats", "who won the match"]
    data = data.merge(TrainingData([Message.build(text=t, intent="out_of_scope") for t in unrelated]))
    component.train(data)
    assert component.distance_in_scope.tolist() == [name != "out_of_scope" for name in component.classes]
    texts = ["track my package", "hello there"]
    distances = component.distances(texts)
    # The squared Mahalanobis distance per dimension, computed the plain way.
    embedding = encoder.encode(texts[:1])[0]
    k = component.classes.index("track")
    difference = embedding - component.distance_means[k]
    assert distances[0, k] == pytest.approx(difference @ component.distance_precision @ difference / 8, rel=1e-3)
    # out_of_scope has no topic to be near: the distance to the nearest in-scope class.
    oos = component.classes.index("out_of_scope")
    assert distances[0, oos] == pytest.approx(np.delete(distances[0], oos).min())
    loaded = load(storage, encoder=str(tiny_dir), calibration=calibration)
    np.testing.assert_allclose(loaded.distances(texts), distances, rtol=1e-5, atol=1e-5)
    # The calibrated confidence takes the distance in: farther from the class, less sure.
    scores = component.scores(texts)
    nearer = component.confidence(scores, {"distance": distances})
    farther = component.confidence(scores, {"distance": distances + 1.0})
    assert (farther < nearer).all()
