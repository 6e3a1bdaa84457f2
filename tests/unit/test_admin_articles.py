"""The console's Articles page over HTTP, on SQLite and PostgreSQL: add, preview, refuse with the reason, edit,
delete, each change in the audit log; the list's uses and ratings; the menu links to it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.admin.pages import PREFIX
from bot.storage.kb_models import Article, ArticleUse
from tests.unit.test_admin_console import audit, post
from tests.unit.test_admin_dashboard import console, text_of  # noqa: F401 (console: the fixture)

MOMENT = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
BODY = "Hold the power button for five seconds.\r\n\r\n## Still not paired?\r\n\r\nTo reset:\r\n\r\n1. Off\r\n2. On"


async def _articles(sessions) -> list[tuple[str, str, str | None, str | None, int]]:
    async with sessions() as session:
        rows = (await session.scalars(select(Article).order_by(Article.id))).all()
        return [(r.slug, r.title, r.url, r.category, r.revision) for r in rows]


async def test_admins_add_preview_edit_and_delete_articles_each_change_audited(console, sessions) -> None:  # noqa: F811
    client, _ = console
    page = await (await client.get(f"{PREFIX}/articles")).text()
    assert f'href="{PREFIX}/articles" class="here">Articles</a>' in page and "No articles yet" in text_of(page)
    fields = {"title": "Pair the Aura", "slug": "", "category": "Devices", "url": "", "body": BODY}
    preview = await post(client, "/articles/edit", action="preview", **fields)
    shown = text_of(await preview.text())
    assert preview.status == 200 and "This is a preview: nothing is saved yet." in shown
    assert "Still not paired? To reset: 1. Off 2. On Pair the Aura" in shown
    assert await _articles(sessions) == []

    saved = await post(client, "/articles/edit", action="save", **fields)
    assert saved.url.path == f"{PREFIX}/articles/edit" and saved.url.query["slug"] == "pair-the-aura"
    assert "Saved “Pair the Aura”." in text_of(await saved.text())
    assert await _articles(sessions) == [("pair-the-aura", "Pair the Aura", None, "Devices", 1)]
    async with sessions() as session:
        row = await session.scalar(select(Article))
        assert row.body == BODY.replace("\r\n", "\n")
    number = str(row.id)

    edited = {**fields, "slug": "pair-aura", "url": "https://help.northwind.example/pair", "category": ""}
    await post(client, "/articles/edit", action="save", article=number, **edited)
    assert await _articles(sessions) == [("pair-aura", "Pair the Aura", "https://help.northwind.example/pair", None, 2)]
    async with sessions.begin() as session:
        session.add_all(
            [ArticleUse(article_id=row.id, query=q, helpful=h) for q, h in (("a", True), ("b", False), ("c", None))]
        )
    listing = text_of(await (await client.get(f"{PREFIX}/articles")).text())
    assert "Pair the Aura – https://help.northwind.example/pair 3 1 1" in listing

    deleted = await post(client, "/articles/delete", article=number)
    assert "Deleted “Pair the Aura”." in text_of(await deleted.text()) and await _articles(sessions) == []
    again = await post(client, "/articles/delete", article=number)
    assert "That article no longer exists." in text_of(await again.text())
    assert [entry for entry in await audit(sessions) if "article" in entry[1]] == [
        ("alice", "add article", "pair-the-aura"),
        ("alice", "edit article", "pair-aura"),
        ("alice", "delete article", "pair-aura"),
    ]


async def test_a_bad_article_is_refused_politely_with_what_was_typed_kept(console, sessions) -> None:  # noqa: F811
    client, _ = console
    await post(client, "/articles/edit", action="save", title="Sizes", slug="sizes", body="S is 90 cm.", url="")
    for fields, reason in (
        ({"title": "  ", "body": "Some text"}, "An article needs a title"),
        ({"title": "Other sizes", "slug": "sizes", "body": "M"}, "There is already an article named sizes"),
        (
            {"title": "Care", "body": "Wash", "url": "javascript:alert(1)"},
            "The link must be a web address starting with",
        ),
        ({"title": "Care", "body": "   "}, "An article needs a body"),
    ):
        response = await post(client, "/articles/edit", action="save", **fields)
        page = text_of(await response.text())
        assert response.status == 400 and f"Not saved: {reason}" in page, page
        assert fields["body"].strip() in page  # what was typed is shown again
    assert [slug for slug, *_ in await _articles(sessions)] == ["sizes"]


async def test_an_unknown_article_is_not_found(console) -> None:  # noqa: F811
    client, _ = console
    response = await client.get(f"{PREFIX}/articles/edit", params={"slug": "nowhere"})
    assert response.status == 404 and "There is no article nowhere." in text_of(await response.text())
    blank = text_of(await (await client.get(f"{PREFIX}/articles/edit")).text())
    assert "New article" in blank and "No passages yet" in blank


async def test_the_article_page_lists_the_recent_questions_it_answered_with_yes_or_no(console, sessions) -> None:  # noqa: F811
    client, _ = console
    await post(client, "/articles/edit", action="save", title="Pair the Aura", slug="", category="", url="", body=BODY)
    page = text_of(await (await client.get(f"{PREFIX}/articles/edit?slug=pair-the-aura")).text())
    assert "Recent questions it answered" in page and "No customer has been answered with it yet." in page
    async with sessions.begin() as session:
        row = await session.scalar(select(Article))
        for minute, (query, helpful) in enumerate(
            (("how do i pair my headphones", True), ("<b>aura won't connect</b>", False), ("pairing?", None))
        ):
            session.add(
                ArticleUse(article_id=row.id, query=query, helpful=helpful, asked_at=MOMENT.replace(minute=minute))
            )
            await session.flush()
    html = await (await client.get(f"{PREFIX}/articles/edit?slug=pair-the-aura")).text()
    assert "&lt;b&gt;aura won&#39;t connect&lt;/b&gt;" in html
    page = text_of(html)
    assert (
        "01 Mar 2027 09:02 UTC pairing? – "
        "01 Mar 2027 09:01 UTC <b>aura won't connect</b> No "
        "01 Mar 2027 09:00 UTC how do i pair my headphones Yes"
    ) in page
