"""FewShotIntentClassifier with `tune_last_layer`: the encoder's last layer tuned on the examples, persisted with the
model and read back, its own calibration file, and the shared frozen encoder left as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasa.shared.nlu.constants import INTENT

from encoder import last_layer
from encoder.sentence_encoder import SentenceEncoder
from encoder.tuned import Frozen, TunedEncoder
from nlu.components import fewshot_intent as fewshot
from tests.nlu.test_linear_intent import EXAMPLES, load, make, predict, training_data
from tests.unit.test_sentence_encoder import tiny_dir  # noqa: F401  (fixture)

TEXTS = ["track my package", "hello", "is it raining in paris", "where is my order"]


def tuning(storage: Any, tiny_dir: Path, **options: Any) -> fewshot.FewShotIntentClassifier:  # noqa: F811
    """A few-shot classifier on the tiny encoder that tunes its last layer, with `options`."""
    return make(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir), tune_last_layer=True, **options)


@pytest.fixture()
def frozen(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Frozen:  # noqa: F811
    shared = Frozen(SentenceEncoder.load(tiny_dir, heads=2, backend="numpy"))
    monkeypatch.setattr(Frozen, "loaded", {str(tiny_dir.resolve()): shared})
    return shared


def test_tuned_embeddings_have_their_own_calibration_file() -> None:
    mpnet = "var/encoders/all-mpnet-base-v2"
    tuned = fewshot.calibration_file(mpnet, tuned=True)
    assert tuned.name == "fewshot_calibration.all-mpnet-base-v2.tuned.json.txt"
    assert fewshot.calibration_file(fewshot.DEFAULT_ENCODER, tuned=True).name == (
        "fewshot_calibration.all-MiniLM-L6-v2.tuned.json.txt"
    )
    # Until one is fit for tuned embeddings, the encoder's own (frozen) calibration serves.
    expected = tuned if tuned.is_file() else fewshot.calibration_file(mpnet)
    assert fewshot.calibration_for(mpnet, tuned=True) == expected
    assert fewshot.calibration_for("elsewhere/some-encoder", tuned=True) == fewshot.SHIPPED_CALIBRATION
    # Tuned with the pair loss: its own file when one is fit, else the prototype loss's tuned one, else the frozen one.
    pairs = fewshot.calibration_file(mpnet, tuned=True, loss="pairs")
    assert pairs.name == "fewshot_calibration.all-mpnet-base-v2.tuned-pairs.json.txt"
    assert fewshot.calibration_file(mpnet, loss="pairs") == fewshot.calibration_file(mpnet)  # frozen: no loss
    assert fewshot.calibration_for(mpnet, tuned=True, loss="pairs") == (pairs if pairs.is_file() else expected)
    # The contrastive loss's is shipped: it is the one read.
    contrastive = fewshot.calibration_file(mpnet, tuned=True, loss="contrastive")
    assert contrastive.name == "fewshot_calibration.all-mpnet-base-v2.tuned-contrastive.json.txt"
    assert contrastive.is_file()
    assert fewshot.calibration_for(mpnet, tuned=True, loss="contrastive") == contrastive


def test_a_pair_loss_calibration_is_read_when_there_is_one(
    tmp_path: Path,
    tiny_dir: Path,  # noqa: F811
    frozen: Frozen,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    shipped = tmp_path / "shipped" / "fewshot_calibration.json.txt"
    shipped.parent.mkdir()
    monkeypatch.setattr(fewshot, "SHIPPED_CALIBRATION", shipped)
    weights = {"bias": -1.0, "score": 2.0, "margin": 1.0, "neighbour": 3.0}
    for suffix, bias in ((".tuned", -1.0), (".tuned-pairs", -2.5)):
        file = shipped.with_name(f"fewshot_calibration.{tiny_dir.name}{suffix}.json.txt")
        file.write_text(json.dumps({"neighbour_blend": 0.5, "weights": weights | {"bias": bias}}))
    found = {}
    for loss in ("proto", "pairs"):
        (tmp_path / loss).mkdir()
        component = tuning(LocalModelStorage(tmp_path / loss), tiny_dir, strangers=None, tune_loss=loss)
        found[loss] = component._calibration()["bias"]
    assert found == {"proto": -1.0, "pairs": -2.5}
    # The choice among the files is made once per component, not on every message it weighs.
    looked = []
    pairs = shipped.with_name(f"fewshot_calibration.{tiny_dir.name}.tuned-pairs.json.txt")
    monkeypatch.setattr(fewshot, "calibration_for", lambda *args: looked.append(args) or pairs)
    fresh = tuning(LocalModelStorage(tmp_path / "pairs"), tiny_dir, strangers=None, tune_loss="pairs")
    for _ in range(3):
        fresh._calibration()
    assert len(looked) == 1


def test_trains_a_tuned_layer_persists_it_and_loads_the_same(
    tmp_path: Path,
    tiny_dir: Path,  # noqa: F811
    frozen: Frozen,
) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    untouched = {name: value.copy() for name, value in last_layer.flat(frozen.last).items()}
    storage = LocalModelStorage(tmp_path)
    component = make(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir), tune_last_layer=True)
    component.train(training_data())
    tuned = component._encoder()
    assert tuned is not None and tuned.frozen is frozen
    # The layer moved, the shared encoder's did not, and the model's examples are read through the tuned layer.
    examples = [text for texts in EXAMPLES.values() for text in texts]
    plain = last_layer.embed(frozen.states(examples), last_layer.flat(frozen.last), frozen.encoding)
    assert not np.allclose(tuned.encode(examples), plain, atol=1e-4)
    for name, value in last_layer.flat(frozen.last).items():
        np.testing.assert_array_equal(value, untouched[name])
    stored = np.sort(component.neighbour_embeddings.astype(np.float32), axis=0)
    np.testing.assert_allclose(stored, np.sort(tuned.encode(examples), axis=0), atol=2e-3)  # float16 storage
    assert (Path(tmp_path) / "linear" / fewshot.LAST_LAYER_FILE).is_file()

    loaded = load(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir), tune_last_layer=True)
    np.testing.assert_allclose(loaded._encoder().encode(TEXTS), tuned.encode(TEXTS), atol=1e-6)
    np.testing.assert_allclose(loaded.scores(TEXTS), component.scores(TEXTS), rtol=1e-5, atol=1e-6)
    extra = loaded.extra_features(TEXTS)
    np.testing.assert_allclose(
        loaded.confidence(loaded.scores(TEXTS), extra),
        component.confidence(component.scores(TEXTS), component.extra_features(TEXTS)),
        rtol=1e-5,
    )
    assert predict(loaded, "track my package").get(INTENT)["name"] == "track"


def test_a_model_without_its_tuned_layer_fails_to_load(
    tmp_path: Path,
    tiny_dir: Path,  # noqa: F811
    frozen: Frozen,
) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    storage = LocalModelStorage(tmp_path)
    make(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir), tune_last_layer=True).train(training_data())
    (Path(tmp_path) / "linear" / fewshot.LAST_LAYER_FILE).unlink()
    # Failing the load keeps a serving Rasa on the model it has, rather than one that answers with other vectors.
    with pytest.raises(ValueError, match="tuned last layer"):
        load(storage, fewshot.FewShotIntentClassifier, encoder=str(tiny_dir), tune_last_layer=True)


def test_a_layer_tuned_on_another_encoder_is_refused(frozen: Frozen) -> None:
    layer = {name: value[..., :4] for name, value in last_layer.flat(frozen.last).items()}
    with pytest.raises(ValueError, match="does not fit"):
        TunedEncoder(frozen, last_layer.nested(layer))


def test_the_caches_stay_bounded_and_drop_the_least_recently_used(frozen: Frozen) -> None:
    tuned = TunedEncoder(frozen, frozen.last, keep=2)
    first = tuned.encode(["hello", "cafe"])
    tuned.encode(["hello"])  # used again: "cafe" is now the oldest
    tuned.encode(["where is my order"])
    assert list(tuned._vectors) == ["hello", "where is my order"]
    again = tuned.encode(["hello", "hello", "cafe"])  # "cafe" computed afresh, in another batch
    np.testing.assert_allclose(again, np.vstack([first[0], first[0], first[1]]), atol=1e-6)
    frozen.keep = 3
    frozen.states(["a", "b", "c", "d", "b", "e"])
    assert len(frozen._states) == 3


def test_the_shipped_strangers_are_clinc150s_oos_train_and_in_no_test_or_validation_set() -> None:
    strangers = fewshot.read_strangers(fewshot.SHIPPED)
    assert len(strangers) == len(set(strangers)) == 100
    assert "how do i remove a coffee blemish" in strangers
    assert fewshot.read_strangers(None) == [] and fewshot.read_strangers("") == []
    import yaml

    for test_set in ("oos_shop.yml", "heldout.yml"):  # the shop's test sets: never trained on
        items = yaml.safe_load((Path(__file__).parents[1] / "data" / test_set).read_text())["nlu"]
        lines = {line[2:].strip() for item in items for line in item["examples"].splitlines() if line.startswith("- ")}
        assert len(lines) > 400 and not set(strangers) & lines, test_set
    data = Path(__file__).parents[3] / "shared" / "data" / "clinc150"
    if not data.is_dir():
        pytest.skip(f"CLINC150 is not at {data}")
    import csv

    def texts(split: str) -> set[str]:
        with (data / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
            return {row["text"] for row in csv.DictReader(handle)}

    assert set(strangers) == texts("oos_train")
    for split in ("val", "test", "oos_val", "oos_test"):
        assert not set(strangers) & texts(split), split


def test_strangers_join_the_tuning_unless_they_read_like_an_example(
    tmp_path: Path,
    tiny_dir: Path,  # noqa: F811
    frozen: Frozen,
) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    strangers = tmp_path / "strangers.txt"
    # The tiny encoder knows a few word pieces: these three read unlike any example but the one that is one.
    strangers.write_text("# not ours\ncafe\n\nwhere is my order\na123\n")
    assert fewshot.read_strangers(str(strangers)) == ["cafe", "where is my order", "a123"]
    found = {}
    runs = [(None, 1.0, 1.0), (str(strangers), 1.0, 1.0), (str(strangers), 0.99999, 1.0), (str(strangers), 1.0, 3.0)]
    for setting, max_cosine, weight in runs:
        (tmp_path / f"{setting is None}-{max_cosine}-{weight}").mkdir()
        storage = LocalModelStorage(tmp_path / f"{setting is None}-{max_cosine}-{weight}")
        component = tuning(
            storage, tiny_dir, strangers=setting, strangers_max_cosine=max_cosine, strangers_weight=weight
        )
        component.train(training_data())
        found[(setting is None, max_cosine, weight)] = component._encoder()
    assert [tuned.strangers for tuned in found.values()] == [0, 3, 2, 3]  # "where is my order" is an example
    plain, exposed, heavier = found[(True, 1.0, 1.0)], found[(False, 1.0, 1.0)], found[(False, 1.0, 3.0)]
    assert not np.allclose(plain.encode(TEXTS), exposed.encode(TEXTS), atol=1e-4)
    assert not np.allclose(heavier.encode(TEXTS), exposed.encode(TEXTS), atol=1e-4)  # strangers_weight is used
    assert fewshot.FewShotIntentClassifier.get_default_config()["strangers"] == fewshot.SHIPPED


def test_tune_loss_picks_the_tunings_recipe_and_refuses_an_unknown_one(
    tmp_path: Path,
    tiny_dir: Path,  # noqa: F811
    frozen: Frozen,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    used: list[last_layer.Settings] = []
    original = last_layer.tune

    def recording(*args: object, **kwargs: object) -> object:
        used.append(args[4])  # type: ignore[arg-type]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(last_layer, "tune", recording)
    for loss in (None, "pairs", "contrastive", "triplet"):
        (tmp_path / str(loss)).mkdir()
        storage = LocalModelStorage(tmp_path / str(loss))
        options = {} if loss is None else {"tune_loss": loss}
        component = tuning(storage, tiny_dir, strangers=None, strangers_weight=2.0, **options)
        if loss == "triplet":
            with pytest.raises(ValueError, match="tune_loss must be one of proto, pairs, contrastive, not 'triplet'"):
                component.train(training_data())
        else:
            component.train(training_data())
    assert [(s.loss, s.epochs, s.lr, s.background_weight) for s in used] == [
        ("proto", 2, 1e-3, 2.0),
        ("pairs", 4, 3e-4, 2.0),
        ("contrastive", 2, 1e-3, 2.0),
    ]
    assert used[2].scale == 10.0


@pytest.mark.parametrize(
    "config", sorted((Path(__file__).parents[2] / "bench" / "configs").glob("*.yml")), ids=lambda path: path.name
)
def test_rasa_accepts_every_benchmark_pipeline(config: Path) -> None:
    # Rasa checks each component's train/load signatures before training (the return types must be Rasa's own),
    # which calling the component's methods directly, as the tests above do, never does.
    from rasa.engine import validation
    from rasa.engine.recipes.default_recipe import DefaultV1Recipe
    from rasa.shared.data import TrainingType
    from rasa.shared.utils.io import read_yaml_file

    graph = DefaultV1Recipe().graph_config_for_recipe(read_yaml_file(str(config)), {}, training_type=TrainingType.NLU)
    validation.validate(graph)
