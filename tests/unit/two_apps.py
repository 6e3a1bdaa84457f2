"""Two app instances ("machines") over one PostgreSQL database, behind one webhook address (devstack/proxy.py):
the real app twice in this event loop, each with its own FRONTLINE_VAR and port, the in-process emulator and a
scripted Rasa. `pin(0)` / `pin(1)` sends every update to one instance; `pin(None)` goes round robin."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import serve
from bot.config import load_settings
from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.storage.db import create_engine, create_sessionmaker
from devstack.proxy import Proxy
from devstack.stack import free_port
from tests.unit.chat_harness import TOKEN, WEBHOOK_SECRET, Harness, ScriptedRasa
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

PROXY_TIMEOUT = 10.0  # seconds the proxy gives an instance before it tries the other


@dataclass
class TwoApps(Harness):
    proxy: Any = None
    apps: tuple[asyncio.Task, ...] = ()
    stops: tuple[asyncio.Event, ...] = ()

    def pin(self, instance: int | None) -> None:
        self.proxy.pinned = instance

    async def new_text(self, chat_id: int, after: int, until: str, timeout: float) -> list[dict]:
        """The chat's messages after `after`, once one contains `until`; on a timeout, what the proxy and the
        emulator saw meanwhile (which instance took the updates, what the bot asked of Telegram)."""
        try:
            return await self.emulator.wait_for_text(chat_id, after, predicate=lambda t: until in t, timeout=timeout)
        except TimeoutError as exc:
            calls = [
                (c.get("method"), c.get("status"), (c.get("params") or {}).get("chat_id"))
                for c in (await self.emulator.calls())[-12:]
            ]
            raise AssertionError(f"{exc}; the proxy's taken {self.proxy.taken}, the last calls {calls}") from exc

    async def stop(self, instance: int) -> None:
        """Stop one instance (cleanly: its port closes, the proxy fails over)."""
        self.stops[instance].set()
        await asyncio.wait_for(self.apps[instance], 30)


async def _rasa_server(rasa: ScriptedRasa) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", rasa.webhook)
    app.router.add_get("/conversations/{sender}/tracker", rasa.tracker)
    app.router.add_post("/conversations/{sender}/tracker/events", rasa.append_events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@contextlib.asynccontextmanager
async def two_apps(tmp_path: Path, **env_extra: str) -> AsyncIterator[TwoApps]:
    """Alex (5151) and Bo (5252) in the agents' forum group, Maya (4242) a customer."""
    database = await _fresh_postgres_database()
    emulator = EmulatorServer()
    emulator_url = await emulator.start("127.0.0.1", 0)
    rasa = ScriptedRasa()
    rasa_runner, rasa_port = await _rasa_server(rasa)
    ports = [free_port(), free_port()]
    proxy = Proxy([f"http://127.0.0.1:{port}" for port in ports], timeout=PROXY_TIMEOUT)
    proxy_runner, proxy_port = await proxy.start("127.0.0.1", 0)
    apps: list[asyncio.Task] = []
    stops = [asyncio.Event(), asyncio.Event()]
    engine = create_engine(database)
    try:
        async with EmulatorClient(emulator_url) as control:
            await control.add_user("Maya", user_id=4242, username="maya")
            await control.add_user("Alex", user_id=5151, username="alex_agent")
            await control.add_user("Bo", user_id=5252, username="bo_agent")
            group = await control.add_group(
                "Agents",
                is_forum=True,
                members=[5151, 5252],
                bot_rights={"can_manage_topics": True, "can_delete_messages": True},
            )
            for instance, (port, stop) in enumerate(zip(ports, stops)):
                var = tmp_path / f"machine-{instance}"
                var.mkdir()
                env = {
                    "FRONTLINE_VAR": str(var),
                    "DATABASE_URL": database,
                    "TELEGRAM_BOT_TOKEN": TOKEN,
                    "TELEGRAM_API_URL": f"{emulator_url}/bot",
                    "RASA_URL": f"http://127.0.0.1:{rasa_port}",
                    "RASA_TIMEOUT": "1.5",
                    "APP_PORT": str(port),
                    "WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/telegram",
                    "WEBHOOK_SECRET": WEBHOOK_SECRET,
                    "AGENT_CHAT_ID": str(group["id"]),
                    **env_extra,
                }
                apps.append(asyncio.create_task(serve(load_settings(env), stop)))
                for _ in range(200):  # one after the other: each has set the webhook (to the proxy)
                    if len(await control.calls("setWebhook")) > instance:
                        break
                    await asyncio.sleep(0.05)
            yield TwoApps(
                control,
                rasa,
                create_sessionmaker(engine),
                group_id=group["id"],
                proxy=proxy,
                apps=tuple(apps),
                stops=tuple(stops),
            )
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*(asyncio.wait_for(app, 30) for app in apps), return_exceptions=True)
        await engine.dispose()
        await proxy_runner.cleanup()
        await rasa_runner.cleanup()
        await emulator.stop()
        await _drop_postgres_database(database)
