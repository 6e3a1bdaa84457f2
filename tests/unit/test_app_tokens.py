"""The app's side of the tokens (issue 16, finding 4), over HTTP against the running app (sandbox mode):

- `/nlg` and `/models/live` answer only a request carrying APP_TOKEN, as Rasa sends it (the endpoints' `headers:`);
  anyone else on the network gets 401 and neither a response text nor the model.
- The app sends RASA_TOKEN with every call to Rasa: the REST channel in a header, the HTTP API in its query string.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.app import serve
from bot.config import load_settings
from bot.emulator.client import EmulatorClient
from bot.rasa import RasaClient
from devstack.stack import free_port
from tests.unit.chat_harness import ScriptedRasa

APP_TOKEN = "app-token-for-the-test-0123456789"
RASA_TOKEN = "rasa-token-for-the-test-0123456789"
NLG_BODY = {"response": "utter_greet", "arguments": {}, "tracker": {"slots": {}}, "channel": {"name": "rest"}}


@dataclass
class RunningApp:
    url: str
    emulator_port: int
    rasa: ScriptedRasa
    seen: list[tuple[str, str | None, str | None]]  # Rasa's view: path, Authorization header, token parameter


async def _status(request: web.Request) -> web.Response:
    return web.json_response({"model_file": "m.tar.gz"})


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[RunningApp]:
    rasa, seen = ScriptedRasa(), []

    @web.middleware
    async def record(request: web.Request, handler):
        seen.append((request.path, request.headers.get("Authorization"), request.query.get("token")))
        return await handler(request)

    rasa_app = web.Application(middlewares=[record])
    rasa_app.router.add_post("/webhooks/rest/webhook", rasa.webhook)
    rasa_app.router.add_get("/status", _status)
    runner = web.AppRunner(rasa_app)
    await runner.setup()
    rasa_port, app_port, emulator_port = free_port(), free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", rasa_port).start()
    settings = load_settings(
        {
            "FRONTLINE_VAR": str(tmp_path),
            "RASA_URL": f"http://127.0.0.1:{rasa_port}",
            "EMULATOR_PORT": str(emulator_port),
            "APP_PORT": str(app_port),
            "APP_TOKEN": APP_TOKEN,
            "RASA_TOKEN": RASA_TOKEN,
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    url = f"http://127.0.0.1:{app_port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                try:
                    async with http.get(f"{url}/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert not task.done(), task
                await asyncio.sleep(0.05)
        yield RunningApp(url, emulator_port, rasa, seen)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await runner.cleanup()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": APP_TOKEN}])
async def test_nlg_and_the_model_server_refuse_a_request_without_the_token(
    app: RunningApp, headers: dict[str, str]
) -> None:
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{app.url}/nlg", json=NLG_BODY) as response:
            assert response.status == 401
            assert "text" not in await response.json(content_type=None)
        async with http.get(f"{app.url}/models/live") as response:
            assert response.status == 401
            assert response.content_type != "application/gzip"


async def test_nlg_answers_rasa_with_the_token(app: RunningApp) -> None:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {APP_TOKEN}"}) as http,
        http.post(f"{app.url}/nlg", json=NLG_BODY) as response,
    ):
        assert response.status == 200
        assert (await response.json())["text"]


async def test_the_app_sends_rasas_token_with_every_call(app: RunningApp) -> None:
    async with EmulatorClient(f"http://127.0.0.1:{app.emulator_port}") as emulator:
        for _ in range(200):
            if await emulator.calls("getUpdates"):
                break
            await asyncio.sleep(0.05)
        await emulator.add_user("Maya", user_id=4242)
        await emulator.send_text(4242, "hello")
        assert [m["text"] for m in await emulator.wait_for_text(4242, timeout=10)] == ["echo: hello"]
    async with aiohttp.ClientSession() as http, http.get(f"{app.url}/ready") as response:
        assert response.status == 200
    channel = [(auth, token) for path, auth, token in app.seen if path == "/webhooks/rest/webhook"]
    api = [(auth, token) for path, auth, token in app.seen if path == "/status"]
    assert channel and all(auth == f"Bearer {RASA_TOKEN}" and token is None for auth, token in channel)
    assert api and all(token == RASA_TOKEN for _, token in api)


async def test_readiness_names_the_token_when_rasa_refuses_it() -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"reason": "NotAuthenticated"}, status=401)

    rasa_app = web.Application()
    rasa_app.router.add_get("/status", refuse)
    runner = web.AppRunner(rasa_app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = RasaClient(f"http://127.0.0.1:{port}", 5, "not-rasas-token-0123456789")
    try:
        assert "RASA_TOKEN" in (await client.status() or "")
    finally:
        await client.close()
        await runner.cleanup()
