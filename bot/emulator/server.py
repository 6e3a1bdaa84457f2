"""The HTTP layer: the Bot API, file downloads and the control API under /_emulator/."""

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.emulator import control
from bot.emulator.botapi import BotApi
from bot.emulator.errors import ApiError, ControlError, bad_request, not_found, too_many_requests
from bot.emulator.faults import Fault, fault_from_json
from bot.emulator.params import Params, Upload
from bot.emulator.state import JSON, TOKEN_PATTERN, EmulatorState
from bot.emulator.webhooks import WebhookDelivery

MAX_REQUEST_SIZE = 50 * 1024 * 1024 + 64 * 1024
MAX_CONTROL_WAIT = 120.0
SHUTDOWN_TIMEOUT = 1.0
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)

ControlHandler = Callable[[web.Request], Awaitable[Any]]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


async def read_params(request: web.Request) -> Params:
    """Parameters from the query string and a JSON, urlencoded or multipart body."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.content_type == "application/json" and request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("can't parse JSON object")
        values.update(body)
    elif request.content_type in _FORM_TYPES:
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                uploads[name] = Upload(value.filename, value.content_type, value.file.read())
            else:
                values[name] = value
    return Params(values, uploads)


def _fault_chat(params: Params) -> str | None:
    try:
        return params.get_str("chat_id")
    except ApiError:
        return None


class BotApiHandler:
    """Serves `/bot<token>/<method>` and `/file/bot<token>/<path>`."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._api = BotApi(state)

    async def method(self, request: web.Request) -> web.StreamResponse:
        """One Bot API call: logged on arrival, then faults, then the method."""
        token, requested = request.match_info["token"], request.match_info["method"]
        name = self._api.canonical_name(requested) or requested
        try:
            params, unreadable = await read_params(request), None
        except ApiError as error:
            params, unreadable = Params({}), error
        entry = self._state.begin_call(name, params.loggable())
        if unreadable is not None:
            return self._answer(entry, unreadable.payload(), unreadable.code)
        fault = self._state.faults.take(name, _fault_chat(params))
        if fault is None:
            return self._answer(entry, *await self._run(token, requested, params))
        entry["fault"] = fault.mode
        if fault.mode in ("slow", "drop"):
            await asyncio.sleep(fault.delay)
        if fault.mode == "slow":
            return self._answer(entry, *await self._run(token, requested, params))
        if fault.mode == "drop":
            self._state.finish_call(entry, 0, "connection dropped")
            return _drop_connection(request)
        if fault.mode == "502":
            self._state.finish_call(entry, 502, "Bad Gateway")
            return web.Response(status=502, text=_BAD_GATEWAY_PAGE, content_type="text/html")
        error = _fault_error(fault)
        return self._answer(entry, error.payload(), error.code)

    async def _run(self, token: str, method: str, params: Params) -> tuple[JSON, int]:
        if not TOKEN_PATTERN.match(token):
            return not_found().payload(), 404
        try:
            result = await self._api.call(method, token, params)
        except ApiError as error:
            return error.payload(), error.code
        return {"ok": True, "result": result}, 200

    def _answer(self, entry: JSON, body: JSON, status: int) -> web.Response:
        retry_after = (body.get("parameters") or {}).get("retry_after")
        self._state.finish_call(entry, status, body.get("description"), retry_after=retry_after)
        return _json(body, status)

    async def download(self, request: web.Request) -> web.Response:
        """A file by the path getFile gave out."""
        stored = None
        if TOKEN_PATTERN.match(request.match_info["token"]):
            stored = self._state.files.by_path(request.match_info["path"])
        if stored is None:
            return _json(not_found().payload(), 404)
        content_type = str(stored.meta.get("mime_type") or "application/octet-stream")
        return web.Response(body=stored.data, content_type=content_type)


def _fault_error(fault: Fault) -> ApiError:
    """The JSON error of a 429 or 500 fault."""
    if fault.mode == "429":
        return too_many_requests(fault.retry_after)
    return ApiError(500, "Internal Server Error")


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the socket without answering, like a proxy dying mid-request."""
    if request.transport is not None:
        request.transport.abort()
    # aiohttp quietly gives up writing this to the aborted connection.
    return web.Response(status=500)


def _control(handler: ControlHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap a control handler: JSON out, test mistakes as 4xx JSON errors."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return _json(await handler(request))
        except ControlError as error:
            return _json({"ok": False, "description": error.description}, error.status)
        except (ValueError, TypeError, KeyError) as error:
            return _json({"ok": False, "description": f"invalid request: {error}"}, 400)

    return wrapped


async def _body(request: web.Request) -> JSON:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ControlError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    return body


def _query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    return None if value in (None, "") else int(value)


class ControlApi:
    """Serves `/_emulator/...`: the tests' side of the emulator."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def routes(self) -> list[web.RouteDef]:
        """The control routes."""
        return [
            web.get("/_emulator/health", _control(self.health)),
            web.post("/_emulator/reset", _control(self.reset)),
            web.post("/_emulator/users", _control(self.add_user)),
            web.post("/_emulator/users/{user_id}/block", _control(self.block)),
            web.post("/_emulator/groups", _control(self.add_group)),
            web.post("/_emulator/groups/{chat_id}/members", _control(self.set_member)),
            web.post("/_emulator/messages", _control(self.message)),
            web.post("/_emulator/edits", _control(self.edit)),
            web.post("/_emulator/callbacks", _control(self.callback)),
            web.post("/_emulator/updates", _control(self.raw_update)),
            web.get("/_emulator/callbacks/{query_id}", _control(self.callback_answer)),
            web.get("/_emulator/sent", _control(self.sent)),
            web.get("/_emulator/calls", _control(self.calls)),
            web.get("/_emulator/updates/pending", _control(self.pending)),
            web.get("/_emulator/faults", _control(self.faults)),
            web.post("/_emulator/faults", _control(self.add_fault)),
            web.delete("/_emulator/faults", _control(self.clear_faults)),
            web.get("/_emulator/limits", _control(self.limits)),
            web.post("/_emulator/limits", _control(self.set_limits)),
            web.get("/_emulator/files/{file_id}", self.file_content),
        ]

    async def health(self, request: web.Request) -> JSON:
        """Liveness."""
        return {"ok": True}

    async def reset(self, request: web.Request) -> JSON:
        """Forget everything but the counters."""
        self._state.reset()
        return {"ok": True}

    async def add_user(self, request: web.Request) -> JSON:
        """Create a user and their private chat."""
        return control.add_user(self._state, await _body(request))

    async def block(self, request: web.Request) -> JSON:
        """Block or unblock the bot as a user."""
        body = await _body(request)
        user_id = int(request.match_info["user_id"])
        return control.set_blocked(self._state, user_id, bool(body.get("blocked", True)))

    async def add_group(self, request: web.Request) -> JSON:
        """Create a group or supergroup."""
        return control.add_group(self._state, await _body(request))

    async def set_member(self, request: web.Request) -> JSON:
        """A user joins or leaves a group: `{user_id, member}`."""
        body = await _body(request)
        return control.set_member(self._state, int(request.match_info["chat_id"]), body)

    async def message(self, request: web.Request) -> JSON:
        """A user sends a message."""
        return control.inject_message(self._state, await _body(request))

    async def edit(self, request: web.Request) -> JSON:
        """A user edits a message."""
        return control.inject_edit(self._state, await _body(request))

    async def callback(self, request: web.Request) -> JSON:
        """A user presses an inline button."""
        return control.inject_callback(self._state, await _body(request))

    async def raw_update(self, request: web.Request) -> JSON:
        """Queue any update as given, however malformed (the update id is the emulator's)."""
        return control.inject_raw_update(self._state, await _body(request))

    async def callback_answer(self, request: web.Request) -> JSON:
        """A callback query and the bot's answer."""
        return control.callback_record(self._state, request.match_info["query_id"])

    async def sent(self, request: web.Request) -> JSON:
        """Messages the bot sent or edited; `wait` long-polls for the first match."""
        chat_id = _query_int(request, "chat_id")
        after = _query_int(request, "after") or 0
        wait = min(float(request.query.get("wait") or 0), MAX_CONTROL_WAIT)

        def found() -> list[JSON] | None:
            messages = self._state.sent_after(after, chat_id)
            return messages if messages or self._state.closing else None

        messages = await self._state.changed.wait_until(found, wait) or []
        last = messages[-1]["seq"] if messages else after
        return {"messages": messages, "last": last}

    async def calls(self, request: web.Request) -> JSON:
        """The Bot API call log."""
        method = (request.query.get("method") or "").lower()
        after = _query_int(request, "after") or 0
        calls = self._state.calls.after(after)
        if method:
            calls = [call for call in calls if call["method"].lower() == method]
        return {"calls": calls, "last": calls[-1]["seq"] if calls else after}

    async def pending(self, request: web.Request) -> JSON:
        """Updates not yet confirmed by a getUpdates offset."""
        return {"updates": self._state.updates}

    async def faults(self, request: web.Request) -> JSON:
        """The active fault rules."""
        return {"faults": self._state.faults.as_list()}

    async def add_fault(self, request: web.Request) -> JSON:
        """Add a fault rule."""
        try:
            fault = fault_from_json(await _body(request))
        except ValueError as error:
            raise ControlError(str(error)) from None
        self._state.faults.add(fault)
        return {"fault": fault.as_dict(), "faults": self._state.faults.as_list()}

    async def clear_faults(self, request: web.Request) -> JSON:
        """Remove all fault rules."""
        self._state.faults.clear()
        return {"faults": []}

    async def limits(self, request: web.Request) -> JSON:
        """The flood-limit settings."""
        return self._state.limiter.config.as_dict()

    async def set_limits(self, request: web.Request) -> JSON:
        """Change flood-limit settings (and forget past sends)."""
        try:
            config = self._state.limiter.config.updated(await _body(request))
        except ValueError as error:
            raise ControlError(str(error)) from None
        self._state.limiter.configure(config)
        return config.as_dict()

    async def file_content(self, request: web.Request) -> web.Response:
        """The bytes of any file, by file_id."""
        stored = self._state.files.get(request.match_info["file_id"])
        if stored is None:
            return _json({"ok": False, "description": "unknown file_id"}, 404)
        return web.Response(body=stored.data, content_type="application/octet-stream")


def create_app(state: EmulatorState | None = None) -> web.Application:
    """The aiohttp application serving one emulator state."""
    state = state or EmulatorState()
    app = web.Application(client_max_size=MAX_REQUEST_SIZE)
    bot_api = BotApiHandler(state)
    app.add_routes(
        [
            web.route("GET", "/bot{token}/{method}", bot_api.method),
            web.route("POST", "/bot{token}/{method}", bot_api.method),
            web.get("/file/bot{token}/{path:.+}", bot_api.download),
            *ControlApi(state).routes(),
        ]
    )
    return app


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class EmulatorServer:
    """Runs the emulator inside the current event loop (port 0 picks a free port)."""

    def __init__(self, state: EmulatorState | None = None, access_log: bool = False) -> None:
        self.state = state or EmulatorState()
        self._webhooks: asyncio.Task[None] | None = None
        self._access_log = access_log
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """`http://host:port`, the root of the control API."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not running")
        return self._base_url

    @property
    def bot_api_url(self) -> str:
        """The value for PTB's `base_url`."""
        return f"{self.base_url}/bot"

    @property
    def file_url(self) -> str:
        """The value for PTB's `base_file_url`."""
        return f"{self.base_url}/file/bot"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; returns the base URL."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
        self.state.closing = False
        runner = web.AppRunner(
            create_app(self.state),
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            access_log=logging.getLogger("aiohttp.access") if self._access_log else None,
        )
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self._webhooks = asyncio.create_task(WebhookDelivery(self.state).run(), name="emulator-webhooks")
        self._base_url = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
        return self._base_url

    async def stop(self) -> None:
        """End long polls and stop serving."""
        if self._runner is None:
            return
        self.state.close()
        if self._webhooks is not None:
            self._webhooks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhooks
            self._webhooks = None
        await self._runner.cleanup()
        self._runner = None
        self._base_url = None

    async def __aenter__(self) -> "EmulatorServer":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
