"""`frontline doctor`: is this installation ready? Each check says OK, WARN or FAIL and, when not OK, what to do."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import aiohttp
from sqlalchemy.engine import make_url

from bot import logs
from bot.config import ConfigError, Settings, load_settings
from bot.ops import doctor_tokens
from bot.ops.doctor_telegram import telegram
from bot.ops.findings import FAIL, OK, TIMEOUT, WARN, Finding, reason


def mask(token: str | None) -> str:
    """A bot token shown by its bot id (public) only: `123456789:***`."""
    if not token:
        return "(unset)"
    bot_id, _, secret = token.partition(":")
    return f"{bot_id}:*** ({len(secret)} characters hidden)"


def masked_url(url: str | None) -> str:
    """A URL with its password hidden."""
    if not url:
        return "(unset)"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (not an SQLAlchemy URL, redis://…: hide what stands between ':' and '@')
        parsed = urlparse(url)
        if parsed.password:
            return url.replace(f":{parsed.password}@", ":***@")
        return url


def _sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def configuration(settings: Settings, env: Mapping[str, str]) -> Finding:
    """The settings that matter, secrets masked; WARN for a production setup with trial choices."""
    token = settings.telegram_token
    shown = [
        f"TELEGRAM_BOT_TOKEN   {mask(token) if token else '(unset: sandbox mode, the app runs its own Telegram emulator)'}",
        f"TELEGRAM_API_URL     {settings.telegram_api_url}",
        f"AGENT_CHAT_ID        {settings.agent_chat_id or '(unset)'}",
        f"WEBHOOK_URL          {getattr(settings, 'webhook_url', None) or '(unset: polling)'}",
        f"DATABASE_URL         {masked_url(settings.database_url)}",
        f"RASA_URL             {', '.join(settings.rasa_urls or (settings.rasa_url,))}",
        f"REDIS_URL            {masked_url(settings.redis_url)}",
        f"ACTION_SERVER_URL    {settings.action_server_url}",
        f"APP_HOST:APP_PORT    {settings.app_host}:{settings.app_port}",
        f"FRONTLINE_VAR        {settings.var_dir}",
        f"FRONTLINE_MODELS     {settings.models_dir}",
        f"LOG_LEVEL/FORMAT     {settings.log_level} / {env.get('LOG_FORMAT', '') or 'text'}",
        *doctor_tokens.lines(settings),
    ]
    mode = "sandbox mode" if settings.sandbox else "Telegram"
    if not settings.sandbox and settings.agent_chat_id is None:
        return Finding(
            WARN,
            "configuration",
            f"{mode}, no agents' group",
            lines=tuple(shown),
            fix="Set AGENT_CHAT_ID to the agents' supergroup id, or customers who ask for a person are told no one is available.",
        )
    if not settings.sandbox and _sqlite_path(settings.database_url):
        return Finding(
            WARN,
            "configuration",
            f"{mode} on SQLite",
            lines=tuple(shown),
            fix="For anything beyond a trial set DATABASE_URL to PostgreSQL (postgresql://user@host:5432/db).",
        )
    return Finding(OK, "configuration", mode, lines=tuple(shown))


async def database(settings: Settings) -> Finding:
    """Connect, and compare Alembic's revision in the database with the newest migration."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from bot.storage.db import MIGRATIONS, create_engine

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    where = masked_url(settings.database_url)
    path = _sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        return Finding(
            WARN,
            "database",
            f"no database yet at {path}",
            "Run `frontline app` once, it creates and migrates it on start.",
        )
    engine = create_engine(settings.database_url)
    try:
        async with asyncio.timeout(TIMEOUT):
            async with engine.connect() as connection:
                current = await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
    except Exception as exc:  # noqa: BLE001 (any failure to connect is the finding)
        return Finding(
            FAIL,
            "database",
            f"cannot connect to {where}: {reason(exc)}",
            "Start the database or fix DATABASE_URL (host, port, name, user, password).",
        )
    finally:
        await engine.dispose()
    known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    if current == head:
        return Finding(OK, "database", f"{where}, schema at {head} (head)")
    if current is not None and current not in known:
        return Finding(
            FAIL,
            "database",
            f"schema at {current}, which this code does not know (head is {head})",
            "The database was migrated by a newer Frontline: run that version, or restore a backup made with this one.",
        )
    return Finding(
        WARN,
        "database",
        f"schema at {current or 'nothing (empty database)'}, head is {head}",
        "Run `frontline app` once, it migrates on start.",
    )


async def live_model(settings: Settings) -> tuple[str | None, bool]:
    """The file of the live model version, per the database (None when none is live or it can't be read), and
    whether the database holds the model itself (PostgreSQL: every app instance serves it from there)."""
    from bot.content import versions
    from bot.storage import model_blobs
    from bot.storage.db import create_engine, create_sessionmaker

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return None, False  # (connecting would create it)
    engine = create_engine(settings.database_url)
    try:
        async with asyncio.timeout(TIMEOUT):
            async with create_sessionmaker(engine)() as session:
                live = await session.run_sync(versions.live_version)
                if live is None:
                    return None, False
                return live.file, await session.run_sync(model_blobs.stored, live.fingerprint) is not None
    except Exception:  # noqa: BLE001 (the database check reports what is wrong with it)
        return None, False
    finally:
        await engine.dispose()


def model(settings: Settings, live: str | None, in_database: bool = False) -> Finding:
    """The live model (what every Rasa instance pulls from the app), or one trained from the content as it is."""
    from bot.rasa_runtime import current_model, latest_model

    if live is not None:
        if in_database:
            return Finding(OK, "model", f"{live} is live (stored in the database)")
        if (settings.models_dir / live).is_file():
            return Finding(OK, "model", f"{live} is live")
        return Finding(
            FAIL,
            "model",
            f"the live model {live} is missing from {settings.models_dir}",
            "Restore the model store from a backup, or train again and put the new model live.",
        )
    current = current_model(settings)
    if current is not None:
        return Finding(
            WARN,
            "model",
            f"none is live yet; the app puts {current.name} live when it starts",
            "Start `frontline app` (or `make run`).",
        )
    latest = latest_model(settings)
    if latest is not None:
        return Finding(
            WARN,
            "model",
            f"none is live and none matches the current content; newest is {latest.name}",
            "Run `make train` (or `frontline train`).",
        )
    return Finding(
        FAIL, "model", f"no trained model under {settings.models_dir}", "Run `make train` (or `frontline train`)."
    )


async def _get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.get(url, headers=headers, params=params) as response:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return response.status, body


async def rasa(settings: Settings, http: aiohttp.ClientSession, base_url: str, live: str | None) -> Finding:
    """One Rasa instance: reachable, a model loaded, and whether it is the live one."""
    check = f"rasa {base_url}"
    try:
        token = doctor_tokens.query(settings, "rasa")  # Rasa's HTTP API reads it from the query string
        status, body = await _get(http, f"{base_url}/status", params=token)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Finding(
            FAIL,
            check,
            f"not reachable: {reason(exc)}",
            "Start it with `frontline rasa` (or `make run`), or point RASA_URL at it.",
        )
    if status == 401:
        return doctor_tokens.refused(settings, check, "rasa", "Rasa")
    if status != 200 or not isinstance(body, dict):
        return Finding(
            FAIL,
            check,
            f"/status answered HTTP {status}",
            "Check that RASA_URL points at a Rasa server run with --enable-api.",
        )
    loaded = body.get("model_file")
    if not loaded:
        return Finding(
            FAIL,
            check,
            f"runs without a model: it pulls the live one from {settings.app_url}/models/live",
            "Check that the app runs and that APP_URL reaches it from Rasa; `make train` if no model is live.",
        )
    name = Path(str(loaded)).name
    if live is not None and name != live:
        return Finding(
            WARN,
            check,
            f"serves {name}, not the live model {live}",
            f"It pulls every {settings.model_pull_seconds} s from {settings.app_url}/models/live: "
            "check that it reaches the app (APP_URL).",
        )
    return Finding(OK, check, f"serves the live model {name}")


async def action_server(settings: Settings, http: aiohttp.ClientSession) -> Finding:
    """The action server's /health and /ready, at ACTION_SERVER_URL's host and port."""
    url = urlparse(settings.action_server_url)
    base = f"{url.scheme}://{url.netloc}"
    check = f"actions {base}"
    try:
        token = doctor_tokens.headers(settings, "actions")
        status, _ = await _get(http, f"{base}/health", token)
        if status == 401:
            return doctor_tokens.refused(settings, check, "actions", "the action server")
        if status != 200:
            return Finding(
                FAIL,
                check,
                f"/health answered HTTP {status}",
                "Check that ACTION_SERVER_URL points at `frontline actions`.",
            )
        status, body = await _get(http, f"{base}/ready", token)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Finding(
            FAIL,
            check,
            f"not reachable: {reason(exc)}",
            "Start it with `frontline actions` (or `make run`), or fix ACTION_SERVER_URL.",
        )
    body = body if isinstance(body, dict) else {}
    waiting = body.get("pending_complaints") or 0
    if status != 200:
        failing = "; ".join(f"{k}: {v}" for k, v in (body.get("checks") or {}).items() if v != "ok") or f"HTTP {status}"
        return Finding(
            FAIL,
            check,
            f"not ready: {failing}",
            "Make the database reachable from the action server (same DATABASE_URL as the app).",
        )
    if waiting:
        return Finding(
            WARN,
            check,
            f"ready, {waiting} complaint(s) waiting on disk to be stored",
            "They are retried every TICKET_RETRY_SECONDS; if the number stays, read the action server's log.",
        )
    return Finding(OK, check, "healthy and ready")


async def app(settings: Settings, http: aiohttp.ClientSession) -> Finding:
    """The app's /ready on APP_HOST:APP_PORT."""
    host = "127.0.0.1" if settings.app_host in ("0.0.0.0", "", "::") else settings.app_host
    base = f"http://{host}:{settings.app_port}"
    check = f"app {base}"
    try:
        status, body = await _get(http, f"{base}/ready")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Finding(
            FAIL,
            check,
            f"not reachable: {reason(exc)}",
            "Start it with `frontline app` (or `make run`), or fix APP_HOST/APP_PORT.",
        )
    checks = (body or {}).get("checks") or {} if isinstance(body, dict) else {}
    if status == 200 and await _refuses_rasa(http, f"{base}/models/live", doctor_tokens.headers(settings, "app")):
        return doctor_tokens.refused(settings, check, "app", "the app (on /nlg and /models/live)")
    if status == 200:
        return Finding(OK, check, "ready (" + ", ".join(checks) + ")" if checks else "ready")
    failing = "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok") or f"HTTP {status}"
    return Finding(
        FAIL, check, f"not ready: {failing}", "Fix what /ready names; the checks above say how for each part."
    )


async def _refuses_rasa(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> bool:
    """Whether the app's model server refuses the token Rasa would send (a HEAD: no model is downloaded)."""
    try:
        async with http.head(url, headers=headers) as response:
            return response.status == 401
    except (aiohttp.ClientError, TimeoutError):
        return False


async def diagnose(settings: Settings, env: Mapping[str, str] | None = None) -> list[Finding]:
    """Every check, the network ones at once (each within TIMEOUT), in a fixed order."""
    env = os.environ if env is None else env
    findings = [configuration(settings, env)]
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    live, in_database = await live_model(settings)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        probes: list[Awaitable[Finding | list[Finding]]] = [
            database(settings),
            *(rasa(settings, http, url, live) for url in (settings.rasa_urls or (settings.rasa_url,))),
            action_server(settings, http),
            app(settings, http),
            telegram(settings, http),
        ]
        results = await asyncio.gather(*probes)
    findings.append(results[0])
    findings.append(model(settings, live, in_database))
    for result in results[1:]:
        findings.extend(result if isinstance(result, list) else [result])
    return findings


def report(findings: list[Finding], out: TextIO) -> int:
    """Print the findings; 1 when any FAILed, else 0."""
    for finding in findings:
        out.write(f"{finding.status:<4}  {finding.check}: {finding.detail}\n")
        out.writelines(f"        {line}\n" for line in finding.lines)
        if finding.status != OK and finding.fix:
            out.write(f"        → {finding.fix}\n")
    counts = {status: sum(f.status == status for f in findings) for status in (OK, WARN, FAIL)}
    out.write(f"\n{counts[OK]} OK, {counts[WARN]} WARN, {counts[FAIL]} FAIL\n")
    return 1 if counts[FAIL] else 0


def run(
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    loader: Callable[[Mapping[str, str]], Settings] = load_settings,
) -> int:
    """`frontline doctor`: the exit code (0: no FAIL)."""
    env = os.environ if env is None else env
    out = out or sys.stdout
    try:
        logs.log_format(env)
        settings = loader(env)
    except ConfigError as exc:
        return report(
            [
                Finding(
                    FAIL,
                    "configuration",
                    str(exc),
                    "Fix that variable in the environment (see the README's Configuration table).",
                )
            ],
            out,
        )
    return report(asyncio.run(diagnose(settings, env)), out)
