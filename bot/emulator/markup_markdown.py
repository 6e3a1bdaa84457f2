"""The MarkdownV2 and legacy Markdown parse modes."""

from dataclasses import dataclass

from bot.emulator.entities import FormattedText, TextBuilder, byte_offset, parse_error

_MARKDOWN_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")
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
        self.builder = TextBuilder()
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
            raise parse_error(
                f"Can't find end of {title} entity at byte offset {byte_offset(self.source, opened.source_position)}"
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
            raise parse_error(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
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
            raise parse_error(
                f"Can't find end of {_ENTITY_TITLES[_MARKDOWN_V2_MARKERS[opened.marker]]} "
                f"entity at byte offset {byte_offset(self.source, opened.source_position)}"
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
        raise parse_error(f"Can't find end of the entity starting at byte offset {byte_offset(self.source, start - 1)}")

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
    builder = TextBuilder()
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


def _legacy_span(source: str, position: int, marker: str, kind: str, builder: TextBuilder) -> int:
    end = source.find(marker, position + len(marker))
    if end == -1:
        raise parse_error(f"Can't find end of the entity starting at byte offset {byte_offset(source, position)}")
    start = builder.offset
    builder.add(source[position + len(marker) : end])
    builder.close(kind, start)
    return end + len(marker)


def _legacy_link(source: str, position: int, builder: TextBuilder) -> int:
    close = source.find("](", position)
    end = source.find(")", close + 2) if close != -1 else -1
    if end == -1:
        raise parse_error(f"Can't find end of the entity starting at byte offset {byte_offset(source, position)}")
    start = builder.offset
    builder.add(source[position + 1 : close])
    builder.close("text_link", start, url=source[close + 2 : end])
    return end + 1
