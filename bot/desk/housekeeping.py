"""The round's housekeeping: nothing kept longer than it is needed. Handled Telegram updates leave the inbox after
INBOX_KEEP_DAYS; the bare records that carried a forget's confirmation go once it is delivered; with RETENTION_DAYS,
a customer nothing has happened with for that long (and with nothing open) is forgotten as /forget would: their
transcript deleted, their tickets anonymised, their ticket topics and Rasa tracker too. Counts of attempts (the
console's sign-in throttle: client addresses, names tried) go once they are attempt_counts.KEPT_AT_MOST old."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot import replies
from bot.config import Settings
from bot.storage import attempt_counts, inbox, privacy
from bot.storage.db import Sessions

log = logging.getLogger(__name__)
EVERY = timedelta(hours=1)  # days-long periods: once an hour is precise enough
BATCH_UPDATES, BATCH_CUSTOMERS = 10_000, 50  # at most this much in one pass: the round has other work


@dataclass(frozen=True)
class Housekept:
    """What one pass removed."""

    updates: int  # inbox updates past INBOX_KEEP_DAYS
    confirmations: int  # bare records of forgets confirmed
    customers: int  # customers past RETENTION_DAYS
    more: bool = False  # a batch was full: the next pass should not wait
    attempts: int = 0  # counts of attempts past attempt_counts.KEPT_AT_MOST


async def keep_house(
    settings: Settings, sessions: Sessions, now: datetime, delete_topics: Callable[[list[int]], Awaitable[None]]
) -> Housekept:
    """One pass, as of `now`."""
    updates = await sessions.run(inbox.prune, now, settings.inbox_keep_days, BATCH_UPDATES)
    attempts = await sessions.run(attempt_counts.prune, now - attempt_counts.KEPT_AT_MOST)
    confirmations = 0
    for chat in await sessions.read(privacy.bare_chats):
        confirmations += await sessions.run(privacy.drop_confirmation, chat, replies.FORGOTTEN)
    customers, waiting = 0, []
    if settings.retention_days is not None:
        waiting = await sessions.read(privacy.expired, now - timedelta(days=settings.retention_days))
        for user in waiting[:BATCH_CUSTOMERS]:
            topics, chats = await sessions.run(_expire, user)
            for chat in chats:
                await privacy.forget_rasa_tracker(settings.rasa_tracker_url, f"tg-{chat}")
            await delete_topics(topics)
            customers += 1
    if attempts:
        log.info("housekeeping: %d count(s) of attempts past %s", attempts, attempt_counts.KEPT_AT_MOST)
    if updates or confirmations or customers:
        log.info(
            "housekeeping: %d handled update(s) past %g days, %d forget confirmation(s), %d customer(s) past "
            "the retention period",
            updates,
            settings.inbox_keep_days,
            confirmations,
            customers,
        )
    full = updates >= BATCH_UPDATES or len(waiting) > BATCH_CUSTOMERS or attempts >= attempt_counts.PRUNE_AT_ONCE
    return Housekept(updates, confirmations, customers, full, attempts)


def _expire(session: Session, user: int) -> tuple[list[int], list[int]]:
    """A customer past the retention period, forgotten: their ticket topics and chats."""
    topics = privacy.ticket_topics(session, user)
    return topics, privacy.forget_customer(session, user, privacy.EXPIRED_DESCRIPTION)
