"""The help center's files: Markdown articles written and read back (a property), HTML pages read as articles,
a folder read with the bad files skipped and why, and an article split into passages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content.files import ContentError
from bot.content.help_center import (
    HelpArticle,
    article,
    parse_file,
    parse_markdown,
    passages,
    read_folder,
    slugify,
    write_article,
)

AURA = """---
title: How to pair the Northwind Aura headphones
category: Devices
url: https://help.northwind.example/articles/pair-aura-headphones
---
Hold the power button for five seconds.

## If it does not pair

To reset them:

1. Switch them off.
2. Hold both buttons.

- a loose list item

- and another

Still stuck? Write to us.
"""

slugs = st.from_regex(r"[a-z0-9]{1,12}(-[a-z0-9]{1,12}){0,4}", fullmatch=True)
lines = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)
urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}.example/{path}",
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_\-/?=&.%]{0,40}", fullmatch=True),
)
bodies = st.lists(lines, min_size=1, max_size=6).map("\n".join)


def _valid(slug: str, title: str, body: str, url: str | None, category: str | None) -> HelpArticle | None:
    try:
        return article(slug, title, body, url, category)
    except ContentError:
        return None


@settings(max_examples=200, deadline=None, database=None)
@given(slugs, lines, bodies, st.none() | urls, st.none() | lines)
def test_an_article_written_reads_back_the_same(slug, title, body, url, category) -> None:
    item = _valid(slug, title, body, url, category)
    if item is None:  # an empty title or body after trimming, or a category too long: refused, not written
        return
    assert parse_markdown(item.slug, write_article(item)) == item


@pytest.mark.parametrize(
    "title", ["Returns: how they work", "Yes", "1.5", "null", "~", "#1 tip", "- dash", "[sizes]", "{x}", "it's", "a #b"]
)
def test_the_front_matter_stays_yaml_that_reads_as_the_same_text(title: str) -> None:
    item = article("x", title, "Body", "https://h.example/a?b=1#c", "Care: wool")
    written = write_article(item)
    assert yaml.safe_load(written.split("---\n")[1]) == {
        "title": title,
        "category": "Care: wool",
        "url": "https://h.example/a?b=1#c",
    }
    assert parse_markdown("x", written) == item


def test_the_article_format_reads_its_fields_and_keeps_the_body() -> None:
    item = parse_markdown("pair-aura-headphones", AURA)
    assert item.title == "How to pair the Northwind Aura headphones"
    assert (item.category, item.url) == ("Devices", "https://help.northwind.example/articles/pair-aura-headphones")
    assert item.body.startswith("Hold the power button") and item.body.endswith("Write to us.")
    assert write_article(item) == AURA
    quoted = parse_markdown("x", "---\ntitle: \"Returns: \\\"30 days\\\"\"\ncategory: 'It''s'\n---\nBody\n")
    assert (quoted.title, quoted.category, quoted.url) == ('Returns: "30 days"', "It's", None)
    assert parse_markdown("x", "# Sizes\n\nS is 90 cm.\n").title == "Sizes"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("---\ncategory: Devices\n---\nBody", "no title"),
        ("---\ntitle: A\nBody", "not closed"),
        ("Just a body", "no title"),
        ("---\ntitle: A\n---\n\n  \n", "needs a body"),
        ("---\ntitle: A\nurl: ftp://files.example/a\n---\nBody", "http:// or https://"),
        ("---\ntitle: A\nurl: /relative\n---\nBody", "http:// or https://"),
        ('---\ntitle: "A\n---\nBody', "broken quote"),
        ("---\ntitle A\n---\nBody", "not “name: value”"),
    ],
)
def test_a_bad_article_file_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ContentError, match=reason):
        parse_markdown("a", text)


PAGE = """<!doctype html><html><head><title>Pair the Aura | Northwind Help</title>
<style>p { color: red }</style><script>if (a < b) { alert("x") }</script>
<link rel="canonical" href="https://help.northwind.example/pair"><meta name="category" content="Devices"></head>
<body><nav><a href="/">Home</a> <a href="/devices">Devices</a></nav>
<h1>Pair the Aura</h1>
<p>Hold the <b>power</b> button for
   five seconds. See <a href="https://help.northwind.example/manual">the manual</a>.</p>
<h2>Steps</h2><p>To pair:</p>
<ol><li>Open Bluetooth</li><li>Choose <i>Aura</i><ul><li>it shows as NW-Aura</li></ul></li><li>Done</li></ol>
<footer>© Northwind</footer></body></html>"""


def test_an_html_page_reads_as_an_article_without_scripts_styles_or_chrome(tmp_path: Path) -> None:
    (tmp_path / "Pair Aura.html").write_text(PAGE, encoding="utf-8")
    item = parse_file(tmp_path / "Pair Aura.html")
    assert (item.slug, item.title, item.category) == ("pair-aura", "Pair the Aura", "Devices")
    assert item.url == "https://help.northwind.example/pair"
    assert item.body == (
        "Hold the power button for five seconds. See [the manual](https://help.northwind.example/manual).\n\n"
        "## Steps\n\nTo pair:\n\n1. Open Bluetooth\n2. Choose Aura\n  - it shows as NW-Aura\n3. Done"
    )
    bare = tmp_path / "bare.htm"
    bare.write_text("<head><title>Care</title><body><h2>Care</h2><p>Wash cold.</p><p>Dry flat.</p>", encoding="utf-8")
    assert parse_file(bare) == HelpArticle("bare", "Care", "Wash cold.\n\nDry flat.")


def test_a_folder_is_read_by_name_with_the_readme_and_bad_files_skipped_and_why(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# The help center\n\nOne file an article.\n")
    (tmp_path / "pair-aura.md").write_text(AURA)
    (tmp_path / "Pair_Aura.html").write_text(PAGE)  # the same slug as pair-aura.md
    (tmp_path / "sizes.md").write_text("---\ntitle: Sizes\n---\nS is 90 cm.\n")
    (tmp_path / "broken.md").write_text("no title here\n")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.md").write_text("ignored")
    (tmp_path / "sub").mkdir()
    folder = read_folder(tmp_path)
    assert [a.slug for a in folder.articles] == ["pair-aura", "sizes"]
    assert sorted(name for name, _ in folder.skipped) == ["Pair_Aura.html", "README.md", "broken.md", "photo.png"]
    reasons = dict(folder.skipped)
    assert "pair-aura.md has the same name" in reasons["Pair_Aura.html"] and "no title" in reasons["broken.md"]
    assert read_folder(tmp_path / "missing").articles == []


def test_passages_are_paragraphs_and_whole_lists_under_their_heading_with_the_title() -> None:
    found = passages(parse_markdown("pair-aura-headphones", AURA))
    assert [(p.position, p.section, p.text) for p in found] == [
        (0, "", "Hold the power button for five seconds."),
        (
            1,
            "If it does not pair",
            "To reset them:\n\n1. Switch them off.\n2. Hold both buttons.\n\n- a loose list item\n\n- and another",
        ),
        (2, "If it does not pair", "Still stuck? Write to us."),
    ]
    assert {p.title for p in found} == {"How to pair the Northwind Aura headphones"}


def test_slugs_come_from_file_names_and_titles() -> None:
    assert slugify("How to Pair: the Aura (2024)!") == "how-to-pair-the-aura-2024"
    assert slugify("---") == ""
    with pytest.raises(ContentError, match="e.g. sizes-and-fit"):
        article("Sizes and fit", "Sizes and fit", "body")
