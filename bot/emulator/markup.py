"""Message text formatting: parse modes, explicit entities and auto-detected entities."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.errors import bad_request

# Entity offsets and lengths count UTF-16 code units, as in the Bot API.
Entity = dict[str, Any]

_TRIMMED = " \t\n\r\x0b\x0c"
_MARKDOWN_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_HTML_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ESCAPES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ATTRIBUTE = re.compile(
    r"""([A-Za-z_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?"""
)
_AUTO_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("url", re.compile(r"\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")),
    ("bot_command", re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*")),
)
_OPAQUE_TYPES = {"code", "pre", "text_link", "url", "email"}


def utf16_len(text: str) -> int:
    """Length of text in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _parse_error(detail: str) -> Exception:
    return bad_request(f"can't parse entities: {detail}")


@dataclass
class FormattedText:
    """Plain text plus its entities."""

    text: str
    entities: list[Entity] = field(default_factory=list)


class _Builder:
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


def _html_unescape(source: str, position: int) -> tuple[str, int]:
    """Decode the character reference at `position` (which holds '&')."""
    end = source.find(";", position)
    if end == -1 or end - position > 10:
        return "&", position + 1
    name = source[position + 1 : end]
    if name in _HTML_ESCAPES:
        return _HTML_ESCAPES[name], end + 1
    if name.startswith("#"):
        digits = name[1:]
        base = 16 if digits[:1] in ("x", "X") else 10
        try:
            return chr(int(digits[1:] if base == 16 else digits, base)), end + 1
        except ValueError:
            pass
    return "&", position + 1


def _unescape_attribute(value: str) -> str:
    out: list[str] = []
    position = 0
    while position < len(value):
        if value[position] == "&":
            char, position = _html_unescape(value, position)
            out.append(char)
        else:
            out.append(value[position])
            position += 1
    return "".join(out)


@dataclass
class _OpenTag:
    name: str
    start: int
    attributes: dict[str, str]


def _html_entity(tag: _OpenTag, builder: _Builder, parent: _OpenTag | None) -> None:
    """Turn a closed HTML tag into its entity."""
    kind = _HTML_TAG_TYPES[tag.name]
    attributes = tag.attributes
    if tag.name == "a":
        if attributes.get("href"):
            builder.close("text_link", tag.start, url=attributes["href"])
    elif tag.name == "tg-emoji":
        builder.close(kind, tag.start, custom_emoji_id=attributes.get("emoji-id", ""))
    elif tag.name == "code" and parent is not None and parent.name == "pre":
        # Code inside pre only names the pre block's language.
        language = attributes.get("class", "")
        if language.startswith("language-"):
            parent.attributes["language"] = language[len("language-") :]
    elif tag.name == "pre" and attributes.get("language"):
        builder.close(kind, tag.start, language=attributes["language"])
    elif tag.name == "blockquote" and "expandable" in attributes:
        builder.close("expandable_blockquote", tag.start)
    else:
        builder.close(kind, tag.start)


def _html_start_tag(source: str, position: int, builder: _Builder) -> tuple[_OpenTag, int]:
    """Parse `<name attrs>` at `position`; returns the tag and the index of its `>`."""
    name_end = position + 1
    while name_end < len(source) and not source[name_end].isspace() and source[name_end] != ">":
        name_end += 1
    offset = _byte_offset(source, position)
    if name_end == len(source):
        raise _parse_error(f"Unclosed start tag at byte offset {offset}")
    name = source[position + 1 : name_end].lower()
    if name not in _HTML_TAG_TYPES:
        raise _parse_error(f'Unsupported start tag "{name}" at byte offset {offset}')
    end = source.find(">", name_end)
    if end == -1:
        raise _parse_error(f"Unclosed start tag at byte offset {offset}")
    attributes = {
        match.group(1).lower(): _unescape_attribute(
            next((group for group in match.groups()[1:] if group is not None), "")
        )
        for match in _HTML_ATTRIBUTE.finditer(source[name_end:end])
    }
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise _parse_error(f'Unsupported start tag "span" at byte offset {offset}')
    return _OpenTag(name, builder.offset, attributes), end


def _html_end_tag(source: str, position: int, end: int, stack: list[_OpenTag]) -> _OpenTag:
    name = source[position + 2 : end].strip().lower()
    offset = _byte_offset(source, position)
    if not stack:
        raise _parse_error(f"Unexpected end tag at byte offset {offset}")
    if stack[-1].name != name:
        raise _parse_error(
            f'Unmatched end tag at byte offset {offset}, expected "</{stack[-1].name}>", '
            f'found "</{name}>"'
        )
    return stack.pop()


def parse_html(source: str) -> FormattedText:
    """Parse Telegram's HTML subset."""
    builder = _Builder()
    stack: list[_OpenTag] = []
    position = 0
    while position < len(source):
        char = source[position]
        if source.startswith("</", position):
            end = source.find(">", position)
            if end == -1:
                raise _parse_error(
                    f"Unclosed end tag at byte offset {_byte_offset(source, position)}"
                )
            tag = _html_end_tag(source, position, end, stack)
            _html_entity(tag, builder, stack[-1] if stack else None)
            position = end + 1
        elif char == "<":
            tag, end = _html_start_tag(source, position, builder)
            stack.append(tag)
            position = end + 1
        elif char == "&":
            decoded, position = _html_unescape(source, position)
            builder.add(decoded)
        else:
            builder.add(char)
            position += 1
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return builder.result()


_MARKDOWN_V2_MARKERS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}
_ENTITY_TITLES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
}


@dataclass
class _OpenMarker:
    marker: str
    start: int
    source_position: int


class _MarkdownV2Parser:
    """MarkdownV2 as Telegram parses it, including the reserved-character rule."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.position = 0
        self.builder = _Builder()
        self.stack: list[_OpenMarker] = []
        self.quote_start: int | None = None

    def parse(self) -> FormattedText:
        """Walk the source once."""
        while self.position < len(self.source):
            self._step()
        self._end_quote()
        if self.stack:
            opened = self.stack[-1]
            title = _ENTITY_TITLES.get(_MARKDOWN_V2_MARKERS.get(opened.marker, "text_link"))
            raise _parse_error(
                f"Can't find end of {title} entity at byte offset "
                f"{_byte_offset(self.source, opened.source_position)}"
            )
        return self.builder.result()

    def _step(self) -> None:
        source, position = self.source, self.position
        char = source[position]
        if char == "\\" and position + 1 < len(source) and ord(source[position + 1]) <= 126:
            self.builder.add(source[position + 1])
            self.position += 2
        elif source.startswith("```", position):
            self._pre()
        elif char == "`":
            self._code()
        elif source.startswith("__", position) or source.startswith("||", position):
            self._marker(source[position : position + 2])
        elif char in "*_~":
            self._marker(char)
        elif char == ">" and (position == 0 or source[position - 1] == "\n"):
            self._quote_line()
        elif char == "\n":
            self._line_break()
        elif char == "[":
            self._open(char)
        elif char == "]" and any(opened.marker == "[" for opened in self.stack):
            self._link_end()
        elif char in _MARKDOWN_V2_RESERVED:
            raise _parse_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            self.builder.add(char)
            self.position += 1

    def _quote_line(self) -> None:
        """A `>` at a line start: the line joins the current blockquote."""
        if self.quote_start is None:
            self.quote_start = self.builder.offset
        self.position += 1

    def _line_break(self) -> None:
        if not self.source.startswith(">", self.position + 1):
            self._end_quote()
        self.builder.add("\n")
        self.position += 1

    def _end_quote(self) -> None:
        if self.quote_start is not None:
            self.builder.close("blockquote", self.quote_start)
            self.quote_start = None

    def _open(self, marker: str) -> None:
        self.stack.append(_OpenMarker(marker, self.builder.offset, self.position))
        self.position += len(marker)

    def _marker(self, marker: str) -> None:
        if self.stack and self.stack[-1].marker == marker:
            opened = self.stack.pop()
            self.builder.close(_MARKDOWN_V2_MARKERS[marker], opened.start)
            self.position += len(marker)
        else:
            self._open(marker)

    def _link_end(self) -> None:
        opened = self.stack[-1]
        if opened.marker != "[":
            raise _parse_error(
                f"Can't find end of {_ENTITY_TITLES[_MARKDOWN_V2_MARKERS[opened.marker]]} "
                f"entity at byte offset {_byte_offset(self.source, opened.source_position)}"
            )
        self.stack.pop()
        self.position += 1
        if not self.source.startswith("(", self.position):
            return
        url = self._read_until(")", start=self.position + 1)
        self.builder.close("text_link", opened.start, url=url)

    def _read_until(self, terminator: str, start: int) -> str:
        """Read escaped text up to `terminator`, leaving the position after it."""
        out: list[str] = []
        position = start
        while position < len(self.source):
            char = self.source[position]
            if char == "\\" and position + 1 < len(self.source):
                out.append(self.source[position + 1])
                position += 2
            elif self.source.startswith(terminator, position):
                self.position = position + len(terminator)
                return "".join(out)
            else:
                out.append(char)
                position += 1
        raise _parse_error(
            f"Can't find end of the entity starting at byte offset "
            f"{_byte_offset(self.source, start - 1)}"
        )

    def _code(self) -> None:
        start = self.builder.offset
        self.builder.add(self._read_until("`", start=self.position + 1))
        self.builder.close("code", start)

    def _pre(self) -> None:
        body = self._read_until("```", start=self.position + 3)
        first_line, newline, rest = body.partition("\n")
        language = first_line.strip() if newline and first_line.strip() else ""
        text = rest if language else body
        start = self.builder.offset
        self.builder.add(text)
        if language:
            self.builder.close("pre", start, language=language)
        else:
            self.builder.close("pre", start)


def parse_markdown_v2(source: str) -> FormattedText:
    """Parse MarkdownV2."""
    return _MarkdownV2Parser(source).parse()


_LEGACY_MARKERS = {"*": "bold", "_": "italic", "`": "code"}


def parse_markdown(source: str) -> FormattedText:
    """Parse the legacy Markdown mode: no nesting, `\\` escapes only markers."""
    builder = _Builder()
    position = 0
    while position < len(source):
        char = source[position]
        if char == "\\" and source[position + 1 : position + 2] in ("_", "*", "`", "["):
            builder.add(source[position + 1])
            position += 2
        elif source.startswith("```", position):
            position = _legacy_span(source, position, "```", "pre", builder)
        elif char in _LEGACY_MARKERS:
            position = _legacy_span(source, position, char, _LEGACY_MARKERS[char], builder)
        elif char == "[":
            position = _legacy_link(source, position, builder)
        else:
            builder.add(char)
            position += 1
    return builder.result()


def _legacy_span(source: str, position: int, marker: str, kind: str, builder: _Builder) -> int:
    end = source.find(marker, position + len(marker))
    if end == -1:
        raise _parse_error(
            "Can't find end of the entity starting at byte offset "
            f"{_byte_offset(source, position)}"
        )
    start = builder.offset
    builder.add(source[position + len(marker) : end])
    builder.close(kind, start)
    return end + len(marker)


def _legacy_link(source: str, position: int, builder: _Builder) -> int:
    close = source.find("](", position)
    end = source.find(")", close + 2) if close != -1 else -1
    if end == -1:
        raise _parse_error(
            "Can't find end of the entity starting at byte offset "
            f"{_byte_offset(source, position)}"
        )
    start = builder.offset
    builder.add(source[position + 1 : close])
    builder.close("text_link", start, url=source[close + 2 : end])
    return end + 1


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
    return any(
        start < entity["offset"] + entity["length"] and entity["offset"] < end
        for entity in entities
    )


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
