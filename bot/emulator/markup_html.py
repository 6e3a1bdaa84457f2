"""Telegram's HTML parse mode."""

import re
from dataclasses import dataclass

from bot.emulator.entities import FormattedText, TextBuilder, byte_offset, parse_error

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
_HTML_ATTRIBUTE = re.compile(r"""([A-Za-z_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


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


def _html_entity(tag: _OpenTag, builder: TextBuilder, parent: _OpenTag | None) -> None:
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


def _html_start_tag(source: str, position: int, builder: TextBuilder) -> tuple[_OpenTag, int]:
    """Parse `<name attrs>` at `position`; returns the tag and the index of its `>`."""
    name_end = position + 1
    while name_end < len(source) and not source[name_end].isspace() and source[name_end] != ">":
        name_end += 1
    offset = byte_offset(source, position)
    if name_end == len(source):
        raise parse_error(f"Unclosed start tag at byte offset {offset}")
    name = source[position + 1 : name_end].lower()
    if name not in _HTML_TAG_TYPES:
        raise parse_error(f'Unsupported start tag "{name}" at byte offset {offset}')
    end = source.find(">", name_end)
    if end == -1:
        raise parse_error(f"Unclosed start tag at byte offset {offset}")
    attributes = {
        match.group(1).lower(): _unescape_attribute(
            next((group for group in match.groups()[1:] if group is not None), "")
        )
        for match in _HTML_ATTRIBUTE.finditer(source[name_end:end])
    }
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise parse_error(f'Unsupported start tag "span" at byte offset {offset}')
    return _OpenTag(name, builder.offset, attributes), end


def _html_end_tag(source: str, position: int, end: int, stack: list[_OpenTag]) -> _OpenTag:
    name = source[position + 2 : end].strip().lower()
    offset = byte_offset(source, position)
    if not stack:
        raise parse_error(f"Unexpected end tag at byte offset {offset}")
    if stack[-1].name != name:
        raise parse_error(
            f'Unmatched end tag at byte offset {offset}, expected "</{stack[-1].name}>", found "</{name}>"'
        )
    return stack.pop()


def parse_html(source: str) -> FormattedText:
    """Parse Telegram's HTML subset."""
    builder = TextBuilder()
    stack: list[_OpenTag] = []
    position = 0
    while position < len(source):
        char = source[position]
        if source.startswith("</", position):
            end = source.find(">", position)
            if end == -1:
                raise parse_error(f"Unclosed end tag at byte offset {byte_offset(source, position)}")
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
        raise parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return builder.result()
