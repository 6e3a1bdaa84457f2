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


def test_the_faq_validation_phrasings_are_new_and_name_real_topics() -> None:
    rows = yaml.safe_load((ROOT / "tests" / "data" / "faq_val.yml").read_text(encoding="utf-8"))["questions"]
    texts = [_normalise(str(row["text"])) for row in rows]
    assert len(rows) >= 60 and len(set(texts)) == len(texts)
    faq = yaml.safe_load((ROOT / "nlu" / "faq.yml").read_text(encoding="utf-8"))["nlu"]
    topics = {str(block["intent"]).removeprefix("faq/") for block in faq if "intent" in block}
    assert {row["topic"] for row in rows} <= topics
    heldout = yaml.safe_load((ROOT / "tests" / "data" / "heldout.yml").read_text(encoding="utf-8"))["nlu"]
    elsewhere = _training_examples() | {_normalise(str(q["text"])) for q in _questions(SEALED)}
    elsewhere |= {
        _normalise(line.strip()[2:])
        for block in heldout
        for line in str(block.get("examples", "")).splitlines()
        if line.strip().startswith("- ")
    }
    assert not [row["text"] for row, text in zip(rows, texts, strict=True) if text in elsewhere]
