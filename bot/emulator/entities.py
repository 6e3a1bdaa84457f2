"""Formatted text: entities counted in UTF-16, the builder the parse modes write into, and their errors."""

from dataclasses import dataclass, field
from typing import Any

from bot.emulator.errors import bad_request

# Entity offsets and lengths count UTF-16 code units, as in the Bot API.
Entity = dict[str, Any]


def utf16_len(text: str) -> int:
    """Length of text in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def byte_offset(source: str, index: int) -> int:
    """Where `index` falls in the UTF-8 bytes of source, as Telegram's parse errors count."""
    return len(source[:index].encode("utf-8"))


def parse_error(detail: str) -> Exception:
    """The error of a parse mode that cannot read the text."""
    return bad_request(f"can't parse entities: {detail}")


@dataclass
class FormattedText:
    """Plain text plus its entities."""

    text: str
    entities: list[Entity] = field(default_factory=list)


class TextBuilder:
    """Accumulates output text and entities while a parser walks the source."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0
        self.entities: list[Entity] = []

    def add(self, chunk: str) -> None:
        """Append plain text."""
        self.parts.append(chunk)
        self.offset += utf16_len(chunk)

    def close(self, kind: str, start: int, **extra: Any) -> None:
        """Record an entity from `start` to the current offset, skipping empty ones."""
        if self.offset > start:
            self.entities.append({"type": kind, "offset": start, "length": self.offset - start, **extra})

    def result(self) -> FormattedText:
        """The finished text."""
        return FormattedText("".join(self.parts), self.entities)
