"""bench/nlu_data.py: the NLU benchmark's scoring and data handling (the training and serving are Rasa's own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.nlu_data import (
    ROOT,
    Example,
    default_name,
    load_dataset,
    predicted_intent,
    read_csv,
    score,
    stratified_split,
)


def test_score_counts_declines_and_confident_mistakes() -> None:
    truth = ["greet", "refund", "out_of_scope", "out_of_scope", "greet"]
    predicted = ["greet", "track", "nlu_fallback", "refund", "nlu_fallback"]
    confidence = [0.9, 0.8, 0.5, 0.7, 0.5]
    result = score(truth, predicted, confidence, threshold=0.6)
    assert result["accuracy"] == pytest.approx(1 / 3)  # in-scope: a fallback is a miss
    assert result["oos_recall"] == pytest.approx(0.5)
    assert result["confident_wrong_rate"] == pytest.approx(2 / 5)  # refund->track, oos->refund
    assert result["confident_wrong_in_scope"] == pytest.approx(1 / 3)
    assert result["fallback_rate"] == pytest.approx(2 / 5)


def test_without_an_out_of_scope_class_accuracy_covers_every_message() -> None:
    result = score(["a", "b"], ["a", "nlu_fallback"], [0.9, 0.3], threshold=0.5)
    assert result["accuracy"] == 0.5 and result["oos_recall"] is None and result["confident_wrong_rate"] == 0.0


def test_a_retrieval_intent_is_resolved_by_its_response_selector() -> None:
    parsed = {
        "intent": {"name": "faq", "confidence": 0.8},
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/returns_policy"}}},
    }
    assert predicted_intent(parsed) == ("faq/returns_policy", 0.8)
    assert predicted_intent({"intent": {"name": "greet", "confidence": 0.9}}) == ("greet", 0.9)


def test_csv_and_stratified_split(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text(
        "text,intent\n" + "".join(f"hello {i},greet\nbye {i},goodbye\n" for i in range(10)) + "lonely,rare\n"
    )
    examples = read_csv(path)
    assert len(examples) == 21 and examples[0] == Example("hello 0", "greet")
    train, test = stratified_split(examples)
    assert sorted(e.intent for e in test) == ["goodbye"] * 2 + ["greet"] * 2
    assert {e.text for e in train} | {e.text for e in test} == {e.text for e in examples}


def test_clinc_style_directory(tmp_path: Path) -> None:
    for name, rows in {
        "train": "a,x\nb,y\n",
        "oos_train": "c,oos\n",
        "val": "d,x\n",
        "oos_val": "e,oos\n",
        "test": "f,y\n",
        "oos_test": "g,oos\n",
    }.items():
        (tmp_path / f"{name}.csv").write_text("text,category\n" + rows)
    test = load_dataset(tmp_path, None, "test", tmp_path / "work")
    assert [(e.text, e.intent) for e in test.test] == [("f", "y"), ("g", "out_of_scope")]
    val = load_dataset(tmp_path, None, "val", tmp_path / "work")
    assert [(e.text, e.intent) for e in val.test] == [("d", "x"), ("e", "out_of_scope")]
    assert "out_of_scope" in (tmp_path / "work" / "train.yml").read_text()


def test_result_names() -> None:
    assert default_name("shipped", (ROOT / "config.yml").resolve()) == "shipped"
    assert default_name("clinc150", ROOT / "bench" / "configs" / "clinc150-minilm.yml") == "clinc150-minilm"
    assert default_name("shipped", ROOT / "bench" / "configs" / "shipped-linear.yml") == "shipped-linear"
    assert default_name("faq", ROOT / "bench" / "configs" / "clinc150-minilm.yml") == "faq-clinc150-minilm"
