"""An HTML help-center page as an article: its title, and its body as Markdown-ish text (paragraphs, lists,
`## headings`, links as `[text](href)`), scripts, styles and the page's chrome left out. The standard library's
HTML parser only."""

from __future__ import annotations

from html.parser import HTMLParser

DROPPED = {"script", "style", "noscript", "template", "svg", "head", "nav", "footer", "form", "button", "iframe"}
BLOCKS = {"p", "div", "section", "article", "main", "header", "aside", "blockquote", "pre", "table", "dl", "dt"}
BLOCKS |= {"dd", "figure", "figcaption", "details", "summary", "address", "hr", "body", "html"}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
LISTS = {"ul", "ol"}
CATEGORY_META = {"category", "article:section"}
VOID = {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "source", "track", "wbr"}


class _List:
    """An open list: its kind (ul, ol), the next item's number, whether the open item has had a line yet."""

    def __init__(self, kind: str) -> None:
        self.kind, self.number, self.started = kind, 1, True


class _Page(HTMLParser):
    """Collects the page's blocks as it reads it: ("text" | "item" | "heading", text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.title = ""
        self.canonical: str | None = None
        self.category: str | None = None
        self._inline: list[str] = []
        self._dropped: list[str] = []  # the open elements whose text is left out
        self._in_title = False
        self._lists: list[_List] = []
        self._pre = 0  # inside <pre>: its line breaks are kept
        self._links: list[tuple[str | None, int]] = []  # each open link: its href and where its text starts
        self._heading: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.canonical = values.get("href") or None
        elif tag == "meta" and {values.get("name", "").lower(), values.get("property", "").lower()} & CATEGORY_META:
            self.category = values.get("content") or None
        elif tag == "body":  # a page that never closed its <head>
            self._dropped = []
        if tag in DROPPED and tag not in VOID:
            self._dropped.append(tag)
        if self._dropped:
            return
        if tag in BLOCKS or tag in HEADINGS:
            self._flush()
            if tag in HEADINGS:
                self._heading = tag
            if tag == "pre":
                self._pre += 1
        elif tag == "br":
            self._inline.append("\n")
        elif tag in LISTS:
            self._flush()
            self._lists.append(_List(tag))
        elif tag == "li":
            self._flush()
            if self._lists:
                self._lists[-1].started = False
        elif tag == "tr":
            self._flush()
        elif tag == "a":
            self._links.append((values.get("href"), len(self._inline)))
        elif tag in ("td", "th") and self._inline:
            self._inline.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._dropped:
            if tag == self._dropped[-1]:
                self._dropped.pop()
            return
        if tag in HEADINGS:
            self._flush("heading")
            self._heading = None
        elif tag in BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag == "tr":
            self._flush("row")
        elif tag == "li":
            self._flush("item")
        elif tag in LISTS and self._lists:
            self._flush("item")
            self._lists.pop()
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            text = " ".join("".join(self._inline[start:]).split())
            if text and href and not href.startswith(("#", "javascript:", "mailto:")) and href != text:
                self._inline[start:] = [f"[{text}]({href})"]
            elif href and href.startswith("mailto:") and text:
                self._inline[start:] = [text]

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._dropped:
            self._inline.append(data if self._pre else data.replace("\n", " "))

    def _flush(self, kind: str = "text") -> None:
        """End the text gathered so far as a block of its kind (a list item inside a list is always an item)."""
        lines = [" ".join(line.split()) for line in "".join(self._inline).split("\n")]
        text = "\n".join(line for line in lines if line)
        self._inline = []
        if not text:
            return
        if self._heading is not None and kind == "text":
            kind = "heading"
        if self._lists and kind in ("text", "item"):
            depth, current = len(self._lists) - 1, self._lists[-1]
            marker = "  "
            if not current.started:
                marker = f"{current.number}." if current.kind == "ol" else "-"
                current.number += current.kind == "ol"
                current.started = True
            text = "  " * depth + f"{marker} " + text.replace("\n", "\n" + "  " * (depth + 1))
            kind = "item"
        self.blocks.append((kind, text))

    def finish(self) -> None:
        self._flush()


def html_article(page: str) -> tuple[str, str, str | None, str | None]:
    """The page's title (`<title>`, or its first heading when it has none or the title only adds to it), its body as Markdown-ish text, its canonical link and
    its category (`<meta name="category">`), the last two None when the page has none."""
    parser = _Page()
    parser.feed(page)
    parser.close()
    parser.finish()
    title = " ".join(parser.title.split())
    blocks = parser.blocks
    first_heading = next((i for i, (kind, _) in enumerate(blocks) if kind == "heading"), None)
    if first_heading is not None and (not title or blocks[first_heading][1] in title):
        title = blocks[first_heading][1]  # a page's <title> often adds the site's name to it
        blocks = blocks[:first_heading] + blocks[first_heading + 1 :]  # the title is not said twice
    parts: list[str] = []
    for index, (kind, text) in enumerate(blocks):
        if index:
            joined = kind in ("item", "row") and blocks[index - 1][0] == kind
            parts.append("\n" if joined else "\n\n")
        parts.append(f"## {text}" if kind == "heading" else text)
    category = " ".join((parser.category or "").split()) or None
    return title, "".join(parts), parser.canonical, category
