"""`frontline kb import DIR` and `frontline kb export DIR`: the help center's articles from and to a folder of files.

Import reads Markdown (`<slug>.md` with a front matter) and HTML pages, and creates or updates each article by its
slug (the file name); a file it cannot read is skipped with the reason and the others are imported. Export writes
every article as `<slug>.md`; importing that folder again changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from bot.config import Settings
from bot.content import articles
from bot.content.help_center import HelpArticle, read_folder, write_article
from bot.content.training import seed_articles
from bot.storage.db import Sessions, create_engine, create_sessionmaker, migrate

T = TypeVar("T")
README = "a README"


def _in_database(settings: Settings, work: Callable[[Sessions], Awaitable[T]]) -> T:
    """`work` on the migrated database, the repository's help center seeded first (as the app's start does)."""

    async def run() -> T:
        engine = create_engine(settings.database_url)
        sessions = create_sessionmaker(engine)
        try:
            await migrate(engine)
            await seed_articles(sessions)
            return await work(sessions)
        finally:
            sessions.dispose()
            await engine.dispose()

    return asyncio.run(run())


def import_folder(settings: Settings, folder: str) -> int:
    """Import a folder's articles; 0 when every article file was imported, 1 when some were skipped (the others are
    imported) or the folder cannot be read."""
    source = Path(folder).resolve()
    if not source.is_dir():
        print(f"Not imported: {source} is not a folder")
        return 1
    found = read_folder(source)
    who = f"frontline kb import {source}"[:255]
    report = _in_database(
        settings, lambda sessions: sessions.run(articles.import_articles, who, found.articles, found.skipped)
    )
    print(f"Imported {source}: {report.summary()}")
    for label, slugs in (("created", report.created), ("updated", report.updated)):
        if slugs:
            print(f"  {label}: {', '.join(slugs)}")
    for name, reason in report.skipped:
        print(f"  skipped {name}: {reason}")
    bad = [name for name, reason in report.skipped if not reason.startswith(README)]
    if bad:
        print(f"{len(bad)} file(s) were not imported: correct them and import the folder again.")
    return 1 if bad else 0


def export_folder(settings: Settings, folder: str) -> int:
    """Write every article as `<slug>.md` in the folder (made if need be); other files there are left alone."""
    target = Path(folder).resolve()

    async def stored(sessions: Sessions) -> list[HelpArticle]:
        return [articles.as_help_article(row) for row in await sessions.read(articles.all_articles)]

    items = _in_database(settings, stored)
    target.mkdir(parents=True, exist_ok=True)
    for item in items:
        path = target / f"{item.slug}.md"
        path.write_text(write_article(item), encoding="utf-8")
        print(path)
    print(f"Exported {len(items)} article(s) to {target}")
    return 0
