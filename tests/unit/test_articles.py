"""Help-center articles as content, on SQLite and PostgreSQL: added, edited and deleted with their checks, each change
audited and raising the revision; imports by slug; the seed on first start and its upgrades; use counts."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.content import articles, current, seeding
from bot.content.files import ContentError
from bot.content.help_center import HelpArticle, read_folder
from bot.content.training import prepare, seed_articles
from bot.rasa_runtime import ROOT
from bot.storage.kb_models import Article, ArticleUse
from bot.storage.models import AuditEntry

MOMENT = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
AURA = HelpArticle("pair-aura", "Pair the Aura", "Hold the button.", "https://help.example/pair", "Devices")
SIZES = HelpArticle("sizes", "Sizes", "S is 90 cm.", None, "Clothing")
CARE = HelpArticle("care", "Care", "Wash cold.")


async def _audit(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        return [(e.who, e.action, e.target) for e in entries]


async def _stored(sessions) -> dict[str, HelpArticle]:
    rows = await sessions.read(articles.all_articles)
    return {row.slug: articles.as_help_article(row) for row in rows}


async def test_an_article_is_added_edited_and_deleted_each_change_audited(sessions, clock) -> None:
    clock.set_to(MOMENT, frozen=True)
    start = await sessions.read(current.version)
    row = await sessions.run(
        articles.save, "ann", None, "", "  Pair the   Aura ", "\r\nHold the button.\r\n", "", " Devices "
    )
    assert (row.slug, row.title, row.body, row.url, row.category) == (
        "pair-the-aura",
        "Pair the Aura",
        "Hold the button.",
        None,
        "Devices",
    )
    assert (row.revision, row.created_at) == (1, MOMENT)
    clock.advance(timedelta(minutes=5))
    same = await sessions.run(articles.save, "bob", row.id, "", "Pair the Aura", "Hold the button.", None, "Devices")
    assert same.revision == 1  # nothing changed: no new revision, no audit entry
    edited = await sessions.run(
        articles.save, "bob", row.id, "pair-aura", "Pair the Aura", "Hold it 5 s.", "https://h.example/a", None
    )
    assert (edited.slug, edited.revision, edited.updated_at, edited.category) == (
        "pair-aura",
        2,
        MOMENT + timedelta(minutes=5),
        None,
    )
    assert await sessions.read(articles.revisions) == {row.id: 2}
    assert await sessions.run(articles.delete, "ann", row.id) == "Pair the Aura"
    assert await sessions.run(articles.delete, "ann", row.id) is None
    assert await _stored(sessions) == {}
    assert await _audit(sessions) == [
        ("ann", "add article", "pair-the-aura"),
        ("bob", "edit article", "pair-aura"),
        ("ann", "delete article", "pair-aura"),
    ]
    assert await sessions.read(current.version) == start + 3
    async with sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "edit article"))
        assert entry.before["body"] == "Hold the button." and entry.after["body"] == "Hold it 5 s."


@pytest.mark.parametrize(
    "slug, title, body, url, reason",
    [
        ("", "   ", "Body", None, "needs a title"),
        ("", "Title", " \n ", None, "needs a body"),
        ("", "Title", "Body", "javascript:alert(1)", "http:// or https://"),
        ("", "Title", "Body", "www.example.com", "http:// or https://"),
        ("Not A Slug", "Title", "Body", None, "lower-case letters"),
        ("sizes", "Other sizes", "Body", None, "already an article named sizes"),
    ],
)
async def test_a_bad_article_is_refused_politely_and_nothing_is_stored(sessions, slug, title, body, url, reason):
    await sessions.run(articles.save, "ann", None, "sizes", "Sizes", "S is 90 cm.", None, None)
    with pytest.raises(ContentError, match=reason):
        await sessions.run(articles.save, "ann", None, slug, title, body, url, None)
    assert list(await _stored(sessions)) == ["sizes"]


async def test_renaming_onto_another_articles_slug_is_refused(sessions) -> None:
    first = await sessions.run(articles.save, "ann", None, "a", "A", "a", None, None)
    await sessions.run(articles.save, "ann", None, "b", "B", "b", None, None)
    with pytest.raises(ContentError, match="already an article named b"):
        await sessions.run(articles.save, "ann", first.id, "b", "A", "a", None, None)
    with pytest.raises(ContentError, match="no longer exists"):
        await sessions.run(articles.save, "ann", 9999, "c", "C", "c", None, None)


async def test_an_import_creates_updates_and_leaves_alone_by_slug(sessions) -> None:
    await sessions.run(articles.import_articles, "cli", [AURA, SIZES])
    changed = HelpArticle("sizes", "Sizes", "S is 92 cm.", None, "Clothing")
    report = await sessions.run(articles.import_articles, "cli", [AURA, changed, CARE], [("x.png", "not Markdown")])
    assert (report.created, report.updated, report.unchanged, report.skipped) == (
        ["care"],
        ["sizes"],
        ["pair-aura"],
        [("x.png", "not Markdown")],
    )
    assert report.summary() == "1 created, 1 updated, 1 unchanged, 1 skipped"
    assert await _stored(sessions) == {"pair-aura": AURA, "sizes": changed, "care": CARE}
    again = await sessions.run(articles.import_articles, "cli", [AURA, changed, CARE])
    assert again.unchanged == ["pair-aura", "sizes", "care"] and not again.created + again.updated
    assert [a for _, a, _ in await _audit(sessions)].count("import articles") == 2  # none for the no-op


async def test_the_list_counts_uses_and_ratings_per_article(sessions) -> None:
    aura = await sessions.run(articles.save, "ann", None, "pair-aura", "Pair", "Hold.", None, "Devices")
    sizes = await sessions.run(articles.save, "ann", None, "sizes", "Sizes", "S.", None, None)
    async with sessions.begin() as session:
        for helpful in (True, True, False, None):
            session.add(ArticleUse(article_id=aura.id, query="how do i pair", helpful=helpful))
    shown = {row.slug: (row.used, row.helpful, row.not_helpful) for row in await sessions.read(articles.listed)}
    assert shown == {"pair-aura": (4, 2, 1), "sizes": (0, 0, 0)}
    assert [row.slug for row in await sessions.read(articles.listed)] == ["pair-aura", "sizes"]  # uncategorised last
    assert sizes.category is None


async def test_the_seed_is_brought_in_on_first_start_and_upgraded_leaving_admins_edits(sessions, tmp_path) -> None:
    assert await sessions.run(seeding.ensure_articles_seeded, []) == "current"  # no help center: nothing happens
    assert await sessions.run(seeding.ensure_articles_seeded, [AURA, SIZES, CARE]) == "seeded"
    assert await sessions.run(seeding.ensure_articles_seeded, [AURA, SIZES, CARE]) == "current"
    stored = await sessions.read(articles.all_articles)
    ids = {row.slug: row.id for row in stored}
    await sessions.run(articles.save, "ann", ids["sizes"], "sizes", "Sizes", "Ours: S is 91 cm.", None, "Clothing")
    await sessions.run(articles.delete, "ann", ids["care"])
    await sessions.run(articles.save, "ann", None, "returns", "Returns", "Admins' own.", None, None)
    new_aura = HelpArticle("pair-aura", "Pair the Aura", "Hold the button for 5 s.", AURA.url, "Devices")
    new_sizes = HelpArticle("sizes", "Sizes", "Seed: S is 92 cm.", None, "Clothing")
    warranty = HelpArticle("warranty", "Warranty", "Two years.")
    assert await sessions.run(seeding.ensure_articles_seeded, [new_aura, new_sizes, CARE, warranty]) == "upgraded"
    assert await _stored(sessions) == {
        "pair-aura": new_aura,
        "sizes": HelpArticle("sizes", "Sizes", "Ours: S is 91 cm.", None, "Clothing"),
        "returns": HelpArticle("returns", "Returns", "Admins' own.", None, None),
        "warranty": warranty,
    }
    assert (await sessions.read(articles.revisions))[ids["pair-aura"]] == 2
    assert await sessions.run(seeding.ensure_articles_seeded, [warranty]) == "upgraded"
    assert set(await _stored(sessions)) == {"sizes", "returns", "warranty"}  # the seed's own left with it


async def test_the_start_seeds_the_repositorys_folder_and_survives_a_missing_one(sessions, tmp_path: Path) -> None:
    assert await seed_articles(sessions, tmp_path) == "current"
    (tmp_path / "help_center").mkdir()
    assert await seed_articles(sessions, tmp_path) == "current"
    (tmp_path / "help_center" / "README.md").write_text("# Our help center\n")
    (tmp_path / "help_center" / "sizes.md").write_text("---\ntitle: Sizes\ncategory: Clothing\n---\nS is 90 cm.\n")
    (tmp_path / "help_center" / "broken.md").write_text("no title\n")
    assert await seed_articles(sessions, tmp_path) == "seeded"
    assert await _stored(sessions) == {"sizes": read_folder(tmp_path / "help_center").articles[0]}
    async with sessions() as session:
        assert (await session.scalar(select(Article))).seed == {
            "title": "Sizes",
            "body": "S is 90 cm.",
            "url": None,
            "category": "Clothing",
        }


async def test_the_apps_start_seeds_the_help_center_with_the_rest_of_the_content(sessions, tmp_path: Path) -> None:
    root = tmp_path / "repository"
    shutil.copytree(ROOT / "nlu", root / "nlu")
    shutil.copy(ROOT / "domain.yml", root / "domain.yml")
    (root / "help_center").mkdir()
    (root / "help_center" / "care.md").write_text("---\ntitle: Care\n---\nWash cold.\n")
    await prepare(load_settings({"FRONTLINE_VAR": str(tmp_path)}), sessions, root)
    assert await _stored(sessions) == {"care": CARE}
    assert "faq/delivery_time" in (await sessions.read(current.load)).intents
