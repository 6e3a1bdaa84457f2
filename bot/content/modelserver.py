"""The live model, served on Rasa's model-server protocol: every Rasa instance pulls it (ETag, 304 when current)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from bot.content import versions
from bot.storage.db import Sessions

log = logging.getLogger(__name__)
PATH = "/models/live"


class ModelServer:
    """GET /models/live: the live version's file, its fingerprint as the ETag."""

    def __init__(self, sessions: Sessions, models_dir: Path) -> None:
        self._sessions = sessions
        self._models_dir = models_dir

    async def handle(self, request: web.Request) -> web.StreamResponse:
        live = await self._sessions.read(versions.live_version)
        if live is None:
            return web.Response(status=404, text="no model is live yet: train one (frontline train)")
        etag = live.fingerprint
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        path = self._models_dir / live.file
        if not path.is_file():
            log.error("the live model %s is missing from %s", live.file, self._models_dir)
            return web.Response(status=404, text=f"the live model's file {live.file} is missing")
        body = await asyncio.to_thread(path.read_bytes)  # (FileResponse would put its own ETag in place of ours)
        return web.Response(body=body, headers={"ETag": etag, "filename": live.file}, content_type="application/gzip")
