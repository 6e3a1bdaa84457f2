"""The action server's database access: one engine, made on first use (never at import), a session per request."""

from __future__ import annotations

from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings, load_settings
from bot.storage.db import create_engine, create_sessionmaker


@cache
def settings() -> Settings:
    """The action server's configuration, read once."""
    return load_settings()


@cache
def sessions() -> async_sessionmaker[AsyncSession]:
    """The session factory on the app's database (the app migrates it on start)."""
    return create_sessionmaker(create_engine(settings().database_url))


def chat_id(sender_id: str) -> int | None:
    """The Telegram chat behind a Rasa conversation id (`tg-<chat_id>`)."""
    prefix, _, number = sender_id.partition("-")
    return int(number) if prefix == "tg" and number.lstrip("-").isdigit() else None
