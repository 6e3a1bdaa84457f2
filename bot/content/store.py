"""The content's functions for callers outside the console and content that hold an AsyncSession (bench/deploy.py).

The content's work is plain functions of a Session, by concern: `current` (the content as it is, its version, the
record of a change), `edits` (admins' edits), `seeding` (the repository's files as the seed), `usages`. Each function
here runs one of them in the caller's AsyncSession.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.content import current, edits
from bot.content.files import Content


async def load(session: AsyncSession) -> Content:
    """current.load, in an AsyncSession."""
    return await session.run_sync(current.load)


async def add_intent(session: AsyncSession, name: str, examples: list[str], who: str, answer: str | None = None) -> int:
    """edits.add_intent, in an AsyncSession."""
    return await session.run_sync(edits.add_intent, name, examples, who, answer)


async def set_response(session: AsyncSession, name: str, variations: list[dict[str, Any]], who: str) -> int:
    """edits.set_response, in an AsyncSession."""
    return await session.run_sync(edits.set_response, name, variations, who)


async def delete_intent(session: AsyncSession, name: str, who: str) -> int:
    """edits.delete_intent, in an AsyncSession."""
    return await session.run_sync(edits.delete_intent, name, who)
