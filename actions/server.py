"""What the action server runs besides answering Rasa: the retry of complaints kept while the database was down,
the help center's index (loaded, then kept in step with the articles: actions/help_center.py), a readiness
endpoint, and our log format with the conversation id on every line.

rasa_sdk builds its Sanic app itself; its plugin hook (`attach_sanic_app_extensions`) is the supported way to add
to it. `actions/__init__.py` registers this module when rasa_sdk loads the actions package.
"""

from __future__ import annotations

from typing import Any

import pluggy
from sanic import Sanic, response
from sanic.request import Request
from sqlalchemy import text

from actions.db import sessions, settings
from actions.help_center import live
from actions.tickets import pending, store_pending
from bot import logs

hookimpl = pluggy.HookimplMarker("rasa_sdk")
TASK_NAME = "frontline-pending-complaints"
HELP_CENTER_TASK = "frontline-help-center"


@hookimpl
def attach_sanic_app_extensions(app: Sanic[Any, Any]) -> None:
    """Start retrying waiting complaints once the server is up (and so again after every restart)."""

    async def start_retrying(app: Sanic[Any, Any]) -> None:
        app.add_task(pending().run(sessions(), store_pending, settings().ticket_retry_seconds), name=TASK_NAME)
        app.add_task(live().run(), name=HELP_CENTER_TASK)

    async def our_logging(app: Sanic[Any, Any]) -> None:
        # rasa_sdk set up its own logging before; LOG_FORMAT and the conversation id apply here too.
        logs.setup(settings().log_level)

    async def bind_conversation(request: Request) -> None:
        body = request.json if request.method == "POST" and request.path == "/webhook" else None
        logs.bind_conversation(((body or {}).get("tracker") or {}).get("sender_id"))

    app.register_listener(start_retrying, "after_server_start")
    app.register_listener(our_logging, "before_server_start")
    app.register_middleware(bind_conversation, "request")
    app.add_route(ready, "/ready", methods=["GET"])


async def ready(request: Request) -> response.HTTPResponse:
    """Readiness: the database answers, and how many complaints wait for it (rasa_sdk's /health says the server is up).
    The help center's state is said too ("loading", "ready: N articles", "off: why"), but never makes it unready:
    without it the bot behaves as it did before it had one."""
    waiting = len(pending().waiting())
    help_center = live().status()
    try:
        async with sessions()() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 (any failure to reach the database is the finding)
        body = {
            "ready": False,
            "checks": {"database": f"{type(exc).__name__}: {exc}"},
            "pending_complaints": waiting,
            "help_center": help_center,
        }
        return response.json(body, status=503)
    body = {"ready": True, "checks": {"database": "ok"}, "pending_complaints": waiting, "help_center": help_center}
    return response.json(body)
