"""What `/metrics` reads from the database at each scrape: the queue, agents online, the outbox backlog and its age,
the live model, the trainings. Read once per scrape (`DatabaseFigures.refresh`), then reported by the collector.
The outbox backlog's age is the oldest undelivered reply's, from when it was recorded (`messages.created_at`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import clock, metrics
from bot.content.versions import live_version
from bot.storage import presence
from bot.storage.db import Sessions
from bot.storage.models import (
    DeliveryStatus,
    Handoff,
    HandoffStatus,
    Message,
    ModelVersion,
)

log = logging.getLogger(__name__)


@dataclass
class Figures:
    """One reading of the database."""

    queued: int = 0
    oldest_queued_at: datetime | None = None
    agents_online: int = 0
    outbox_pending: int = 0
    oldest_pending_at: datetime | None = None  # when the oldest undelivered reply was recorded
    live: tuple[int, str] | None = None  # the live version's id and fingerprint
    live_since: datetime | None = None
    trainings: dict[str, int] = field(default_factory=dict)  # model versions by status


def read(session: Session) -> Figures:
    """The figures, in one read-only transaction."""
    queued, oldest = session.execute(
        select(func.count(), func.min(Handoff.queued_at)).where(Handoff.status == HandoffStatus.QUEUED)
    ).one()
    pending = Message.status == DeliveryStatus.PENDING
    count, oldest_pending = session.execute(select(func.count(), func.min(Message.created_at)).where(pending)).one()
    live = live_version(session)
    trainings = session.execute(select(ModelVersion.status, func.count()).group_by(ModelVersion.status)).all()
    return Figures(
        queued=queued,
        oldest_queued_at=oldest,
        agents_online=presence.online_count(session),
        outbox_pending=count,
        oldest_pending_at=oldest_pending,
        live=(live.id, live.fingerprint) if live is not None else None,
        live_since=live.live_since if live is not None else None,
        trainings={getattr(status, "value", str(status)).lower(): n for status, n in trainings},
    )


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # SQLite gives naive UTC
        then = then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())


class DatabaseFigures(Collector):
    """A collector of the figures read at the last `refresh` (nothing before the first)."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._figures: Figures | None = None
        self._now = clock.now()

    async def refresh(self) -> None:
        """Read the figures now (called by each scrape before the registry is written out)."""
        try:
            figures = await self._sessions.read(read)
        except Exception:
            log.exception("metrics: the database could not be read; its figures are left out of this scrape")
            self._figures = None
            return
        self._now = clock.now()
        self._figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        f = self._figures
        if f is None:
            return
        yield GaugeMetricFamily("frontline_queue_length", "Customers waiting for a person", value=f.queued)
        yield GaugeMetricFamily(
            "frontline_queue_oldest_wait_seconds",
            "How long the longest-waiting customer in the queue has waited (0 with nobody waiting)",
            value=_age(self._now, f.oldest_queued_at),
        )
        yield GaugeMetricFamily("frontline_agents_online", "Agents online now", value=f.agents_online)
        yield GaugeMetricFamily(
            "frontline_outbox_pending", "Replies recorded, not yet delivered", value=f.outbox_pending
        )
        yield GaugeMetricFamily(
            "frontline_outbox_oldest_age_seconds",
            "How long the oldest undelivered reply has waited (0 with nothing pending)",
            value=_age(self._now, f.oldest_pending_at),
        )
        live = GaugeMetricFamily(
            "frontline_live_model_info",
            "The model version Rasa should run (1 for it)",
            labels=["version", "fingerprint"],
        )
        if f.live is not None:
            live.add_metric([str(f.live[0]), f.live[1]], 1)
        yield live
        yield GaugeMetricFamily(
            "frontline_live_model_age_seconds",
            "Since the live model was put live",
            value=_age(self._now, f.live_since),
        )
        trainings = GaugeMetricFamily(
            "frontline_trainings", "Model versions by status: trainings started and how they ended", labels=["status"]
        )
        for status, count in sorted(f.trainings.items()):
            trainings.add_metric([status], count)
        yield trainings


class Readiness(Collector):
    """`frontline_ready{check}`: 1 for each of `/ready`'s checks that passed at the last scrape (database, rasa,
    telegram), 0 for one that failed."""

    def __init__(self, results: Callable[[], Awaitable[dict[str, str]]]) -> None:
        self._results = results
        self._last: dict[str, str] = {}

    async def refresh(self) -> None:
        self._last = await self._results()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ready = GaugeMetricFamily("frontline_ready", "1 when the check of /ready passes, else 0", labels=["check"])
        for check, verdict in sorted(self._last.items()):
            ready.add_metric([check], 1 if verdict == "ok" else 0)
        yield ready


def scrape(
    sessions: Sessions, checks: Callable[[], Awaitable[dict[str, str]]]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The `GET /metrics` handler: the counters (of every worker), the database's figures and `/ready`'s checks, read
    now."""
    figures, readiness = DatabaseFigures(sessions), Readiness(checks)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(figures)
    registry.register(readiness)

    async def handle(request: web.Request) -> web.Response:
        await figures.refresh()
        await readiness.refresh()
        body = metrics.counted() + metrics.exposition(registry)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})

    return handle
