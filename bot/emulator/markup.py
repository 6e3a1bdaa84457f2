"""Message text formatting: a parse mode or explicit entities, trimming, and the entities Telegram detects."""

import re
from collections.abc import Callable
from typing import Any

from bot.emulator.entities import Entity, FormattedText, utf16_len
from bot.emulator.errors import bad_request
from bot.emulator.markup_html import parse_html
from bot.emulator.markup_markdown import parse_markdown, parse_markdown_v2

_TRIMMED = " \t\n\r\x0b\x0c"
_AUTO_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("url", re.compile(r"\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")),
    ("bot_command", re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*")),
)
_OPAQUE_TYPES = {"code", "pre", "text_link", "url", "email"}

_PARSERS: dict[str, Callable[[str], FormattedText]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


def _validate_entities(raw: Any) -> list[Entity]:
    if not isinstance(raw, list) or not all(
        isinstance(entity, dict)
        and isinstance(entity.get("type"), str)
        and isinstance(entity.get("offset"), int)
        and isinstance(entity.get("length"), int)
        for entity in raw
    ):
        raise bad_request("can't parse entities JSON object")
    return [dict(entity) for entity in raw]


def _trim(formatted: FormattedText) -> FormattedText:
    """Strip outer whitespace as Telegram does, keeping entities aligned."""
    stripped = formatted.text.strip(_TRIMMED)
    if stripped == formatted.text:
        return formatted
    shift = utf16_len(formatted.text[: len(formatted.text) - len(formatted.text.lstrip(_TRIMMED))])
    limit = utf16_len(stripped)
    entities = []
    for entity in formatted.entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, limit)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return FormattedText(stripped, entities)


def _overlaps(start: int, end: int, entities: list[Entity]) -> bool:
    return any(start < entity["offset"] + entity["length"] and entity["offset"] < end for entity in entities)


def detect_entities(text: str, explicit: list[Entity]) -> list[Entity]:
    """Entities Telegram finds by itself: commands, mentions, hashtags, URLs, e-mails."""
    blocking = [entity for entity in explicit if entity["type"] in _OPAQUE_TYPES]
    found: list[Entity] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            start = utf16_len(text[: match.start()])
            end = start + utf16_len(match.group())
            if not _overlaps(start, end, blocking + found):
                found.append({"type": kind, "offset": start, "length": end - start})
    return found


def sort_entities(entities: list[Entity]) -> list[Entity]:
    """Telegram's order: by offset, longer first."""
    return sorted(entities, key=lambda entity: (entity["offset"], -entity["length"]))


def format_text(text: str, parse_mode: str | None, entities: Any) -> FormattedText:
    """Apply explicit entities or a parse mode, trim, and add auto-detected entities."""
    if entities is not None:
        formatted = FormattedText(text, _validate_entities(entities))
    elif parse_mode:
        parser = _PARSERS.get(parse_mode.lower())
        if parser is None:
            raise bad_request(f"unsupported parse_mode {parse_mode}")
        formatted = parser(text)
    else:
        formatted = FormattedText(text)
    formatted = _trim(formatted)
    automatic = detect_entities(formatted.text, formatted.entities)
    return FormattedText(formatted.text, sort_entities(formatted.entities + automatic))
