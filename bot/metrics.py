"""The app's Prometheus metrics: one registry per `AppMetrics`, its counters moved where things happen.

Features call `current()` and count (`current().updates.labels("message").inc()`); this module imports nothing of
them. What is read from the database at scrape time (the queue, the outbox backlog, the live model, trainings) is
`bot/metrics_figures.py`'s, and `GET /metrics` (behind METRICS_TOKEN) is served by `bot/app.py` with `exposition`.
A test installs a fresh `AppMetrics` with `use` so that nothing counted by another test is seen.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "AppMetrics", "counted", "current", "exposition", "for_workers", "use"]

# Several app workers (APP_WORKERS): each counts into files in this directory, and a scrape, whichever worker
# answers it, sums them (prometheus_client's multiprocess mode, which reads it when a process starts).
WORKERS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"

# Rasa answers in tens of milliseconds to seconds (RASA_TIMEOUT is 10 s by default).
RASA_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AppMetrics:
    """The counters and histograms of one app process, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.updates = Counter(
            "frontline_updates", "Telegram updates stored, by kind (message, callback_query, ...)", ["kind"], registry=r
        )
        self.messages_out = Counter(
            "frontline_messages_sent", "Messages Telegram accepted from the outbox, by kind", ["kind"], registry=r
        )
        self.rasa_seconds = Histogram(
            "frontline_rasa_seconds",
            "Time from sending a customer's message to Rasa to its answer, by outcome (answered, unavailable)",
            ["outcome"],
            buckets=RASA_BUCKETS,
            registry=r,
        )
        self.handoffs = Counter("frontline_handoffs", "Requests for a person opened, by reason", ["reason"], registry=r)
        self.retry_after = Counter(
            "frontline_telegram_retry_after",
            "Telegram's 429 answers (retry after), per chat kind",
            ["chat"],
            registry=r,
        )

    def handoff(self, reason: str) -> None:
        """A request for a person was opened."""
        self.handoffs.labels(reason).inc()


_current = AppMetrics()


def current() -> AppMetrics:
    """This process's metrics."""
    return _current


def use(metrics: AppMetrics) -> AppMetrics:
    """Make `metrics` this process's (a test's fresh set); returns the one it replaces."""
    global _current
    previous, _current = _current, metrics
    return previous


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus's text format."""
    return generate_latest(registry)


def counted() -> bytes:
    """This process's counters in Prometheus's text format; with several workers, every worker's, summed."""
    directory = os.environ.get(WORKERS_DIRECTORY)
    if not directory:
        return exposition(current().registry)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return exposition(registry)


def for_workers(directory: Path) -> dict[str, str]:
    """The environment that makes workers count together in `directory`, emptied first (counts of an earlier run
    would be summed in); a worker that dies and starts again keeps adding to the sums."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return {WORKERS_DIRECTORY: str(directory)}
