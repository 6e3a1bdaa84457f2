"""A small reverse proxy for trying several app instances behind one address (development and tests only).

Requests go round robin to the backends; a backend that refuses the connection or fails to answer is skipped for
DOWN_SECONDS and the request goes to the next live one (failover). A request no backend could take is answered 502,
and Telegram (or the emulator) delivers the update again later.

    python -m devstack.proxy --port 8443 http://127.0.0.1:8081 http://127.0.0.1:8082

`POST /_proxy/route` with `{"to": <backend index>}` pins every request to one backend (while it lives; `{"to": null}`
goes back to round robin); `GET /_proxy/stats` tells how many requests each backend took.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)
DOWN_SECONDS = 3.0
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "upgrade"}


class Proxy:
    """Round robin over `backends` (base URLs), with failover to the live ones."""

    def __init__(self, backends: list[str], timeout: float = 30) -> None:
        self.backends = backends
        self.pinned: int | None = None
        self.taken = [0] * len(backends)
        self._turn = itertools.count()
        self._down_until = [0.0] * len(backends)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._client: aiohttp.ClientSession | None = None

    def order(self) -> list[int]:
        """The backends to try for the next request: the pinned one, or the next in turn; then the others."""
        count = len(self.backends)
        first = self.pinned if self.pinned is not None else next(self._turn) % count
        ring = [(first + step) % count for step in range(count)]
        now = time.monotonic()
        return [i for i in ring if self._down_until[i] <= now] + [i for i in ring if self._down_until[i] > now]

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=self._timeout)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        for index in self.order():
            url = self.backends[index] + request.path_qs
            try:
                async with self._client.request(request.method, url, data=body, headers=headers) as answer:
                    payload = await answer.read()
                    self.taken[index] += 1
                    kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                    return web.Response(status=answer.status, body=payload, headers=kept)
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("backend %s failed (%s): trying the next one", self.backends[index], exc)
                self._down_until[index] = time.monotonic() + DOWN_SECONDS
        return web.Response(status=502, text="no backend answered")

    async def route(self, request: web.Request) -> web.Response:
        to = (await request.json()).get("to")
        self.pinned = None if to is None else int(to)
        return web.json_response({"pinned": self.pinned})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"backends": self.backends, "taken": self.taken, "pinned": self.pinned})

    def application(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/_proxy/route", self.route)
        app.router.add_get("/_proxy/stats", self.stats)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()

    async def start(self, host: str, port: int) -> tuple[web.AppRunner, int]:
        """Serve in this event loop; the runner (to clean up) and the port."""
        runner = web.AppRunner(self.application())
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("backends", nargs="+")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s proxy: %(message)s")
    web.run_app(Proxy(arguments.backends).application(), host=arguments.host, port=arguments.port, print=None)


if __name__ == "__main__":
    main()
