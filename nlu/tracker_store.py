"""Rasa's SQL tracker store, made to outlive a database restart (runs in `.venv-rasa`).

Rasa 3.6's `SQLTrackerStore` keeps pooled connections without checking them: after PostgreSQL restarts, the
first request fails, and Rasa's fail-safe wrapper then answers from an empty in-memory tracker, so the customer's
conversation (a half-told complaint) is forgotten. This store checks a connection before using it
(`pool_pre_ping`) and, while the database cannot be reached, tries again for a while (without blocking the event
loop) before giving up.

    tracker_store:
      type: nlu.tracker_store.ResilientSQLTrackerStore
      (the SQLTrackerStore's own settings)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 2.0, 2.0)  # about 8 s in all: a database restart, not an outage


class ResilientSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore whose connections are checked before use and whose reads and writes wait out a restart."""

    def __init__(self, domain: Any = None, **kwargs: Any) -> None:
        super().__init__(domain, **kwargs)
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, **create_engine_kwargs(url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    async def _again(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        for delay in (*RETRY_DELAYS, None):
            try:
                return await call()
            except sa.exc.OperationalError as exc:  # the database is away; anything else is a real error
                if delay is None:
                    raise
                log.warning("tracker store: %s failed (%s); again in %.2f s", what, exc.orig or exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def save(self, tracker: Any) -> None:
        await self._again("saving", lambda: super(ResilientSQLTrackerStore, self).save(tracker))

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> Any:
        return await self._again(
            "reading",
            lambda: super(ResilientSQLTrackerStore, self)._retrieve(sender_id, fetch_events_from_all_sessions),
        )

    async def keys(self) -> Any:
        return await self._again("listing", lambda: super(ResilientSQLTrackerStore, self).keys())
