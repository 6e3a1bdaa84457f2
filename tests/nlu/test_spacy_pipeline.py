"""The project's spaCy pipeline: entity rules, configurable order numbers, rebuild fingerprint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import spacy
from spacy.language import Language

from nlu import spacy_pipeline
from nlu.spacy_pipeline import DEFAULT_PATTERNS, PipelineConfigError, build, main, order_number_regex

PHONES = [
    "+44 20 7946 0958",
    "020 7946 0958",
    "(555) 123-4567",
    "555-123-4567",
    "+1 555 123 4567",
    "07700900123",
    "+447700900123",
    "+44 7700 900123",
    "07700 900123",
    "0161 496 0123",
    "+44 (0)20 7946 0958",
    "+1 (555) 123-4567",
    "(555)123-4567",
    "555.123.4567",
    "+1-555-123-4567",
    "+33 1 23 45 67 89",
]

NOT_ENTITIES = [
    "2024",
    "it was £19.99",
    "you have 30 days to return it",
    "hello",
    "I ordered it on 2024-05-01 at 10:30",
    "it cost $1,234.56 in 2023 and 2024",
    "order 12345",
]


def entities(nlp: Language, text: str) -> list[tuple[str, str]]:
    """Entities found in `text`, as (text, label) pairs."""
    return [(ent.text, ent.label_) for ent in nlp(text).ents]


def build_at(directory: Path, order_number_pattern: str) -> Language:
    """Build a pipeline into `directory` and load it the way Rasa's SpacyNLP does."""
    build(directory, DEFAULT_PATTERNS, order_number_pattern)
    return spacy.load(directory)


@pytest.fixture(scope="module")
def nlp(tmp_path_factory: pytest.TempPathFactory) -> Language:
    """The pipeline built with the default order-number format."""
    return build_at(tmp_path_factory.mktemp("spacy") / "frontline_en", spacy_pipeline.DEFAULT_ORDER_NUMBER_PATTERN)


@pytest.fixture(scope="module")
def nlp_ord(tmp_path_factory: pytest.TempPathFactory) -> Language:
    """The pipeline built with order numbers like ORD-123456."""
    return build_at(tmp_path_factory.mktemp("spacy") / "frontline_en", "ORD-[0-9]{6}")


@pytest.mark.parametrize(
    "text, number",
    [
        ("my order A12345 hasn't arrived", "A12345"),
        ("my order a12345 hasn't arrived", "a12345"),
        ("where is (#AB123456)?", "AB123456"),
        ("order A12345.", "A12345"),
    ],
)
def test_finds_order_numbers(nlp: Language, text: str, number: str) -> None:
    assert entities(nlp, text) == [(number, "order_number")]


@pytest.mark.parametrize("email", ["jane.doe@example.com", "Sam+shop@mail.example.co.uk"])
def test_finds_emails(nlp: Language, email: str) -> None:
    assert entities(nlp, f"my email is {email}.") == [(email, "email")]


@pytest.mark.parametrize("phone", PHONES)
def test_finds_phone_numbers(nlp: Language, phone: str) -> None:
    assert entities(nlp, f"call me on {phone} after five") == [(phone, "phone")]


@pytest.mark.parametrize("phone", PHONES)
def test_finds_phone_numbers_in_lowercased_text(nlp: Language, phone: str) -> None:
    # Rasa's SpacyNLP lower-cases messages before spaCy sees them.
    assert entities(nlp, f"my number is {phone}") == [(phone, "phone")]


@pytest.mark.parametrize("text", NOT_ENTITIES)
def test_numbers_that_are_not_entities(nlp: Language, text: str) -> None:
    assert entities(nlp, text) == []


def test_several_entities_in_one_message(nlp: Language) -> None:
    text = "order B123456, phone 07911 123456, email sam@example.com"
    assert entities(nlp, text) == [("B123456", "order_number"), ("07911 123456", "phone"), ("sam@example.com", "email")]


def test_lemmas_come_from_lookup_tables(nlp: Language) -> None:
    assert [t.lemma_ for t in nlp("parcels were delivered")] == ["parcel", "be", "deliver"]


@pytest.mark.parametrize("text", ["my order ORD-123456 is late", "my order ord-123456 is late", "(ORD-123456)."])
def test_custom_order_number_pattern_is_matched(nlp_ord: Language, text: str) -> None:
    assert [label for _, label in entities(nlp_ord, text)] == ["order_number"]
    assert entities(nlp_ord, text)[0][0].lower() == "ord-123456"


@pytest.mark.parametrize("text", ["my order A12345 is late", "ORD-12345", "ORD-1234567", "ORD 123456"])
def test_custom_order_number_pattern_replaces_the_default(nlp_ord: Language, text: str) -> None:
    assert entities(nlp_ord, text) == []


def test_order_number_wins_over_phone(tmp_path: Path) -> None:
    nlp = build_at(tmp_path / "digits", "[0-9]{11}")
    assert entities(nlp, "order 07700900123") == [("07700900123", "order_number")]


@pytest.mark.parametrize("pattern", ["[A-Z", "ORD-(", "(?i)ORD[0-9]+"])
def test_invalid_order_number_pattern_is_named(pattern: str) -> None:
    with pytest.raises(PipelineConfigError, match="ORDER_NUMBER_PATTERN"):
        order_number_regex(pattern)


def test_order_number_pattern_matching_empty_text_is_refused() -> None:
    with pytest.raises(PipelineConfigError, match="ORDER_NUMBER_PATTERN matches empty text"):
        order_number_regex("[0-9]*")


def test_cli_reports_an_invalid_environment_pattern(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDER_NUMBER_PATTERN", "[A-Z")
    assert main(["--out", str(tmp_path / "out")]) == 2
    assert "ORDER_NUMBER_PATTERN is not a valid regular expression" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_flag_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_NUMBER_PATTERN", "X[0-9]{5}")
    assert spacy_pipeline.configured_order_number_pattern(None) == "X[0-9]{5}"
    assert spacy_pipeline.configured_order_number_pattern("ORD-[0-9]{6}") == "ORD-[0-9]{6}"
    monkeypatch.setenv("ORDER_NUMBER_PATTERN", "")
    assert spacy_pipeline.configured_order_number_pattern(None) == spacy_pipeline.DEFAULT_ORDER_NUMBER_PATTERN


def test_patterns_without_the_placeholder_are_refused(tmp_path: Path) -> None:
    patterns = tmp_path / "patterns.jsonl"
    patterns.write_text('{"label": "email", "pattern": [{"LIKE_EMAIL": true}]}\n')
    with pytest.raises(PipelineConfigError, match="ORDER_NUMBER_PATTERN"):
        build(tmp_path / "out", patterns, "A[0-9]{5}")


def test_unknown_label_is_refused(tmp_path: Path) -> None:
    patterns = tmp_path / "patterns.jsonl"
    patterns.write_text('{"label": "postcode", "pattern": [{"LOWER": "sw1a"}]}\n')
    with pytest.raises(PipelineConfigError, match=r"patterns.jsonl:1: label 'postcode'"):
        build(tmp_path / "out", patterns, "A[0-9]{5}")


def test_rebuilds_only_when_an_input_changes(tmp_path: Path) -> None:
    patterns = tmp_path / "patterns.jsonl"
    shutil.copy(DEFAULT_PATTERNS, patterns)
    out = tmp_path / "frontline_en"

    assert build(out, patterns, "A[0-9]{5}") is True
    assert build(out, patterns, "A[0-9]{5}") is False
    assert (tmp_path / "frontline_en.fingerprint.json").is_file()

    assert build(out, patterns, "B[0-9]{5}") is True
    patterns.write_text(patterns.read_text() + '{"label": "email", "pattern": [{"LOWER": "me@here"}]}\n')
    assert build(out, patterns, "B[0-9]{5}") is True
    assert build(out, patterns, "B[0-9]{5}") is False
    assert build(out, patterns, "B[0-9]{5}", force=True) is True

    shutil.rmtree(out)
    assert build(out, patterns, "B[0-9]{5}") is True
    assert spacy.load(out).pipe_names == ["lemmatizer", "order_number_ruler", "contact_ruler"]
