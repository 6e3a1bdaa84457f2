"""The app run whole (intake, handlers, outbox) against the in-process emulator and a scripted Rasa."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import serve
from bot.config import load_settings
from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.storage.db import create_engine, create_sessionmaker
from devstack.stack import free_port

TOKEN = "123456789:unit-test-token"
WEBHOOK_SECRET = "unit-test-webhook-secret"


@dataclass
class ScriptedRasa:
    """Stands in for Rasa's REST channel: records what it was sent, answers what the test scripts."""

    answer: Callable[[dict[str, Any]], Any] = lambda body: [{"text": f"echo: {body['message']}"}]
    received: list[dict[str, Any]] = field(default_factory=list)
    tracker_events: list[dict[str, Any]] = field(default_factory=list)
    appended: list[tuple[str, Any]] = field(default_factory=list)  # events the app appended to a tracker

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        result = self.answer(body)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.Response):
            return result
        return web.json_response(result)

    tracker_reads: int = 0
    # The tracker's events at each reading (the first is 1), when a test wants them to change; else tracker_events.
    tracker_at: Callable[[int], list[dict[str, Any]]] | None = None

    async def tracker(self, request: web.Request) -> web.Response:
        self.tracker_reads += 1
        events = self.tracker_at(self.tracker_reads) if self.tracker_at else self.tracker_events
        return web.json_response({"events": events})

    async def append_events(self, request: web.Request) -> web.Response:
        self.appended.append((request.match_info["sender"], await request.json()))
        return web.json_response({})


@dataclass
class Harness:
    emulator: EmulatorClient
    rasa: ScriptedRasa
    sessions: Any
    user_id: int = 4242
    group_id: int | None = None  # the agents' forum group, when the desk is on
    agent_id: int = 5151
    app: asyncio.Task | None = None  # the app itself: done only if it stopped (or crashed)
    settings: Any = None  # the app's settings

    async def say(self, text: str, timeout: float = 5) -> list[dict]:
        after = (await self.emulator.sent(self.user_id)).last
        await self.emulator.send_text(self.user_id, text)
        return await self.emulator.wait_for_text(self.user_id, after, timeout=timeout)


async def eventually(probe: Callable[[], Any], expected: Any, timeout: float = 5) -> Any:
    """True once the probe returns `expected`, False if it never does within the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await probe()) != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return value == expected


async def callback_answer(harness: Harness, query_id: str) -> dict:
    """The bot's answer to a button press, once it has answered (or what there is after 5 s)."""
    for _ in range(100):
        answer = await harness.emulator.callback_answer(query_id)
        if answer.get("answered"):
            break
        await asyncio.sleep(0.05)
    return answer


@contextlib.asynccontextmanager
async def running_harness(
    tmp_path: Path, *, desk: bool = False, webhook: bool = False, **env_extra: str
) -> AsyncIterator[Harness]:
    """Emulator + scripted Rasa + the real app (SQLite), all in this event loop; `desk` adds the agents' group."""
    emulator = EmulatorServer()
    emulator_url = await emulator.start("127.0.0.1", 0)
    rasa = ScriptedRasa()
    rasa_app = web.Application()
    rasa_app.router.add_post("/webhooks/rest/webhook", rasa.webhook)
    rasa_app.router.add_get("/conversations/{sender}/tracker", rasa.tracker)
    rasa_app.router.add_post("/conversations/{sender}/tracker/events", rasa.append_events)
    runner = web.AppRunner(rasa_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rasa_port = site._server.sockets[0].getsockname()[1]
    env = {
        "FRONTLINE_VAR": str(tmp_path),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": f"{emulator_url}/bot",
        "RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "RASA_TIMEOUT": "1.5",
        "APP_PORT": "0",
    }
    if webhook:
        port = free_port()
        env |= {
            "APP_PORT": str(port),
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    async with EmulatorClient(emulator_url) as control:
        await control.add_user("Maya", user_id=4242, username="maya")
        group_id = None
        if desk:
            await control.add_user("Alex", user_id=5151, username="alex_agent")
            await control.add_user("Bo", user_id=5252, username="bo_agent")
            group = await control.add_group(
                "Agents",
                is_forum=True,
                members=[5151, 5252],
                bot_rights={"can_manage_topics": True, "can_delete_messages": True},
            )
            group_id = group["id"]
            env["AGENT_CHAT_ID"] = str(group_id)
        env.update(env_extra)
        settings = load_settings(env)
        stop = asyncio.Event()
        app = asyncio.create_task(serve(settings, stop))
        engine = create_engine(settings.database_url)
        for _ in range(100):
            if await control.calls("setWebhook" if webhook else "getUpdates"):
                break
            await asyncio.sleep(0.05)
        yield Harness(control, rasa, create_sessionmaker(engine), group_id=group_id, app=app, settings=settings)
    stop.set()
    await asyncio.wait_for(app, 30)
    await engine.dispose()
    await runner.cleanup()
    await emulator.stop()
