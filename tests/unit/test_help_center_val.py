"""The help center's validation set (the decision is fit on it) is apart from the sealed test set and nlu/."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.test_help_center_content import _normalise, _training_examples

ROOT = Path(__file__).resolve().parents[2]
VALIDATION = ROOT / "tests" / "data" / "help_center_val.yml"
SEALED = ROOT / "tests" / "data" / "help_center.yml"


def _questions(path: Path) -> list[dict[str, str | None]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]


QUESTIONS = _questions(VALIDATION)


def test_the_validation_set_is_large_and_a_quarter_has_no_answer() -> None:
    texts = [_normalise(str(q["text"])) for q in QUESTIONS]
    assert len(texts) >= 120
    assert len(set(texts)) == len(texts), "a question is there twice"
    assert sum(q["article"] is None for q in QUESTIONS) >= 0.25 * len(QUESTIONS)


def test_every_article_named_exists() -> None:
    slugs = {path.stem for path in (ROOT / "help_center").glob("*.md") if path.name != "README.md"}
    named = {q["article"] for q in QUESTIONS if q["article"] is not None}
    assert named <= slugs, f"no such articles: {sorted(named - slugs)}"


def test_no_validation_question_is_a_sealed_question() -> None:
    sealed = {_normalise(str(q["text"])) for q in _questions(SEALED)}
    assert sealed
    shared = [q["text"] for q in QUESTIONS if _normalise(str(q["text"])) in sealed]
    assert not shared, f"questions also in the sealed set: {shared}"


def test_no_validation_question_is_a_training_example() -> None:
    training = _training_examples()
    assert training, "no training examples found under nlu/"
    leaked = [q["text"] for q in QUESTIONS if _normalise(str(q["text"])) in training]
    assert not leaked, f"questions found in nlu/: {leaked}"
