"""Talking to the Rasa server over HTTP: the REST channel, and its tracker for recovery."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
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
    """Customer text that Rasa can never mistake for an `/intent{...}` command (and without NUL, which the
    tickets' PostgreSQL columns refuse)."""
    stripped = text.replace("\x00", "\ufffd").strip()
    while stripped.startswith("/"):
        stripped = stripped[1:].lstrip()
    return stripped


class RasaClient:
    """A small client for the parts of Rasa's HTTP API the app uses, over one or several Rasa instances.

    With several instances (sharing a tracker store and a lock store), each conversation has a first
    instance (by a hash of its id) and falls over to the next when that one cannot be reached. Before
    sending to another instance, the client reads the shared tracker: a message the failed instance
    already took is answered from there, never processed twice. A timeout is not a reason to fall over
    (the instance may still be working on the message).
    """

    def __init__(self, base_urls: str | Sequence[str], timeout: float, token: str | None = None) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        self._base_urls = [url.rstrip("/") for url in urls]
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        # RASA_TOKEN: a header for the REST channel (nlu/channel.py); Rasa's HTTP API (`--auth-token`) reads it
        # from the query string only, so `_api` adds it there.
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._api = {"token": token} if token else {}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self._session

    def instances(self, sender_id: str) -> list[str]:
        """The Rasa instances for a conversation, its own first."""
        first = zlib.crc32(sender_id.encode()) % len(self._base_urls)
        return self._base_urls[first:] + self._base_urls[:first]

    async def close(self) -> None:
        """Release the connection pool."""
        if self._session is not None:
            await self._session.close()

    async def send(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[RasaReply]:
        """Send one message through the REST channel and return Rasa's replies."""
        body = {"sender": sender_id, "message": text, "metadata": metadata}
        failure: RasaUnavailable | None = None
        for attempt, base_url in enumerate(self.instances(sender_id)):
            if attempt and metadata.get("update_id") is not None:
                taken = await self._replies_after(base_url, sender_id, metadata["update_id"])
                if taken is not None:
                    return taken
            try:
                return await self._send(base_url, body)
            except _Unreachable as exc:
                log.warning("Rasa at %s is unreachable (%s); trying the next instance", base_url, exc)
                failure = RasaUnavailable(str(exc))
        raise failure or RasaUnavailable("no Rasa instance configured")

    async def _send(self, base_url: str, body: dict[str, Any]) -> list[RasaReply]:
        url = f"{base_url}/webhooks/rest/webhook"
        try:
            async with self._http().post(url, json=body) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status}")
                replies = await response.json()
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            raise _Unreachable(f"Rasa is unreachable at {base_url}: {exc!r}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RasaUnavailable(f"no answer from Rasa at {base_url}: {exc!r}") from exc
        if not isinstance(replies, list):
            raise RasaUnavailable(f"Rasa answered something that is not a list: {replies!r:.200}")
        return replies

    async def status(self) -> str | None:
        """None when at least one Rasa instance is up with a model loaded; else what is wrong."""
        problems = []
        for base_url in self._base_urls:
            try:
                async with self._http().get(f"{base_url}/status", params=self._api) as response:
                    status = await response.json() if response.status == 200 else {}
                    if response.status != 200:
                        refused = " (it refuses our RASA_TOKEN)" if response.status == 401 else ""
                        problems.append(f"Rasa answered HTTP {response.status} at {base_url}/status{refused}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                problems.append(f"Rasa is unreachable at {base_url}: {exc!r}")
                continue
            if status.get("model_file"):
                return None
            problems.append(f"Rasa at {base_url} runs but has no model loaded")
        return "; ".join(problems) or "no Rasa instance configured"

    async def resume(self, sender_id: str) -> bool:
        """Let Rasa answer a conversation it paused for a person; False on failure."""
        return await self._append(sender_id, [{"event": "resume"}])

    async def restart(self, sender_id: str) -> bool:
        """Start the bot afresh for a conversation a person handled (resumed, no stale form or slots); False on failure."""
        return await self._append(sender_id, [{"event": "resume"}, {"event": "restart"}])

    async def _append(self, sender_id: str, events: list[dict[str, Any]]) -> bool:
        for base_url in self.instances(sender_id):
            url = f"{base_url}/conversations/{sender_id}/tracker/events"
            try:
                async with self._http().post(url, json=events, params=self._api) as response:
                    if response.status == 200:
                        return True
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("could not append %s to Rasa's conversation %s at %s: %r", events, sender_id, base_url, exc)
        return False

    async def replies_after(self, sender_id: str, update_id: int) -> list[RasaReply] | None:
        """What Rasa said after the user message sent for an update, read from its tracker.

        None when Rasa never recorded that message (it did not get it, or crashed
        before storing it) or cannot be reached.
        """
        for base_url in self.instances(sender_id):
            found = await self._replies_after(base_url, sender_id, update_id)
            if found is not None:
                return found
        return None

    async def _replies_after(self, base_url: str, sender_id: str, update_id: int) -> list[RasaReply] | None:
        url = f"{base_url}/conversations/{sender_id}/tracker"
        try:
            async with self._http().get(url, params={"include_events": "ALL", **self._api}) as response:
                if response.status != 200:
                    return None
                tracker = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not read Rasa's tracker for %s at %s: %r", sender_id, base_url, exc)
            return None
        return _bot_events_after(tracker.get("events") or [], update_id)


class _Unreachable(RasaUnavailable):
    """The instance refused or dropped the connection: it is down, so another may take the message."""


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
            if data.get("custom"):
                reply["custom"] = data["custom"]
            replies.append(reply)
    return replies
