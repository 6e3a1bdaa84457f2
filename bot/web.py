"""The app's own HTTP server: liveness and readiness for whoever runs it (systemd, a load balancer, `frontline doctor`),
Telegram's webhook in webhook mode, and sub-applications such as the admin console."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[str | None]]  # None when fine, else what is wrong
CHECK_TIMEOUT = 3.0
MAX_BODY = 1024 * 1024


@dataclass
class HealthServer:
    """`/health`: the process answers. `/ready`: every check passes (503 with the failures otherwise)."""

    checks: dict[str, Check] = field(default_factory=dict)
    posts: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(default_factory=dict)
    gets: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(default_factory=dict)
    subapps: dict[str, web.Application] = field(default_factory=dict)  # prefix -> application mounted there
    _runner: web.AppRunner | None = None

    async def start(self, host: str, port: int, reuse_port: bool = False) -> int:
        """Listen; returns the port (useful with 0)."""
        # A body is read whole before it is used: 1 MiB at most, 413 beyond (the NLG endpoint sets its own limit).
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        for path, handler in self.posts.items():
            app.router.add_post(path, handler)
        for path, handler in self.gets.items():
            app.router.add_get(path, handler)
        for prefix, subapp in self.subapps.items():
            app.add_subapp(prefix, subapp)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        bound: int = site._server.sockets[0].getsockname()[1]
        log.info("health endpoints on http://%s:%d/health and /ready", host, bound)
        return bound

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def results(self) -> dict[str, str]:
        """Each check's verdict: "ok" or what is wrong."""

        async def one(check: Check) -> str:
            try:
                problem = await asyncio.wait_for(check(), CHECK_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 (a check that fails is a finding, not a crash)
                problem = f"{type(exc).__name__}: {exc}"
            return problem or "ok"

        verdicts = await asyncio.gather(*(one(check) for check in self.checks.values()))
        return dict(zip(self.checks, verdicts))

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ready(self, request: web.Request) -> web.Response:
        results = await self.results()
        ready = all(v == "ok" for v in results.values())
        return web.json_response({"ready": ready, "checks": results}, status=200 if ready else 503)
