"""The HTTP layer: the Bot API and file downloads (the control API under /_emulator/ is in control_api.py)."""

import asyncio
import contextlib
import logging
import socket
from typing import Any, Self

from aiohttp import web

from bot.emulator.botapi import BotApi
from bot.emulator.control_api import ControlApi, json_response
from bot.emulator.errors import ApiError, bad_request, forbidden, not_found, too_many_requests
from bot.emulator.faults import Fault
from bot.emulator.params import Params, Upload
from bot.emulator.state import JSON, TOKEN_PATTERN, EmulatorState
from bot.emulator.webhooks import WebhookDelivery

MAX_REQUEST_SIZE = 50 * 1024 * 1024 + 64 * 1024
SHUTDOWN_TIMEOUT = 1.0
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)


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
        faulted = _fault_error(fault)
        return self._answer(entry, faulted.payload(), faulted.code)

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
        return json_response(body, status)

    async def download(self, request: web.Request) -> web.Response:
        """A file by the path getFile gave out."""
        stored = None
        if TOKEN_PATTERN.match(request.match_info["token"]):
            stored = self._state.files.by_path(request.match_info["path"])
        if stored is None:
            return json_response(not_found().payload(), 404)
        content_type = str(stored.meta.get("mime_type") or "application/octet-stream")
        return web.Response(body=stored.data, content_type=content_type)


def _fault_error(fault: Fault) -> ApiError:
    """The JSON error of a 429, 500, 400 or 403 fault (a refusal for good, as Telegram gives it)."""
    if fault.mode == "429":
        return too_many_requests(fault.retry_after)
    if fault.mode == "400":
        return bad_request(fault.description or "request refused")
    if fault.mode == "403":
        return forbidden(fault.description or "bot was blocked by the user")
    return ApiError(500, "Internal Server Error")


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the socket without answering, like a proxy dying mid-request."""
    if request.transport is not None:
        request.transport.abort()
    # aiohttp quietly gives up writing this to the aborted connection.
    return web.Response(status=500)


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

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
