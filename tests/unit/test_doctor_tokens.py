"""`frontline doctor` and the tokens: it sends each server its token, and says so when one is missing or refused
(servers here check them as the real ones do: Rasa's query string, the others' `Authorization` header)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot import tokens
from bot.config import Settings, load_settings
from bot.ops import doctor
from bot.ops.findings import FAIL, OK
from bot.web import HealthServer

RIGHT = {"ACTIONS_TOKEN": "a" * 20, "RASA_TOKEN": "r" * 20, "APP_TOKEN": "p" * 20}
WRONG = {name: "w" * 20 for name in RIGHT}


@contextlib.asynccontextmanager
async def servers() -> AsyncIterator[dict[str, str]]:
    """Rasa and the action server checking RIGHT's tokens, and the app's model server behind its guard."""

    async def rasa_status(request: web.Request) -> web.Response:
        if request.query.get("token") != RIGHT["RASA_TOKEN"]:
            return web.json_response({"reason": "NotAuthenticated"}, status=401)
        return web.json_response({"model_file": "m.tar.gz"})

    async def actions(request: web.Request) -> web.Response:
        if not tokens.accepts(request.headers.get("Authorization"), RIGHT["ACTIONS_TOKEN"]):
            return web.json_response({}, status=401)
        return web.json_response({"ready": True, "checks": {"database": "ok"}, "pending_complaints": 0})

    async def model(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no model is live yet")

    runners = []
    urls = {}
    for name, routes in (("rasa", {"/status": rasa_status}), ("actions", {"/health": actions, "/ready": actions})):
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        urls[name] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    health = HealthServer({}, gets={"/models/live": tokens.guard(RIGHT["APP_TOKEN"])(model)})
    urls["app_port"] = str(await health.start("127.0.0.1", 0))
    try:
        yield urls
    finally:
        await health.stop()
        for runner in runners:
            await runner.cleanup()


async def _findings(tmp_path: Path, env: dict[str, str]) -> tuple[Settings, dict[str, doctor.Finding]]:
    async with servers() as urls:
        settings = load_settings(
            {
                "FRONTLINE_VAR": str(tmp_path),
                "RASA_URL": urls["rasa"],
                "ACTION_SERVER_URL": f"{urls['actions']}/webhook",
                "APP_PORT": urls["app_port"],
                **env,
            }
        )
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            found = {
                "rasa": await doctor.rasa(settings, http, settings.rasa_url, None),
                "actions": await doctor.action_server(settings, http),
                "app": await doctor.app(settings, http),
            }
    return settings, found


async def test_with_the_right_tokens_every_server_answers_the_doctor(tmp_path: Path) -> None:
    _, found = await _findings(tmp_path, RIGHT)
    assert {name: f.status for name, f in found.items()} == {"rasa": OK, "actions": OK, "app": OK}, found


async def test_a_refused_token_is_named_with_what_to_do(tmp_path: Path) -> None:
    _, found = await _findings(tmp_path, WRONG)
    assert {name: f.status for name, f in found.items()} == {"rasa": FAIL, "actions": FAIL, "app": FAIL}
    assert found["rasa"].detail.startswith("refused RASA_TOKEN")
    assert found["actions"].detail.startswith("refused ACTIONS_TOKEN")
    assert found["app"].detail.startswith("refused APP_TOKEN")
    assert all("same" in (f.fix or "") for f in found.values())


async def test_a_missing_token_is_said_missing_and_never_generated_by_the_doctor(tmp_path: Path) -> None:
    settings, found = await _findings(tmp_path, {})
    assert found["rasa"].status == FAIL
    assert found["rasa"].detail.startswith("refused: no RASA_TOKEN here")
    assert found["actions"].detail.startswith("refused: no ACTIONS_TOKEN here")
    assert not (tmp_path / "tokens").exists()
    lines = doctor.configuration(settings, {}).lines
    assert [line.split()[0] for line in lines if "(missing:" in line] == [
        "ACTIONS_TOKEN",
        "RASA_TOKEN",
        "APP_TOKEN",
        "METRICS_TOKEN",
    ]


@pytest.mark.parametrize("env", [RIGHT, {}])
def test_the_configuration_never_shows_a_token(tmp_path: Path, env: dict[str, str]) -> None:
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path), **env})
    shown = "\n".join(doctor.configuration(settings, {}).lines)
    assert all(value not in shown for value in RIGHT.values())
    assert "ACTIONS_TOKEN" in shown and "RASA_TOKEN" in shown and "APP_TOKEN" in shown
