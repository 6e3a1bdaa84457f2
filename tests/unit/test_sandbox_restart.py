"""The sandbox keeps its database across restarts; its new emulator must not reuse update ids the app has stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from bot.app import serve
from bot.config import load_settings
from bot.emulator.client import EmulatorClient
from devstack.stack import free_port
from tests.unit.chat_harness import ScriptedRasa


async def _one_sandbox_run(var: Path, rasa_url: str, text: str) -> list[str]:
    port = free_port()
    settings = load_settings(
        {"FRONTLINE_VAR": str(var), "RASA_URL": rasa_url, "EMULATOR_PORT": str(port), "APP_PORT": "0"}
    )
    stop = asyncio.Event()
    app = asyncio.create_task(serve(settings, stop))
    try:
        async with EmulatorClient(f"http://127.0.0.1:{port}") as emulator:
            for _ in range(200):
                try:
                    if await emulator.calls("getUpdates"):
                        break
                except OSError:
                    pass
                await asyncio.sleep(0.05)
            await emulator.add_user("Maya", user_id=4242)
            await emulator.send_text(4242, text)
            return [m["text"] for m in await emulator.wait_for_text(4242, timeout=10)]
    finally:
        stop.set()
        await asyncio.wait_for(app, 30)


async def test_a_restarted_sandbox_answers_new_messages(tmp_path: Path) -> None:
    rasa = ScriptedRasa()
    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", rasa.webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert await _one_sandbox_run(tmp_path, f"http://127.0.0.1:{port}", "first run") == ["echo: first run"]
        assert await _one_sandbox_run(tmp_path, f"http://127.0.0.1:{port}", "second run") == ["echo: second run"]
    finally:
        await runner.cleanup()
