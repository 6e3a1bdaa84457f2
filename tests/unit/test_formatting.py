"""Splitting long replies and escaping customer text."""

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rasa import escape_customer_text
from bot.telegram.formatting import MAX_MESSAGE_CHARS, split_text


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]


def test_long_text_splits_at_paragraphs() -> None:
    paragraph = "word " * 500
    parts = split_text(f"{paragraph}\n\n{paragraph}\n\n{paragraph}")
    assert len(parts) == 2
    assert all(len(part) <= MAX_MESSAGE_CHARS for part in parts)


@settings(deadline=None, max_examples=200)
@given(st.text(min_size=1, max_size=20_000))
def test_split_keeps_every_word_and_respects_the_limit(text: str) -> None:
    parts = split_text(text)
    assert all(0 < len(part) <= MAX_MESSAGE_CHARS for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_intent_syntax_is_neutralised() -> None:
    assert escape_customer_text('/inform{"x":1}') == 'inform{"x":1}'
    assert escape_customer_text("  //  /greet") == "greet"
    assert escape_customer_text("order\x00A12345") == "order\ufffdA12345"
    assert escape_customer_text("where is my order?") == "where is my order?"


@settings(deadline=None)
@given(st.text())
def test_escaped_text_never_starts_with_a_slash(text: str) -> None:
    assert not escape_customer_text(text).startswith("/")
