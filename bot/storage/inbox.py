"""The inbox: every Telegram update, stored before it is confirmed, processed once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.db import database_failed
from bot.storage.models import InboxStatus, InboxUpdate, utcnow


async def store(session: AsyncSession, *, update_id: int, chat_id: int | None, payload: dict[str, Any]) -> bool:
    """Record an update unless it is already there; True when it is new."""
    if await session.get(InboxUpdate, update_id) is not None:
        return False
    session.add(InboxUpdate(update_id=update_id, chat_id=chat_id, payload=payload))
    await session.flush()
    return True


async def pending(session: AsyncSession) -> list[InboxUpdate]:
    """Updates stored but not yet processed, oldest first."""
    rows = await session.scalars(
        select(InboxUpdate).where(InboxUpdate.status == InboxStatus.PENDING).order_by(InboxUpdate.update_id)
    )
    return list(rows)


async def newest_update_id(session: AsyncSession) -> int | None:
    """The highest update id ever stored, to resume polling after it."""
    return await session.scalar(select(InboxUpdate.update_id).order_by(InboxUpdate.update_id.desc()).limit(1))


async def mark_sent_to_rasa(session: AsyncSession, update_id: int) -> bool:
    """Claim the one permitted trip to Rasa for this update; False when it was already taken."""
    result = await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id == update_id, InboxUpdate.rasa_sent_at.is_(None))
        .values(rasa_sent_at=utcnow())
    )
    return result.rowcount == 1


async def mark_done(session: AsyncSession, update_id: int) -> None:
    """The update has been fully handled; unless the database failed while it was (then it stays pending, to be
    handled again: see bot/telegram/dispatch.py)."""
    if database_failed():
        return
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id == update_id)
        .values(status=InboxStatus.DONE, processed_at=utcnow())
    )
