"""The live model, served on Rasa's model-server protocol: every Rasa instance pulls it (ETag, 304 when current).

On PostgreSQL the model comes from the database a chunk at a time (`bot/content/model_store.py`), so any app
instance serves it and none holds a pooled connection while it is sent; on SQLite, from the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from bot.content import versions
from bot.content.model_store import store_for
from bot.storage.db import Sessions

log = logging.getLogger(__name__)
PATH = "/models/live"


class ModelServer:
    """GET /models/live: the live version's model, its fingerprint as the ETag."""

    def __init__(self, sessions: Sessions, models_dir: Path) -> None:
        self._sessions = sessions
        self._store = store_for(sessions, models_dir)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        live = await self._sessions.read(versions.live_version)
        if live is None:
            return web.Response(status=404, text="no model is live yet: train one (frontline train)")
        etag = live.fingerprint
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        stored = await self._store.open(live.fingerprint)
        if stored is None:
            log.error("the live model %s is missing from the model store", live.file)
            return web.Response(status=404, text=f"the live model's file {live.file} is missing")
        # (FileResponse would put its own ETag in place of ours)
        response = web.StreamResponse(headers={"ETag": etag, "filename": stored.name})
        response.content_type = "application/gzip"
        response.content_length = stored.size
        await response.prepare(request)
        async for piece in stored.pieces:
            await response.write(piece)
        await response.write_eof()
        return response
