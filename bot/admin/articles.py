"""Help-center articles: the list with how often each was offered and how it was rated, and one article's form
(title, Markdown body, link, category) beside the passages a search would offer from it, with the recent questions
the bot answered with it and the customers' Yes / No. Every change goes to the
audit log (bot/content/articles.py writes it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.admin.pages import deps, done, form, render, url, who
from bot.content import articles
from bot.content.files import ContentError
from bot.content.help_center import HelpArticle, Passage, clean_body, passages, slugify

NAV = ("Articles", "/articles")
routes = web.RouteTableDef()
FORM_FIELDS = ("slug", "title", "body", "url", "category")


@routes.get("/articles")
async def article_list(request: web.Request) -> web.Response:
    """Every article with its category, link, uses, ratings and last change."""
    rows = await deps(request).sessions.read(articles.listed)
    return await render(request, "articles.html", title="Articles", rows=rows)


@routes.get("/articles/edit")
async def article_page(request: web.Request) -> web.Response:
    """One article's form and its passages (`?slug=`), or an empty form for a new one."""
    slug = request.query.get("slug", "")
    if not slug:
        return await _editor(request, None, {name: "" for name in FORM_FIELDS}, [])
    row = await deps(request).sessions.read(articles.by_slug, slug)
    if row is None:
        return await render(
            request,
            "missing.html",
            status=404,
            title="Not found",
            what=f"There is no article {slug}.",
            back=url("/articles"),
        )
    typed = {"slug": row.slug, "title": row.title, "body": row.body, "url": row.url or "", "category": row.category}
    uses = await deps(request).sessions.read(articles.recent_uses, row.id)
    return await _editor(request, row.id, typed, passages(articles.as_help_article(row)), uses=uses)


async def _editor(
    request: web.Request,
    article_id: int | None,
    typed: Mapping[str, Any],
    shown: list[Passage],
    *,
    status: int = 200,
    draft: bool = False,
    messages: list[dict[str, str]] | None = None,
    uses: list[articles.Use] | None = None,
) -> web.Response:
    """The form (with what was typed) beside the passages of the article as saved, or of the draft; then the recent
    questions it answered."""
    return await render(
        request,
        "article.html",
        status=status,
        title=typed.get("title") or "New article",
        article_id=article_id,
        typed={name: typed.get(name) or "" for name in FORM_FIELDS},
        passages=shown,
        draft=draft,
        messages=messages or [],
        uses=uses,
    )


def _draft(data: Mapping[str, str]) -> HelpArticle:
    """The posted article, unchecked, as the preview shows it (a blank slug follows the title)."""
    title = data.get("title", "")
    return HelpArticle(
        data.get("slug", "").strip() or slugify(title), title, clean_body(data.get("body", "")), data.get("url") or None
    )


@routes.post("/articles/edit")
async def save(request: web.Request) -> web.Response:
    """Preview the posted article's passages, or save it (a new one without `article`); refused with the reason."""
    data = await form(request)
    number = data.get("article", "")
    article_id = int(number) if number.isascii() and number.isdigit() else None
    typed = {name: data.get(name, "") for name in FORM_FIELDS}
    if data.get("action") == "preview":
        return await _editor(
            request,
            article_id,
            typed,
            passages(_draft(data)),
            draft=True,
            messages=[{"kind": "warning", "text": "This is a preview: nothing is saved yet."}],
        )
    try:
        row = await deps(request).sessions.run(
            articles.save,
            who(request).username,
            article_id,
            typed["slug"],
            typed["title"],
            typed["body"].replace("\r\n", "\n"),
            typed["url"],
            typed["category"],
        )
    except ContentError as exc:
        return await _editor(
            request,
            article_id,
            typed,
            passages(_draft(data)),
            status=400,
            draft=True,
            messages=[{"kind": "error", "text": f"Not saved: {exc}. Correct it and save again."}],
        )
    return await done(request, url("/articles/edit", slug=row.slug), f"Saved “{row.title}”.")


@routes.post("/articles/delete")
async def delete(request: web.Request) -> web.Response:
    """An article goes, with the record of its uses."""
    number = (await form(request)).get("article", "")
    title: str | None = None
    if number.isascii() and number.isdigit():
        title = await deps(request).sessions.run(articles.delete, who(request).username, int(number))
    if not title:
        return await done(request, url("/articles"), "That article no longer exists.", "warning")
    return await done(request, url("/articles"), f"Deleted “{title}”.")
