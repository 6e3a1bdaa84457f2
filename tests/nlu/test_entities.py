"""Entity rules over a committed test set (tests/nlu/data/entities.yml): precision and recall of at least 99 %.

The project's spaCy pipeline is built from nlu/entity_patterns.jsonl with the
default order-number format. Every case is checked as written and lower-cased,
as Rasa's SpacyNLP passes text to spaCy by default.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
import yaml
from spacy.language import Language

from nlu.spacy_pipeline import DEFAULT_ORDER_NUMBER_PATTERN, DEFAULT_PATTERNS, build

CASES = yaml.safe_load((Path(__file__).parent / "data" / "entities.yml").read_text(encoding="utf-8"))["cases"]
CHECKED = [case for case in CASES if "known_failure" not in case]
KNOWN_FAILURES = [case for case in CASES if "known_failure" in case]


@pytest.fixture(scope="module")
def nlp(tmp_path_factory: pytest.TempPathFactory) -> Language:
    out = tmp_path_factory.mktemp("spacy") / "frontline_en"
    build(out, DEFAULT_PATTERNS, DEFAULT_ORDER_NUMBER_PATTERN)
    return spacy.load(out)


def found(nlp: Language, text: str) -> list[tuple[str, str]]:
    return [(ent.text, ent.label_) for ent in nlp(text).ents]


def variants(case: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """The case as written and lower-cased, each with its expected entities."""
    expected = [(str(value), label) for value, label in case["entities"]]
    lowered = case["text"].lower()
    out = [(case["text"], expected)]
    if lowered != case["text"]:
        out.append((lowered, [(value.lower(), label) for value, label in expected]))
    return out


def counts(nlp: Language, cases: list[dict]) -> tuple[int, int, int, list[str]]:
    """True positives, false positives, false negatives over all variants, and the mismatches."""
    tp = fp = fn = 0
    mismatches = []
    for case in cases:
        for text, expected in variants(case):
            got = found(nlp, text)
            remaining = list(expected)
            for entity in got:
                if entity in remaining:
                    remaining.remove(entity)
                    tp += 1
                else:
                    fp += 1
            fn += len(remaining)
            if sorted(got) != sorted(expected):
                mismatches.append(f"{text!r}: expected {expected}, found {got}")
    return tp, fp, fn, mismatches


def test_the_set_covers_every_label_and_adversarial_cases() -> None:
    labels = {label for case in CASES for _, label in case["entities"]}
    assert labels == {"order_number", "email", "phone"}
    assert sum(bool(case.get("adversarial")) for case in CASES) >= 30
    assert sum(len(case["entities"]) for case in CHECKED) >= 40


def test_precision_and_recall_are_at_least_99_percent(nlp: Language) -> None:
    tp, fp, fn, mismatches = counts(nlp, CHECKED)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.99 and recall >= 0.99, (
        f"precision {precision:.1%}, recall {recall:.1%} ({tp} right, {fp} spurious, {fn} missed): {mismatches}"
    )


def test_adversarial_strings_give_no_spurious_entity(nlp: Language) -> None:
    _, fp, _, mismatches = counts(nlp, [case for case in CHECKED if case.get("adversarial")])
    assert fp == 0, mismatches


@pytest.mark.parametrize("case", KNOWN_FAILURES, ids=[case["text"] for case in KNOWN_FAILURES])
def test_known_gaps(nlp: Language, case: dict) -> None:
    """Cases the rules get wrong today (see `known_failure`); they pass once the rules are fixed."""
    _, _, _, mismatches = counts(nlp, [case])
    if mismatches:
        pytest.xfail(case["known_failure"])
