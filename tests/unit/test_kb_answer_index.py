"""The action server's help-center index on SQLite and PostgreSQL, with the real MiniLM encoder and a few of the
shop's articles: loaded from the database, its vectors stored and reused by a restart or a second server (the
encoder is not asked again), and an admin's edit, addition or deletion searchable after one poll of the revisions."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from actions.help_center import LiveHelpCenter
from bot.content import articles
from bot.content.help_center import HelpArticle, read_folder
from bot.storage.db import create_engine, create_sessionmaker, migrate
from bot.storage.kb_models import PassageVector
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database
from tests.unit.kb_answer_support import ROOT, WHO, CountingEncoder, add_articles, shop_articles
from tests.unit.test_kb_storage import _tables, _to

WASH = "how do I wash my merino jumper"
WRAP = "can you wrap my order as a present and add a card"


def server(sessions, encoder: CountingEncoder, poll_seconds: float = 2.0) -> LiveHelpCenter:
    return LiveHelpCenter(sessions, encoder=lambda: encoder, model_id="test-minilm", poll_seconds=poll_seconds)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_0016_adds_the_passage_vectors_over_0015_and_downgrades_back(kind: str, tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}" if kind == "sqlite" else await _fresh_postgres_database()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_to, "0015")
            assert "passage_vectors" not in await connection.run_sync(_tables)
        async with engine.begin() as connection:
            await connection.run_sync(_to, "head")
            assert "passage_vectors" in await connection.run_sync(_tables)
        async with engine.begin() as connection:
            await connection.run_sync(_to, "0015", down=True)
            tables = await connection.run_sync(_tables)
            assert "passage_vectors" not in tables and "articles" in tables
    finally:
        await engine.dispose()
        if kind == "postgres":
            await _drop_postgres_database(url)


async def _stored_hashes(sessions) -> set[str]:
    async with sessions() as session:
        return set((await session.scalars(select(PassageVector.text_hash))).all())


async def _stored_vectors(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(PassageVector))


async def test_the_index_loads_the_articles_and_stores_their_vectors(sessions) -> None:
    ids = await sessions.run(add_articles)
    encoder = CountingEncoder()
    center = server(sessions, encoder)
    assert center.status() == "loading" and await center.answer(WASH) is None
    await center.load()
    assert center.status() == f"ready: {len(ids)} articles"
    assert len(encoder.asked) == len(set(encoder.asked)) > len(ids)  # titles and passages, each once
    assert await _stored_vectors(sessions) == len(encoder.asked)
    answer = await center.answer(WASH)
    assert answer is not None and answer.answered and answer.hit is not None
    assert int(answer.hit.article_id) == ids["care-clothes"]
    assert center.article(ids["care-clothes"]) == (
        "Washing and caring for cotton, linen and wool clothes",
        "https://help.northwind.example/articles/care-clothes",
    )


async def test_a_restart_and_a_second_server_encode_nothing_stored(sessions) -> None:
    ids = await sessions.run(add_articles)
    first = CountingEncoder()
    await server(sessions, first).load()
    stored = await _stored_vectors(sessions)
    for _ in range(2):  # a restart of the same server, then another server on the same database
        again = CountingEncoder()
        center = server(sessions, again)
        await center.load()
        assert again.asked == []
        answer = await center.answer(WASH)
        assert again.asked == [WASH]  # only the query
        assert answer is not None and answer.hit is not None and int(answer.hit.article_id) == ids["care-clothes"]
    assert await _stored_vectors(sessions) == stored


async def test_an_added_article_is_searchable_after_one_poll_and_only_it_is_encoded(sessions) -> None:
    await sessions.run(add_articles)
    encoder = CountingEncoder()
    center = server(sessions, encoder)
    await center.load()
    before = await center.answer(WRAP)
    assert before is not None and not (before.answered and before.hit and before.hit.title.startswith("Gift"))
    asked = len(encoder.asked)
    wrap = _gift_wrapping()
    await sessions.run(articles.import_articles, WHO, [wrap])
    assert await center.refresh() is True
    new = encoder.asked[asked:]
    assert new[0] == wrap.title and len(new) == 1 + len(center.center.index.passages(str(_id(center, wrap.title))))
    after = await center.answer(WRAP)
    assert after is not None and after.answered and after.hit is not None and after.hit.title == wrap.title
    assert await center.refresh() is False  # nothing changed since


async def test_an_edit_and_a_deletion_are_followed_at_the_next_poll(sessions) -> None:
    ids = await sessions.run(add_articles)
    encoder = CountingEncoder()
    center = server(sessions, encoder)
    await center.load()
    care = shop_articles()["care-clothes"]
    extra = "Our alpaca beanies are hand washed in cold water with a drop of wool shampoo, then dried flat."
    await sessions.run(
        articles.save, WHO, ids["care-clothes"], care.slug, care.title, care.body + "\n\n" + extra, care.url, None
    )
    asked = len(encoder.asked)
    assert await center.refresh() is True
    new = encoder.asked[asked:]
    assert len(new) == 1 and extra in new[0]  # the new paragraph only: the title and the others are known
    assert any(extra in p.text for p in center.center.index.passages(str(ids["care-clothes"])))
    await sessions.run(articles.delete, WHO, ids["price-match"])
    assert await center.refresh() is True
    assert str(ids["price-match"]) not in center.center.index
    assert center.status() == f"ready: {len(ids) - 1} articles"
    # The stored vectors are exactly those of the texts the articles still have: the deleted article's are gone,
    # the edited article's old paragraphs too (none was dropped by the edit here, so only the deletion shows).
    assert await _stored_hashes(sessions) == set(center.center.index.export_vectors())


async def test_an_edit_that_drops_a_paragraph_deletes_its_vector_and_a_restart_encodes_nothing(sessions) -> None:
    ids = await sessions.run(add_articles, ["care-clothes", "price-match"])
    center = server(sessions, CountingEncoder())
    await center.load()
    care = shop_articles()["care-clothes"]
    first, rest = care.body.split("\n\n", 1)
    await sessions.run(articles.save, WHO, ids["care-clothes"], care.slug, care.title, rest, care.url, None)
    before = await _stored_hashes(sessions)
    assert await center.refresh() is True
    after = await _stored_hashes(sessions)
    assert after < before and after == set(center.center.index.export_vectors())
    again = CountingEncoder()
    await server(sessions, again).load()
    assert again.asked == []
    assert first.strip()  # the paragraph dropped was a real one


async def test_the_poll_loop_picks_up_an_edit_and_says_why_it_is_off(sessions) -> None:
    ids = await sessions.run(add_articles, ["care-clothes", "price-match"])
    encoder = CountingEncoder()
    center = server(sessions, encoder, poll_seconds=0.01)
    task = asyncio.create_task(center.run())
    try:
        for _ in range(3000):
            if center.ready:
                break
            await asyncio.sleep(0.01)
        assert center.status() == "ready: 2 articles"
        await sessions.run(articles.delete, WHO, ids["price-match"])
        for _ in range(3000):
            if str(ids["price-match"]) not in center.center.index:
                break
            await asyncio.sleep(0.01)
        assert center.status() == "ready: 1 articles"
    finally:
        task.cancel()

    def missing() -> CountingEncoder:
        raise FileNotFoundError("no weights in var/encoders")

    broken = LiveHelpCenter(sessions, encoder=missing, poll_seconds=0.01)
    task = asyncio.create_task(broken.run())
    try:
        for _ in range(3000):
            if broken.error:
                break
            await asyncio.sleep(0.01)
        assert broken.status() == "off: FileNotFoundError: no weights in var/encoders"
        assert await broken.answer(WRAP) is None
    finally:
        task.cancel()


def _gift_wrapping() -> HelpArticle:
    return next(a for a in read_folder(ROOT / "help_center").articles if a.slug == "gift-wrapping")


def _id(center: LiveHelpCenter, title: str) -> int:
    return next(article_id for article_id, (found, _) in center.titles.items() if found == title)


async def test_before_the_app_migrated_the_database_it_keeps_loading_and_then_loads(tmp_path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'early.db'}")
    sessions = create_sessionmaker(engine)
    center = server(sessions, CountingEncoder(), poll_seconds=0.01)
    task = asyncio.create_task(center.run())
    try:
        for _ in range(3000):
            if center.error:
                break
            await asyncio.sleep(0.01)
        assert "no such table: articles" in center.error and center.status() == "loading"
        await migrate(engine)
        await sessions.run(add_articles, ["care-clothes"])
        # The load may come first, from the migrated but still empty database: the next poll then finds the article.
        for _ in range(3000):
            if center.status() == "ready: 1 articles":
                break
            await asyncio.sleep(0.01)
        assert center.status() == "ready: 1 articles" and center.error is None
    finally:
        task.cancel()
        sessions.dispose()
        await engine.dispose()
