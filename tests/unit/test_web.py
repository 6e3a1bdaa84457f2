"""The app's health and readiness endpoints."""

from __future__ import annotations

import aiohttp

from bot.web import HealthServer


async def test_ready_only_when_every_check_passes() -> None:
    state = {"rasa": None}

    async def database() -> str | None:
        return None

    async def rasa() -> str | None:
        return state["rasa"]

    async def broken() -> str | None:
        raise ConnectionError("refused")

    server = HealthServer({"database": database, "rasa": rasa})
    port = await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/health") as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{port}/ready") as response:
                assert (response.status, await response.json()) == (
                    200,
                    {"ready": True, "checks": {"database": "ok", "rasa": "ok"}},
                )
            state["rasa"] = "Rasa runs but has no model loaded"
            server.checks["telegram"] = broken
            async with http.get(f"http://127.0.0.1:{port}/ready") as response:
                body = await response.json()
            assert response.status == 503 and body["ready"] is False
            assert body["checks"] == {
                "database": "ok",
                "rasa": "Rasa runs but has no model loaded",
                "telegram": "ConnectionError: refused",
            }
    finally:
        await server.stop()
