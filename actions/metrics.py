"""The action server's Prometheus metrics: the actions Rasa ran here, how long each took, the handoffs they asked for.

`instrument(app, token)` (from `actions/launcher.py`) gives the Sanic app its own registry, times every `/webhook`
call and serves `GET /metrics` to whoever carries METRICS_TOKEN (the launcher's token check lets it through to here).
With several Sanic workers (ACTION_SERVER_SANIC_WORKERS) each keeps its own figures: run one, as the default does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import BaseHTTPResponse

from bot import tokens

PATH = "/metrics"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A help-center search (encode the query, rank, decide, trim): the goal is p95 <= 50 ms, so 5 ms steps to there.
SEARCH_BUCKETS = (*(i / 1000 for i in range(5, 105, 5)), 0.25, 0.5, 1.0)


class ActionMetrics:
    """The counters of one action server, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.actions = Counter(
            "frontline_actions",
            "Actions run, by name and outcome (ok, rejected, failed)",
            ["action", "outcome"],
            registry=r,
        )
        self.seconds = Histogram(
            "frontline_action_seconds", "Time to run an action, by name", ["action"], buckets=BUCKETS, registry=r
        )
        self.handoffs = Counter(
            "frontline_action_handoffs", "Handoffs to a person the actions asked for, by reason", ["reason"], registry=r
        )
        self.search_seconds = Histogram(
            "frontline_help_center_search_seconds",
            "Time of a help-center search (the query encoded, ranked, decided, trimmed), by outcome",
            ["outcome"],
            buckets=SEARCH_BUCKETS,
            registry=r,
        )

    def ran(self, action: str, status: int, seconds: float, body: bytes | None) -> None:
        """Count one `/webhook` call: its action, how it ended, its time, the handoffs in its answer."""
        outcome = "ok" if status < 400 else "rejected" if status < 500 else "failed"
        self.actions.labels(action, outcome).inc()
        self.seconds.labels(action).observe(seconds)
        if status < 400:
            for reason in handoff_reasons(body):
                self.handoffs.labels(reason).inc()


_current: ActionMetrics | None = None


def searched(seconds: float, answered: bool) -> None:
    """A help-center search took `seconds` (counted once `instrument` has set the metrics up)."""
    if _current is not None:
        _current.search_seconds.labels("answered" if answered else "declined").observe(seconds)


def handoff_reasons(body: bytes | None) -> list[str]:
    """The reasons of the handoff payloads in an action server's answer."""
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return []
    replies = answer.get("responses") if isinstance(answer, dict) else None
    found = []
    for reply in replies if isinstance(replies, list) else []:
        handoff = (reply.get("custom") or {}).get("handoff") if isinstance(reply, dict) else None
        if isinstance(handoff, dict):
            found.append(str(handoff.get("reason") or "customer_request")[:32])
    return found


def instrument(app: Sanic[Any, Any], token: str, known: Collection[str]) -> ActionMetrics:
    """Count the app's `/webhook` calls (by action, one of `known` or "unknown"; a call refused for want of the
    token is not counted) and serve `GET /metrics` (METRICS_TOKEN as Bearer)."""
    global _current
    metrics = _current = ActionMetrics()

    async def started(request: Request) -> None:
        request.ctx.started = time.monotonic()

    async def finished(request: Request, answer: BaseHTTPResponse) -> None:
        if request.path != "/webhook" or request.method != "POST" or answer.status == 401:
            return
        try:
            action = str((request.json or {}).get("next_action"))
        except Exception:  # noqa: BLE001 (an unreadable body is counted, not a crash)
            action = ""
        action = action if action in known else "unknown"
        seconds = time.monotonic() - getattr(request.ctx, "started", time.monotonic())
        metrics.ran(action, answer.status, seconds, answer.body)

    async def scrape(request: Request) -> response.HTTPResponse:
        if not tokens.accepts(request.headers.get("Authorization"), token):
            return response.json({"error": "the token (METRICS_TOKEN) is missing or wrong"}, status=401)
        return response.raw(generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.register_middleware(started, "request")
    app.register_middleware(finished, "response")
    app.add_route(scrape, PATH, methods=["GET"], name="frontline_metrics")
    return metrics
