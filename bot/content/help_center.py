"""The help center's article files: `<slug>.md` with a front matter of title, category and url, or HTML pages to
import; and an article's passages, the pieces a search indexes.

Pure: no database. A Markdown file reads

    ---
    title: How to pair the Northwind Aura headphones
    category: Devices
    url: https://help.northwind.example/articles/pair-aura-headphones
    ---
    Body in Markdown, paragraphs separated by blank lines.

`title` is required, `category` and `url` are optional; `write_article` writes the same form back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from bot.content.files import ContentError
from bot.content.help_center_html import html_article

SEED_FOLDER = "help_center"  # the repository's own help center, seeded on first start
FIELDS = ("title", "category", "url")
MARKDOWN = (".md", ".markdown")
HTML = (".html", ".htm")
SKIPPED_NAMES = ("readme",)  # a folder's README describes it; it is not an article
TITLE_CHARS, CATEGORY_CHARS, URL_CHARS, SLUG_CHARS = 200, 100, 500, 120
FENCE = "---"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class HelpArticle:
    """An article as its file says it: slug (the file name's stem), title, Markdown body, optional url and category."""

    slug: str
    title: str
    body: str
    url: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class Passage:
    """A piece of an article a search can offer: a paragraph or a whole list, with the heading it sits under."""

    slug: str
    title: str
    position: int  # its place in the article, from 0
    section: str  # the nearest heading above it ("" when none)
    text: str


@dataclass
class Folder:
    """A folder's articles, and the files skipped with the reason (file name, reason)."""

    articles: list[HelpArticle]
    skipped: list[tuple[str, str]]


def slugify(text: str) -> str:
    """A file name's stem (or a title) as a slug: lower-case letters and digits, joined by hyphens."""
    return _NOT_SLUG.sub("-", text.lower()).strip("-")[:SLUG_CHARS].strip("-")


def clean_body(body: str) -> str:
    """Line ends as \\n, no trailing spaces on a line, no blank lines around it."""
    lines = [line.rstrip() for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def check_url(url: str | None) -> str | None:
    """An article's public address: None when empty, else an http(s) URL with a host (ContentError otherwise)."""
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise ContentError(f"The link must be a web address starting with http:// or https://, not “{url[:80]}”")
    if len(url) > URL_CHARS:
        raise ContentError(f"Keep the link under {URL_CHARS} characters")
    return url


def article(slug: str, title: str, body: str, url: str | None = None, category: str | None = None) -> HelpArticle:
    """An article as it is kept, checked: fields trimmed, an empty category or url left out (ContentError says what
    is wrong, for the admin)."""
    title, category, slug = _one_line(title), _one_line(category), slug.strip()
    if not title:
        raise ContentError("An article needs a title")
    if len(title) > TITLE_CHARS or len(category) > CATEGORY_CHARS:
        raise ContentError(f"Keep the title under {TITLE_CHARS} characters and the category under {CATEGORY_CHARS}")
    if not slug or slugify(slug) != slug:
        raise ContentError(
            f"“{slug}” cannot name an article: use lower-case letters, digits and hyphens, e.g. {slugify(title) or 'sizes'}"
        )
    body = clean_body(body)
    if not body:
        raise ContentError("An article needs a body: the text customers are answered from")
    return HelpArticle(slug, title, body, check_url(url), category or None)


def _field(value: str) -> str:
    """A front-matter value as written: plain when YAML reads it back as the same text (so other tools read the
    front matter too), else quoted (JSON's double quotes are YAML's)."""
    try:
        plain = value[:1] not in ("", '"', "'") and yaml.safe_load(f"v: {value}") == {"v": value}
    except yaml.YAMLError:
        plain = False
    return value if plain else json.dumps(value, ensure_ascii=False)


def write_article(item: HelpArticle) -> str:
    """The article as its `<slug>.md` file."""
    lines = [FENCE, f"title: {_field(item.title)}"]
    lines += [f"{name}: {_field(value)}" for name, value in (("category", item.category), ("url", item.url)) if value]
    return "\n".join([*lines, FENCE, item.body]) + "\n"


def _value(raw: str, name: str) -> str:
    raw = raw.strip()
    if raw[:1] == '"':
        try:
            value = json.loads(raw)
        except ValueError:
            raise ContentError(f"the {name} has an unclosed or broken quote") from None
        return str(value)
    if raw[:1] == "'" and raw.endswith("'") and len(raw) > 1:
        return raw[1:-1].replace("''", "'")
    return raw


def parse_markdown(slug: str, text: str) -> HelpArticle:
    """An article from its Markdown file: the front matter's title, category and url, or a first `# Title` line
    (ContentError says what is missing)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    fields: dict[str, str] = {}
    if lines and lines[0].strip() == FENCE:
        try:
            end = next(i for i in range(1, len(lines)) if lines[i].strip() == FENCE)
        except StopIteration:
            raise ContentError("the front matter is not closed: end it with a line of three hyphens (---)") from None
        for number, line in enumerate(lines[1:end], start=2):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, colon, raw = line.partition(":")
            if not colon:
                raise ContentError(f"line {number} of the front matter is not “name: value”")
            name = name.strip().lower()
            if name in FIELDS:
                fields[name] = _value(raw, name)
        body = "\n".join(lines[end + 1 :])
    else:
        first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
        heading = _HEADING.match(lines[first]) if first < len(lines) and lines[first].startswith("# ") else None
        if heading is None:
            raise ContentError("no title: begin the file with a front matter (---, title: …, ---) or a # Title line")
        fields["title"] = heading.group(1)
        body = "\n".join(lines[first + 1 :])
    if not _one_line(fields.get("title")):
        raise ContentError("the front matter has no title (title: …)")
    return article(slug, fields["title"], body, fields.get("url"), fields.get("category"))


def parse_file(path: Path) -> HelpArticle:
    """An article from a Markdown or HTML file, its slug from the file name (ContentError says why it cannot be)."""
    slug = slugify(path.stem)
    if not slug:
        raise ContentError("the file name has no letters or digits to name the article by")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ContentError("not UTF-8 text") from None
    if path.suffix.lower() in HTML:
        title, body, url, category = html_article(text)
        if not title:
            raise ContentError("no title: the page has neither a <title> nor a heading (<h1>…)")
        # A page's own canonical link that is not a web address is left out rather than refusing the page.
        return article(slug, title, body, check_url_quietly(url), category)
    return parse_markdown(slug, text)


def check_url_quietly(url: str | None) -> str | None:
    """The url when it is a valid article link, else None."""
    try:
        return check_url(url)
    except ContentError:
        return None


def read_folder(folder: Path) -> Folder:
    """Every article file in a folder (not its subfolders), Markdown first, then by name; a README, other files and
    bad ones skipped with the reason, and a later file of the same slug too. A missing folder has no articles."""
    found = Folder([], [])
    if not folder.is_dir():
        return found
    seen: dict[str, str] = {}
    for path in sorted(folder.iterdir(), key=lambda p: (p.suffix.lower() not in MARKDOWN, p.name.lower())):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.stem.lower() in SKIPPED_NAMES:
            found.skipped.append((path.name, "a README describes the folder; it is not an article"))
            continue
        if path.suffix.lower() not in MARKDOWN + HTML:
            found.skipped.append((path.name, "not a Markdown (.md) or HTML (.html, .htm) file"))
            continue
        try:
            item = parse_file(path)
        except (ContentError, OSError) as exc:
            found.skipped.append((path.name, str(exc)))
            continue
        if item.slug in seen:
            found.skipped.append((path.name, f"{seen[item.slug]} has the same name ({item.slug}) and was read first"))
            continue
        seen[item.slug] = path.name
        found.articles.append(item)
    return found


def _blocks(body: str) -> list[str]:
    """The body's blocks: runs of non-blank lines."""
    return [block.strip("\n") for block in re.split(r"\n[ \t]*\n", clean_body(body)) if block.strip()]


def passages(item: HelpArticle) -> list[Passage]:
    """The article's passages: each paragraph, each list whole (with the line that introduces it, when that ends in
    a colon, and the indented paragraphs inside it), under the nearest heading; headings are not passages."""
    pieces: list[tuple[str, str, bool]] = []  # (section, text, whether it holds a list)
    section = ""
    for block in _blocks(item.body):
        heading = _HEADING.match(block) if "\n" not in block else None
        if heading:
            section = heading.group(1)
            continue
        listed = bool(_LIST_ITEM.match(block))
        if pieces and pieces[-1][0] == section:
            _, previous, in_list = pieces[-1]
            if (listed and (in_list or previous.endswith(":"))) or (in_list and block[:1] in " \t"):
                pieces[-1] = (section, f"{previous}\n\n{block}", True)
                continue
        pieces.append((section, block, listed))
    return [
        Passage(item.slug, item.title, position, section, text) for position, (section, text, _) in enumerate(pieces)
    ]
