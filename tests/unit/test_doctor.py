"""`frontline doctor`: a line per check, OK / WARN / FAIL with what to fix, exit 1 on any FAIL."""

from __future__ import annotations

import contextlib
import io
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.config import load_settings
from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.ops import doctor
from bot.rasa_runtime import fingerprint
from bot.storage.db import create_engine, migrate
from bot.web import HealthServer

TOKEN = "123456789:doctor-test-token"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(routes: dict[str, tuple[int, dict]]) -> AsyncIterator[str]:
    """A loopback HTTP server answering GET path with (status, JSON body)."""

    def answer(status: int, body: dict):
        async def handler(_request: web.Request) -> web.Response:
            return web.json_response(body, status=status)

        return handler

    app = web.Application()
    for path, (status, body) in routes.items():
        app.router.add_get(path, answer(status, body))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def emulator_with_group(*, forum: bool, bot_rights: dict | None) -> AsyncIterator[tuple[str, int]]:
    """The Bot API emulator with an agents' group; yields (TELEGRAM_API_URL, the group's id)."""
    server = EmulatorServer()
    base = await server.start("127.0.0.1", 0)
    try:
        async with EmulatorClient(base) as control:
            await control.add_user("Alex", user_id=5151)
            group = await control.add_group("Agents", is_forum=forum, members=[5151], bot_rights=bot_rights)
        yield f"{base}/bot", group["id"]
    finally:
        await server.stop()


async def _put_live(settings, file: str) -> None:
    from bot.content import versions
    from bot.storage.db import create_sessionmaker

    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            version = await session.run_sync(versions.register, settings.models_dir / file, file.split(".")[0], "test")
            await session.run_sync(versions.put_version_live, version.id, "test")
    finally:
        await engine.dispose()


async def _migrated(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'frontline.db'}"
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    return url


def _by_check(findings: list[doctor.Finding]) -> dict[str, doctor.Finding]:
    return {f.check.split(" http")[0]: f for f in findings}


async def test_everything_up_is_all_ok(tmp_path: Path) -> None:
    env = {"FRONTLINE_VAR": str(tmp_path), "DATABASE_URL": await _migrated(tmp_path), "TELEGRAM_BOT_TOKEN": TOKEN}
    settings = load_settings(env)
    current = f"{fingerprint(settings)}.tar.gz"
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / current).write_bytes(b"model")
    await _put_live(settings, current)
    health = HealthServer({})
    app_port = await health.start("127.0.0.1", 0)
    rasa = {"/status": (200, {"model_file": str(settings.models_dir / current), "model_id": "x"})}
    actions = {
        "/health": (200, {"status": "ok"}),
        "/ready": (200, {"ready": True, "checks": {"database": "ok"}, "pending_complaints": 0}),
    }
    try:
        async with (
            serving(rasa) as rasa_url,
            serving(actions) as actions_url,
            emulator_with_group(forum=True, bot_rights={"can_manage_topics": True, "can_delete_messages": True}) as (
                api,
                group,
            ),
        ):
            env.update(
                {
                    "RASA_URL": rasa_url,
                    "ACTION_SERVER_URL": f"{actions_url}/webhook",
                    "APP_PORT": str(app_port),
                    "TELEGRAM_API_URL": api,
                    "AGENT_CHAT_ID": str(group),
                }
            )
            findings = await doctor.diagnose(load_settings(env), env)
    finally:
        await health.stop()
    out = io.StringIO()
    assert doctor.report(findings, out) == 0, out.getvalue()
    checks = _by_check(findings)
    assert {name: f.status for name, f in checks.items()} == {
        "configuration": "WARN",  # Telegram on SQLite: fine for a trial, said so
        "database": "OK",
        "model": "OK",
        "rasa": "OK",
        "actions": "OK",
        "app": "OK",
        "telegram token": "OK",
        f"agents' group {group}": "OK",
    }
    assert "PostgreSQL" in checks["configuration"].fix
    text = out.getvalue()
    assert TOKEN.split(":")[1] not in text, "the token's secret part is never printed"
    assert "123456789:***" in text
    assert checks["database"].detail.endswith("(head)")


async def test_whats_down_fails_with_what_to_do(tmp_path: Path) -> None:
    env = {
        "FRONTLINE_VAR": str(tmp_path),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "RASA_URL": f"http://127.0.0.1:{closed_port()},http://127.0.0.1:{closed_port()}",
        "ACTION_SERVER_URL": f"http://127.0.0.1:{closed_port()}/webhook",
        "APP_PORT": str(closed_port()),
    }
    async with emulator_with_group(forum=False, bot_rights=None) as (api, group):
        env.update({"TELEGRAM_API_URL": api, "AGENT_CHAT_ID": str(group)})
        out = io.StringIO()
        findings = await doctor.diagnose(load_settings(env), env)
    assert doctor.report(findings, out) == 1
    text = out.getvalue()
    lines = text.splitlines()
    fails = [line for line in lines if line.startswith("FAIL")]
    assert len([line for line in fails if line.startswith("FAIL  rasa http://127.0.0.1:")]) == 2
    assert any(line.startswith("FAIL  actions ") for line in fails)
    assert any(line.startswith("FAIL  app ") for line in fails)
    assert any(line.startswith("FAIL  model: no trained model") for line in fails)
    assert any(line.startswith(f"FAIL  agents' group {group}: 'Agents' is not a forum") for line in fails)
    for hint in (
        "`frontline rasa`",
        "`frontline actions`",
        "`frontline app`",
        "Run `make train`",
        "Turn on Topics",
        "Run `frontline app` once, it creates and migrates it on start.",
    ):
        assert hint in text, hint
    assert any(line.startswith("OK    telegram token: @") for line in lines)
    assert text.rstrip().endswith("FAIL")


async def test_the_bot_without_admin_rights_is_told_which(tmp_path: Path) -> None:
    env = {"FRONTLINE_VAR": str(tmp_path), "TELEGRAM_BOT_TOKEN": TOKEN}
    async with emulator_with_group(forum=True, bot_rights={"can_manage_topics": True}) as (api, group):
        env.update({"TELEGRAM_API_URL": api, "AGENT_CHAT_ID": str(group)})
        async with aiohttp.ClientSession() as http:
            partial = await doctor.telegram(load_settings(env), http)
    async with emulator_with_group(forum=True, bot_rights=None) as (api, group):
        env.update({"TELEGRAM_API_URL": api, "AGENT_CHAT_ID": str(group)})
        async with aiohttp.ClientSession() as http:
            member = await doctor.telegram(load_settings(env), http)
    assert partial[-1].status == "FAIL" and "can_delete_messages" in partial[-1].detail
    assert "Delete messages" in partial[-1].fix
    assert member[-1].status == "FAIL" and "not an administrator" in member[-1].detail


async def test_a_database_behind_the_migrations_says_how_to_catch_up(tmp_path: Path) -> None:
    url = await _migrated(tmp_path)
    with contextlib.closing(sqlite3.connect(tmp_path / "frontline.db")) as db, db:
        db.execute("UPDATE alembic_version SET version_num = '0003'")
    finding = await doctor.database(load_settings({"FRONTLINE_VAR": str(tmp_path), "DATABASE_URL": url}))
    assert finding.status == "WARN"
    assert finding.fix == "Run `frontline app` once, it migrates on start."


async def test_an_unreachable_database_fails(tmp_path: Path) -> None:
    url = f"postgresql://frontline:secret@127.0.0.1:{closed_port()}/frontline"
    finding = await doctor.database(load_settings({"FRONTLINE_VAR": str(tmp_path), "DATABASE_URL": url}))
    assert finding.status == "FAIL" and "secret" not in finding.detail
    assert "DATABASE_URL" in finding.fix


def test_malformed_configuration_is_one_fail(tmp_path: Path) -> None:
    out = io.StringIO()
    assert doctor.run({"FRONTLINE_VAR": str(tmp_path), "RASA_URL": "localhost:5005"}, out) == 1
    assert out.getvalue().startswith("FAIL  configuration: RASA_URL must be an http(s) URL")


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql+asyncpg://bot:hunter2@db:5432/frontline", "postgresql+asyncpg://bot:***@db:5432/frontline"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
    ],
)
def test_passwords_are_masked(url: str, shown: str) -> None:
    assert doctor.masked_url(url) == shown
