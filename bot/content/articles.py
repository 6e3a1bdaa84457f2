"""Help-center articles as content: admins add, edit and delete them; `frontline kb import` brings in a folder; the
list shows how often each was offered and how customers rated it. Every change moves the content's version on and
is audited (`record_change`), and raises the article's revision (what an index rebuilds by).

Plain functions of a Session (run with `await sessions.run(fn, …)` or `await sessions.read(fn, …)`): a refused
change raises ContentError, and the transaction is rolled back with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.content.current import record_change
from bot.content.files import ContentError
from bot.content.help_center import HelpArticle, article, slugify
from bot.storage.kb_models import Article, ArticleUse
from bot.storage.models import AuditEntry

FIELDS = ("title", "body", "url", "category")


@dataclass(frozen=True)
class Listed:
    """An article in the console's list: its text, when it last changed, how often it was offered and rated."""

    id: int
    slug: str
    title: str
    url: str | None
    category: str | None
    updated_at: datetime
    revision: int
    used: int
    helpful: int
    not_helpful: int


@dataclass
class Imported:
    """What an import did: the slugs created, updated and unchanged, and the files skipped with the reason."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """The counts, in words."""
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.skipped)} skipped"
        )


def fields_of(item: Article | HelpArticle) -> dict[str, Any]:
    """An article's text fields (of a row or of a file alike): what a change, an import or a seed compares."""
    return {name: getattr(item, name) for name in FIELDS}


def as_help_article(row: Article) -> HelpArticle:
    """A stored article as its file says it."""
    return HelpArticle(row.slug, row.title, row.body, row.url, row.category)


def by_slug(session: Session, slug: str) -> Article | None:
    """The article of this slug."""
    return session.scalar(select(Article).where(Article.slug == slug))


def all_articles(session: Session) -> list[Article]:
    """Every article, by category (uncategorised last), then title."""
    rows = session.scalars(select(Article)).all()
    return sorted(rows, key=lambda r: (r.category is None, (r.category or "").lower(), r.title.lower(), r.id))


def listed(session: Session) -> list[Listed]:
    """Every article with how often it was offered, and how often customers said it helped or did not."""
    counts = {
        article_id: (used, helpful or 0, not_helpful or 0)
        for article_id, used, helpful, not_helpful in session.execute(
            select(
                ArticleUse.article_id,
                func.count(),
                func.sum(case((ArticleUse.helpful.is_(True), 1), else_=0)),
                func.sum(case((ArticleUse.helpful.is_(False), 1), else_=0)),
            ).group_by(ArticleUse.article_id)
        ).all()
    }
    return [
        Listed(r.id, r.slug, r.title, r.url, r.category, r.updated_at, r.revision, *counts.get(r.id, (0, 0, 0)))
        for r in all_articles(session)
    ]


def revisions(session: Session) -> dict[int, int]:
    """Every article's id and revision: an index re-reads the articles whose revision it has not seen."""
    return {row.id: row.revision for row in session.execute(select(Article.id, Article.revision)).all()}


def save(
    session: Session,
    who: str,
    article_id: int | None,
    slug: str,
    title: str,
    body: str,
    url: str | None,
    category: str | None,
) -> Article:
    """A new article (no id; its slug from the title when none is given) or a change to one, checked and audited."""
    row = session.get(Article, article_id) if article_id is not None else None
    if article_id is not None and row is None:
        raise ContentError("That article no longer exists: it was deleted meanwhile")
    slug = slug.strip() or (row.slug if row is not None else slugify(title))
    checked = article(slug, title, body, url, category)
    same = by_slug(session, checked.slug)
    if same is not None and same is not row:
        raise ContentError(f"There is already an article named {checked.slug} (“{same.title}”): choose another name")
    if row is None:
        return _add(session, who, checked, seed=False)
    _change(session, who, row, checked)
    return row


def _add(session: Session, who: str, item: HelpArticle, *, seed: bool, action: str = "add article") -> Article:
    row = Article(slug=item.slug, revision=1, seed=fields_of(item) if seed else None, **fields_of(item))
    session.add(row)
    session.flush()
    record_change(session, who, action, item.slug, None, fields_of(item))
    return row


def _change(session: Session, who: str, row: Article, item: HelpArticle, action: str = "edit article") -> bool:
    """Set the row to the article; False (and no record) when nothing changed."""
    before = {"slug": row.slug, **fields_of(row)}
    after = {"slug": item.slug, **fields_of(item)}
    if before == after:
        return False
    row.slug = item.slug
    for name, value in fields_of(item).items():
        setattr(row, name, value)
    row.revision += 1
    record_change(session, who, action, item.slug, before, after)
    return True


def delete(session: Session, who: str, article_id: int) -> str | None:
    """Delete an article (its uses go with it), audited; its title, or None when it was gone already."""
    row = session.get(Article, article_id)
    if row is None:
        return None
    record_change(session, who, "delete article", row.slug, {"slug": row.slug, **fields_of(row)}, None)
    session.delete(row)
    return row.title


def import_articles(
    session: Session, who: str, items: list[HelpArticle], skipped: list[tuple[str, str]] | None = None
) -> Imported:
    """Create or update each article by its slug (articles not in `items` stay as they are); each change audited."""
    report = Imported(skipped=list(skipped or []))
    rows = {row.slug: row for row in session.scalars(select(Article)).all()}
    for item in items:
        row = rows.get(item.slug)
        if row is None:
            rows[item.slug] = _add(session, who, item, seed=False, action="import article")
            report.created.append(item.slug)
        elif _change(session, who, row, item, action="import article"):
            report.updated.append(item.slug)
        else:
            report.unchanged.append(item.slug)
    if report.created or report.updated or report.skipped:
        session.add(
            AuditEntry(
                who=who,
                action="import articles",
                target=f"{len(items) + len(report.skipped)} files",
                before=None,
                after={
                    "created": report.created,
                    "updated": report.updated,
                    "unchanged": len(report.unchanged),
                    "skipped": [f"{name}: {reason}" for name, reason in report.skipped],
                },
            )
        )
    return report


@dataclass(frozen=True)
class Use:
    """A query that an article answered, and whether the customer said it helped (None: they did not say)."""

    id: int
    asked_at: datetime
    query: str
    helpful: bool | None


def record_use(session: Session, article_id: int, conversation_id: int | None, query: str) -> int:
    """An article offered to a customer for their query; the use's id (what their Yes / No buttons name)."""
    row = ArticleUse(article_id=article_id, conversation_id=conversation_id, query=query)
    session.add(row)
    session.flush()
    return row.id


def rate_use(session: Session, use_id: int, conversation_id: int, helpful: bool) -> ArticleUse | None:
    """The customer's Yes or No on a use of their own conversation; None (and nothing changed) for anyone else's."""
    row = session.get(ArticleUse, use_id)
    if row is None or row.conversation_id is None or row.conversation_id != conversation_id:
        return None
    row.helpful = helpful
    return row


def recent_uses(session: Session, article_id: int, limit: int = 50) -> list[Use]:
    """The latest queries that this article answered, newest first, with their Yes / No."""
    rows = session.scalars(
        select(ArticleUse)
        .where(ArticleUse.article_id == article_id)
        .order_by(ArticleUse.asked_at.desc(), ArticleUse.id.desc())
        .limit(limit)
    ).all()
    return [Use(row.id, row.asked_at, row.query, row.helpful) for row in rows]
