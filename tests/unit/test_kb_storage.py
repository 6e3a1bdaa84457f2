"""The help center's tables on SQLite and PostgreSQL: migration 0015 over a database of 0014 and back, timestamps
from the app's clock, and article uses that go with the article or with the customer's conversation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, inspect, select
from sqlalchemy.exc import IntegrityError

from bot.storage.db import MIGRATIONS, create_engine
from bot.storage.kb_models import Article, ArticleUse
from bot.storage.models import Conversation, Customer
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

MOMENT = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def _to(connection, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


def _tables(connection) -> set[str]:
    return set(inspect(connection).get_table_names())


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_0015_upgrades_a_database_of_0014_and_downgrades_back(kind: str, tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}" if kind == "sqlite" else await _fresh_postgres_database()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_to, "0014")
            assert "articles" not in await connection.run_sync(_tables)
        async with engine.begin() as connection:
            await connection.run_sync(_to, "head")
            assert {"articles", "article_uses"} <= await connection.run_sync(_tables)
        async with engine.begin() as connection:
            await connection.run_sync(_to, "0014", down=True)
            tables = await connection.run_sync(_tables)
            assert "articles" not in tables and "article_uses" not in tables and "handoffs" in tables
    finally:
        await engine.dispose()
        if kind == "postgres":
            await _drop_postgres_database(url)


async def test_articles_are_stamped_by_the_apps_clock_and_slugs_are_unique(sessions, clock) -> None:
    clock.set_to(MOMENT, frozen=True)
    async with sessions.begin() as session:
        session.add(Article(slug="pair-aura", title="Pair the Aura", body="Hold the button.", url=None))
    async with sessions() as session:
        article = await session.scalar(select(Article))
        assert (article.created_at, article.updated_at, article.revision) == (MOMENT, MOMENT, 1)
        assert article.category is None and article.seed is None
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            session.add(Article(slug="pair-aura", title="Another", body="x"))


async def test_uses_go_with_their_article_and_with_the_customers_conversation(sessions, clock) -> None:
    clock.set_to(MOMENT, frozen=True)
    async with sessions.begin() as session:
        customer = Customer(telegram_user_id=77, first_name="Maya")
        session.add(customer)
        await session.flush()
        conversation = Conversation(customer_id=customer.id, chat_id=77)
        kept, other = Article(slug="a", title="A", body="a"), Article(slug="b", title="B", body="b")
        session.add_all([conversation, kept, other])
        await session.flush()
        session.add_all(
            [
                ArticleUse(article_id=kept.id, conversation_id=conversation.id, query="my zebra lamp", helpful=False),
                ArticleUse(article_id=kept.id, conversation_id=None, query="sizes?", helpful=True),
                ArticleUse(article_id=other.id, conversation_id=None, query="care?"),
            ]
        )
    async with sessions() as session:
        uses = (await session.scalars(select(ArticleUse).order_by(ArticleUse.id))).all()
        assert [(u.query, u.helpful, u.asked_at) for u in uses] == [
            ("my zebra lamp", False, MOMENT),
            ("sizes?", True, MOMENT),
            ("care?", None, MOMENT),
        ]
    async with sessions.begin() as session:
        await session.execute(delete(Conversation))
        await session.execute(delete(Article).where(Article.slug == "b"))
    async with sessions() as session:
        assert (await session.scalars(select(ArticleUse.query))).all() == ["sizes?"]
