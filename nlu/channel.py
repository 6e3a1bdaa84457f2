"""Rasa's REST channel behind a token (runs in `.venv-rasa`).

`rasa run --auth-token` guards Rasa's HTTP API but not its input channels: anyone who reaches Rasa could chat as any
customer through `/webhooks/rest/webhook`. This channel is Rasa's REST channel (same name, same paths, same answers)
that first refuses with 401 every request without `Authorization: Bearer <RASA_TOKEN>`, compared in constant time.
The credentials file the app writes (bot/rasa_runtime.py) names it and holds the token:

    nlu.channel.TokenRestInput:
      token: ...
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

log = logging.getLogger(__name__)


def accepts(header: str | None, expected: str) -> bool:
    """Whether an `Authorization` header carries the expected token (never for an empty one)."""
    return bool(expected) and hmac.compare_digest((header or "").encode(), f"Bearer {expected}".encode())


class TokenRestInput(RestInput):
    """The REST channel, answering only requests that carry the token."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> TokenRestInput:
        return cls(str((credentials or {}).get("token") or ""))

    def __init__(self, token: str) -> None:
        self.token = token  # empty: every request is refused

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def refuse_without_token(request: Request) -> response.HTTPResponse | None:
            if accepts(request.headers.get("Authorization"), self.token):
                return None
            log.warning("refused a request to %s without Rasa's token", request.path)
            return response.json({"error": "Rasa's token (RASA_TOKEN) is missing or wrong"}, status=401)

        return blueprint
