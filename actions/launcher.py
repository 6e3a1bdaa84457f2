"""`frontline actions`: rasa_sdk's action server, on loopback by default and answering only with the token.

rasa_sdk binds every interface (0.0.0.0) and has no option for another address, nor any authentication: anyone who
reaches it could run `action_submit_complaint` with another customer's conversation id. So we build its Sanic app
with `rasa_sdk.endpoint.create_app_for_serve` (its own plugins, ours among them, included) and serve it ourselves:
on `ACTIONS_HOST` (127.0.0.1 unless set), refusing with 401 every request (`/webhook`, `/health`, `/ready`, ...)
that does not carry `ACTIONS_TOKEN` as `Authorization: Bearer`; Rasa sends it from the endpoint's `headers:`.
`GET /metrics` asks for `METRICS_TOKEN` instead (Prometheus's; actions/metrics.py).
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any
from urllib.parse import urlparse

from rasa_sdk import utils
from rasa_sdk.constants import DEFAULT_ENDPOINTS_PATH
from rasa_sdk.endpoint import create_app_for_serve
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.worker.loader import AppLoader

from actions import metrics
from bot import logs, tokens
from bot.config import Settings, load_settings

log = logging.getLogger(__name__)
ACTIONS_PACKAGE = "actions"


def build_app(token: str, metrics_token: str = "") -> Sanic[Any, Any]:
    """The action server's app: rasa_sdk's routes and plugins, every request checked for the token first
    (`GET /metrics` for METRICS_TOKEN instead: Prometheus scrapes it, actions/metrics.py)."""
    executor = ActionExecutor()
    executor.register_package(ACTIONS_PACKAGE)
    # No CORS: only Rasa calls this server, never a browser.
    app = create_app_for_serve(executor, cors_origins=None, endpoints=DEFAULT_ENDPOINTS_PATH)

    async def refuse_without_token(request: Request) -> response.HTTPResponse | None:
        if tokens.accepts(request.headers.get("Authorization"), token):
            return None
        if request.path == metrics.PATH and metrics_token:
            return None  # the scrape checks METRICS_TOKEN itself
        log.warning("refused a request to %s from %s without the action server's token", request.path, request.ip)
        return response.json({"error": "the action server's token (ACTIONS_TOKEN) is missing or wrong"}, status=401)

    app.register_middleware(refuse_without_token, "request", priority=1000)  # before any other middleware
    if metrics_token:
        metrics.instrument(app, metrics_token, set(executor.actions))
    return app


def where(settings: Settings) -> tuple[str, int]:
    """The address the action server listens on: ACTIONS_HOST, and ACTION_SERVER_URL's port."""
    return settings.actions_host, urlparse(settings.action_server_url).port or 5055


def serve(settings: Settings) -> None:
    """Serve the actions until stopped."""
    logs.setup(settings.log_level)
    utils.update_sanic_log_level()
    host, port = where(settings)
    loader = AppLoader(factory=partial(build_app, tokens.token(settings, "actions"), tokens.token(settings, "metrics")))
    app = loader.load()
    app.prepare(host=host, port=port, workers=utils.number_of_sanic_workers(), motd=False)
    log.info("action server on http://%s:%d (token required)", host, port)
    Sanic.serve(primary=app, app_loader=loader)


def main() -> None:
    # rasa_sdk 3.21 warns on every start that it is newer than Rasa 3.6; it serves 3.6 correctly.
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning:rasa_sdk.utils")
    serve(load_settings())


if __name__ == "__main__":
    main()
