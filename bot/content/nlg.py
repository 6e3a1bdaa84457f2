"""Rasa's NLG endpoint: responses from the database, slots filled in, never an empty message.

Rasa posts `{response, arguments, tracker, channel}` for every `utter_*` once an `nlg:` endpoint is set, and no
longer reads the domain's texts. A response admins edited is live for the next message: at once in the app
process that saved it, within VERSION_CHECK_SECONDS in other workers (the catalogue reads the content's version
from the database at most that often, rather than once per response of every message). A response that is
missing or leaves a placeholder unfilled falls back to the seed's text (the repository's domain.yml), and that is
logged; when even that cannot be said, a polite general line is.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from bot.content import current
from bot.content.files import Response
from bot.storage.db import Sessions

log = logging.getLogger(__name__)
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
VERSION_CHECK_SECONDS = 1.0
# Rasa sends the whole tracker (EventVerbosity.ALL) with every response. Measured with Rasa 3.6's own
# nlg_request_format over the trained model's parse data: a turn with a 1000-character message (MAX_NLU_CHARS, the
# longest the app sends to Rasa) and a 300-character reply adds about 9.4 KB; 100 such turns make 0.9 MiB, 500 make
# 4.5 MiB. 16 MiB holds about 1700 of them, well past any conversation within one session (Rasa loads the events
# since the latest session start); a bigger request is refused (413), Rasa's reply is then empty and the customer is
# handed to a person rather than left unanswered.
MAX_BODY = 16 * 1024 * 1024
LAST_RESORT = "Sorry, I lost my words for a moment. Could you say that again, or ask for a person?"


class RenderError(ValueError):
    """A response that cannot be said as it is."""


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Put slot and argument values into `{name}` placeholders; RenderError when one has no value."""
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None or value == "":
            missing.append(match.group(1))
            return match.group(0)
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    text = PLACEHOLDER.sub(one, template)
    if missing:
        raise RenderError(f"no value for {', '.join(sorted(set(missing)))}")
    return text


def _matches(variation: Mapping[str, Any], slots: Mapping[str, Any], channel: str | None) -> bool:
    if variation.get("channel") and variation["channel"] != channel:
        return False
    for condition in variation.get("condition") or []:
        if condition.get("type") == "slot" and slots.get(condition.get("name")) != condition.get("value"):
            return False
    return True


def render(
    response: Response,
    values: Mapping[str, Any],
    slots: Mapping[str, Any],
    channel: str | None = None,
    choose: Any = random.choice,
) -> dict[str, Any]:
    """One variation of `response`, filled in, as Rasa's NLG format wants it."""
    usable = [v for v in response.variations if _matches(v, slots, channel) and str(v.get("text", "")).strip()]
    conditional = [v for v in usable if v.get("condition")]
    usable = conditional or usable  # Rasa prefers a variation whose conditions hold
    if not usable:
        raise RenderError("it has no text")
    variation = choose(usable)
    message: dict[str, Any] = {"text": fill(str(variation["text"]), values)}
    buttons = [
        {"title": fill(str(b.get("title", "")), values), "payload": fill(str(b.get("payload", "")), values)}
        for b in variation.get("buttons") or []
    ]
    if buttons:
        message["buttons"] = buttons
    if isinstance(variation.get("image"), str):
        message["image"] = fill(variation["image"], values)
    if isinstance(variation.get("custom"), dict):
        message["custom"] = variation["custom"]
    return message


class ResponseCatalog:
    """The responses as the database has them, cached, re-read when the content's version moves."""

    def __init__(self, sessions: Sessions, seed: Mapping[str, Response]) -> None:
        self._sessions = sessions
        self._seed = dict(seed)
        self._responses: dict[str, Response] = {}
        self._version = -1
        self._checked: tuple[int, float] | None = None  # (this process's changes, loop time) at the last check

    async def responses(self) -> dict[str, Response]:
        """The current responses: the content's version checked after a change here or VERSION_CHECK_SECONDS,
        the responses read again only when it moved."""
        local, now = current.local_changes(), asyncio.get_running_loop().time()
        if self._checked is not None and self._checked[0] == local and now - self._checked[1] < VERSION_CHECK_SECONDS:
            return self._responses
        number = await self._sessions.read(current.version)
        if number != self._version:
            self._responses = (await self._sessions.read(current.load)).responses
            self._version = number
        self._checked = (local, now)
        return self._responses

    async def generate(
        self, name: str, values: Mapping[str, Any], slots: Mapping[str, Any], channel: str | None = None
    ) -> dict[str, Any]:
        """The message for response `name`: the admins' text, else the seed's, else a polite general line."""
        try:
            responses = await self.responses()
        except Exception:  # the database is down: the seed still speaks
            log.exception("responses could not be read; using the seed's %s", name)
            responses = {}
        problems = []
        for source, catalogue in (("edited", responses), ("seed", self._seed)):
            response = catalogue.get(name)
            if response is None:
                problems.append(f"{source}: missing")
                continue
            try:
                message = render(response, values, slots, channel)
            except RenderError as exc:
                problems.append(f"{source}: {exc}")
                continue
            if problems:
                log.warning("response %s fell back to the %s text (%s)", name, source, "; ".join(problems))
            return message
        log.error("response %s cannot be said (%s); sending a general line", name, "; ".join(problems))
        return {"text": LAST_RESORT}

    async def handle(self, request: web.Request) -> web.Response:
        """POST /nlg, as Rasa calls it."""
        try:
            # Rasa sends the whole tracker with every response: orjson reads it several times faster than json.
            body = orjson.loads(await request.clone(client_max_size=MAX_BODY).read())
            name, slots, arguments, channel = _nlg_request(body)
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            return web.json_response({"error": f"expected Rasa's NLG request: {exc}"}, status=400)
        values = {**slots, **{k: v for k, v in arguments.items() if v is not None}}
        return web.json_response(await self.generate(name, values, slots, channel))


def _objects(*values: Any) -> list[dict[str, Any]]:
    """Each value as a JSON object (a missing or null one is empty); TypeError for anything else."""
    found = [{} if value is None else value for value in values]
    if not all(isinstance(value, dict) for value in found):
        raise TypeError("tracker, slots, arguments and channel must be objects")
    return found


def _nlg_request(body: Any) -> tuple[str, dict[str, Any], dict[str, Any], str | None]:
    """The response's name, the slots, the arguments and the channel's name from Rasa's NLG request."""
    [body] = _objects(body)
    if not isinstance(body.get("response"), str):
        raise KeyError("response")
    tracker, arguments, channel = _objects(body.get("tracker"), body.get("arguments"), body.get("channel"))
    [slots] = _objects(tracker.get("slots"))
    name = channel.get("name")
    return body["response"], slots, arguments, name if isinstance(name, str) else None
