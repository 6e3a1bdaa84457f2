"""The demo shop's help center is well formed, and its sealed question set is a fair test of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "help_center"
QUESTIONS = ROOT / "tests" / "data" / "help_center.yml"
FIELDS = {"title", "category", "url"}
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    category: str | None
    url: str | None
    paragraphs: tuple[str, ...]


def _parse(slug: str, text: str) -> Article:
    """One article file: YAML front matter between `---` lines (a title, optional category and url), then Markdown."""
    match = FRONT_MATTER.match(text)
    if match is None:
        raise ValueError(f"{slug}: no front matter between two '---' lines")
    fields = yaml.safe_load(match.group(1))
    if not isinstance(fields, dict) or not str(fields.get("title") or "").strip():
        raise ValueError(f"{slug}: the front matter has no title")
    if unknown := set(fields) - FIELDS:
        raise ValueError(f"{slug}: unknown fields {sorted(unknown)}")
    paragraphs = tuple(p.strip() for p in re.split(r"\n\s*\n", match.group(2)) if p.strip())
    if not paragraphs:
        raise ValueError(f"{slug}: the body is empty")
    return Article(slug, fields["title"].strip(), fields.get("category"), fields.get("url"), paragraphs)


def _articles() -> dict[str, Article]:
    paths = sorted(path for path in FOLDER.glob("*.md") if path.name != "README.md")
    return {path.stem: _parse(path.stem, path.read_text(encoding="utf-8")) for path in paths}


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _training_examples() -> set[str]:
    found: set[str] = set()
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            for line in str(block.get("examples", "")).splitlines():
                if line.strip().startswith("- "):
                    found.add(_normalise(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.strip()[2:])))
    return found


ARTICLES = _articles()
QUESTION_SET = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"]


def test_the_help_center_has_at_least_30_articles() -> None:
    assert len(ARTICLES) >= 30


def test_every_article_has_a_slug_title_and_a_body_of_3_to_8_paragraphs() -> None:
    for slug, article in ARTICLES.items():
        assert SLUG.fullmatch(slug), f"{slug}: a slug is lower case letters, digits and hyphens"
        assert article.title, slug
        assert 3 <= len(article.paragraphs) <= 8, f"{slug}: {len(article.paragraphs)} paragraphs"
        words = sum(len(p.split()) for p in article.paragraphs)
        assert 150 <= words <= 400, f"{slug}: {words} words"
        if article.url is not None:
            assert article.url.startswith("https://help.northwind.example/articles/"), slug


def test_titles_are_unique() -> None:
    titles = [article.title for article in ARTICLES.values()]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("No front matter here.\n", "no front matter"),
        ("---\ncategory: Care\n---\nA body.\n", "no title"),
        ("---\ntitle: Care\n---\n\n\n", "the body is empty"),
        ("---\ntitle: Care\nauthor: me\n---\nA body.\n", "unknown fields"),
    ],
)
def test_a_malformed_article_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        _parse("broken", text)


def test_the_question_set_is_large_and_a_quarter_has_no_answer() -> None:
    texts = [_normalise(q["text"]) for q in QUESTION_SET]
    assert len(texts) >= 120
    assert len(set(texts)) == len(texts), "a question is there twice"
    unanswered = [q for q in QUESTION_SET if q["article"] is None]
    assert len(unanswered) >= 0.25 * len(QUESTION_SET)


def test_every_answer_names_an_existing_article_and_most_articles_are_asked_about() -> None:
    named = {q["article"] for q in QUESTION_SET if q["article"] is not None}
    assert named <= set(ARTICLES), f"no such articles: {sorted(named - set(ARTICLES))}"
    assert len(named) >= 0.75 * len(ARTICLES)


def test_no_question_is_a_training_example() -> None:
    training = _training_examples()
    assert training, "no training examples found under nlu/"
    leaked = [q["text"] for q in QUESTION_SET if _normalise(q["text"]) in training]
    assert not leaked, f"questions found in nlu/: {leaked}"


def test_no_question_is_a_sentence_of_an_article() -> None:
    sentences = {
        _normalise(sentence)
        for article in ARTICLES.values()
        for text in (article.title, *article.paragraphs)
        for sentence in re.split(r"(?<=[.!?:])\s+|\n", text)
    }
    copied = [q["text"] for q in QUESTION_SET if _normalise(q["text"]) in sentences]
    assert not copied, f"questions copied from the articles: {copied}"
