"""Talking to the Rasa server over HTTP: the REST channel, and its tracker for recovery."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import aiohttp

log = logging.getLogger(__name__)


class RasaButton(TypedDict):
    """A quick reply Rasa asks us to show."""

    title: str
    payload: str


class RasaReply(TypedDict, total=False):
    """One bot message as Rasa's REST channel returns it."""

    recipient_id: str
    text: str
    buttons: list[RasaButton]
    image: str
    custom: dict[str, Any]


class RasaUnavailable(Exception):
    """Rasa could not be reached, timed out, or failed; the message did not get an answer."""


def escape_customer_text(text: str) -> str:
    """Customer text that Rasa can never mistake for an `/intent{...}` command."""
    stripped = text.strip()
    while stripped.startswith("/"):
        stripped = stripped[1:].lstrip()
    return stripped


class RasaClient:
    """A small client for the parts of Rasa's HTTP API the app uses."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Release the connection pool."""
        if self._session is not None:
            await self._session.close()

    async def send(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[RasaReply]:
        """Send one message through the REST channel and return Rasa's replies."""
        url = f"{self._base_url}/webhooks/rest/webhook"
        body = {"sender": sender_id, "message": text, "metadata": metadata}
        try:
            async with self._http().post(url, json=body) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status}")
                replies = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RasaUnavailable(f"Rasa is unreachable at {self._base_url}: {exc!r}") from exc
        if not isinstance(replies, list):
            raise RasaUnavailable(f"Rasa answered something that is not a list: {replies!r:.200}")
        return replies

    async def status(self) -> str | None:
        """None when Rasa is up with a model loaded; else what is wrong."""
        try:
            async with self._http().get(f"{self._base_url}/status") as response:
                if response.status != 200:
                    return f"Rasa answered HTTP {response.status} at {self._base_url}/status"
                status = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"Rasa is unreachable at {self._base_url}: {exc!r}"
        return None if status.get("model_file") else "Rasa runs but has no model loaded"

    async def restart(self, sender_id: str) -> bool:
        """Start the bot afresh for a conversation a person handled (resumed, no stale form or slots); False on failure."""
        url = f"{self._base_url}/conversations/{sender_id}/tracker/events"
        try:
            async with self._http().post(url, json=[{"event": "resume"}, {"event": "restart"}]) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not restart Rasa's conversation %s: %r", sender_id, exc)
            return False

    async def replies_after(self, sender_id: str, update_id: int) -> list[RasaReply] | None:
        """What Rasa said after the user message sent for an update, read from its tracker.

        None when Rasa never recorded that message (it did not get it, or crashed
        before storing it) or cannot be reached.
        """
        url = f"{self._base_url}/conversations/{sender_id}/tracker"
        try:
            async with self._http().get(url, params={"include_events": "ALL"}) as response:
                if response.status != 200:
                    return None
                tracker = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not read Rasa's tracker for %s: %r", sender_id, exc)
            return None
        return _bot_events_after(tracker.get("events") or [], update_id)


def _bot_events_after(events: list[dict[str, Any]], update_id: int) -> list[RasaReply] | None:
    replies: list[RasaReply] | None = None
    for event in events:
        kind = event.get("event")
        if kind == "user":
            if replies is not None:
                break
            if (event.get("metadata") or {}).get("update_id") == update_id:
                replies = []
        elif kind == "bot" and replies is not None:
            data = event.get("data") or {}
            reply: RasaReply = {"text": event.get("text") or ""}
            if data.get("buttons"):
                reply["buttons"] = data["buttons"]
            replies.append(reply)
    return replies
