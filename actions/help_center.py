"""The help center's live index, kept by the action server: loaded from the database on start, then kept in step
with the articles by polling their revisions.

Why the action server and not the app: the action answering the customer (`actions/kb_answer.py`) is the one that
searches, and it runs here, so the index lives next to it and a query costs no round trip; the app only writes
articles (the console, `frontline kb import`, the seed), and every write raises an article's revision, which this
index polls (one cheap query every POLL_SECONDS) to re-index only the articles that were added, changed or removed.
A change is searchable within a poll or two, with no Rasa training.

Encoding is the slow part (seconds for a few hundred passages on a small CPU): it runs in a worker thread, and the
vectors go to the database (`passage_vectors`), so a restart, or a second action server, encodes only texts that no
one has encoded before. Until the first load is done the index answers nothing, and the bot behaves as without a
help center.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actions import kb_store
from actions.kb_store import IndexedArticle
from bot.kb import Answer, HelpCenter
from bot.kb.encoder import Encoder, load_encoder
from bot.kb.text import text_hash

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
AFTER_FAILURE = 10  # polls to wait after the encoder failed to load (not to read its weights every poll)
MODEL_ID = "all-MiniLM-L6-v2"  # the stored vectors' encoder; another encoder stores its own


class LiveHelpCenter:
    """A HelpCenter whose articles follow the database: `load` once, then `refresh` (or `run`, which polls)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | Any = None,
        encoder: Callable[[], Encoder] = load_encoder,
        model_id: str = MODEL_ID,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._encoder_factory = encoder
        self.model_id = model_id
        self.poll_seconds = poll_seconds
        self.center: HelpCenter | None = None
        self.seen: dict[int, int] = {}  # article id -> the revision indexed
        self.titles: dict[int, tuple[str, str | None]] = {}  # article id -> (title, url)
        self.error: str | None = None  # why the last refresh failed (None after one that worked)
        self.encoder_error: str | None = None  # why the encoder could not be loaded: the help center is off
        self._encoder: Encoder | None = None
        self._lock = asyncio.Lock()

    @property
    def sessions(self) -> Any:
        """The database's sessions (the action server's own unless given): made on first use, never at import."""
        if self._sessions is None:
            from actions.db import sessions

            self._sessions = sessions()
        return self._sessions

    @property
    def ready(self) -> bool:
        return self.center is not None

    def status(self) -> str:
        """What /ready says of it."""
        if self.center is not None:
            return f"ready: {len(self.center.index)} articles"
        # Before the first load the database may not be migrated yet (the app migrates it on start): still loading.
        return f"off: {self.encoder_error}" if self.encoder_error else "loading"

    async def load(self) -> None:
        """Load the encoder (in a thread) and index every article; vectors come from the database where stored."""
        async with self._lock:
            if self.center is None:
                if self._encoder is None:
                    try:
                        self._encoder = await asyncio.to_thread(self._encoder_factory)
                    except Exception as exc:
                        self.encoder_error = f"{type(exc).__name__}: {exc}"
                        raise
                    self.encoder_error = None
                center = HelpCenter(self._encoder)
                await self._reindex(center, await self.sessions.read(kb_store.article_revisions), everything=True)
                self.center = center
                log.info("help center: %d articles indexed", len(center.index))

    async def refresh(self) -> bool:
        """Re-index the articles whose revision changed, add new ones, drop deleted ones; whether anything changed."""
        if self.center is None:
            await self.load()
            return True
        async with self._lock:
            return await self._reindex(self.center, await self.sessions.read(kb_store.article_revisions))

    async def _reindex(self, center: HelpCenter, now: dict[int, int], everything: bool = False) -> bool:
        gone = [article_id for article_id in self.seen if article_id not in now]
        changed = [article_id for article_id, revision in now.items() if self.seen.get(article_id) != revision]
        for article_id in gone:
            center.index.remove_article(str(article_id))
            self.seen.pop(article_id, None)
            self.titles.pop(article_id, None)
        if changed:
            rows = await self.sessions.read(kb_store.articles, None if everything else changed)
            hashes = [text_hash(t) for row in rows for t in center.index.texts_to_encode(row.title, row.passages)]
            stored = await self.sessions.read(kb_store.stored_vectors, self.model_id, hashes)
            new: dict[str, Any] = {}
            for row in rows:
                new.update(await self._put(center, row, stored))
            if new:
                await self.sessions.run(kb_store.store_vectors, self.model_id, new)
                log.info("help center: %d new passage vectors stored", len(new))
        if gone or changed:
            center.index.forget_unused_vectors()
            pruned = await self.sessions.run(kb_store.prune_vectors, self.model_id)
            if pruned:
                log.info("help center: %d passage vectors no article uses any more deleted", pruned)
        return bool(gone or changed)

    async def _put(self, center: HelpCenter, row: IndexedArticle, stored: dict[str, Any]) -> dict[str, Any]:
        new = await center.put_article_async(str(row.id), row.title, row.passages, stored)
        self.seen[row.id] = row.revision
        self.titles[row.id] = (row.title, row.url)
        return new

    async def answer(self, query: str) -> Answer | None:
        """The decision on a query; None while the index is not loaded."""
        if self.center is None:
            return None
        return await self.center.answer_async(query)

    def article(self, article_id: str | int) -> tuple[str, str | None] | None:
        """An indexed article's title and link."""
        return self.titles.get(int(article_id))

    async def run(self) -> None:
        """Load, then poll the revisions until cancelled; a failure is logged and tried again at the next poll."""
        while True:
            wait = self.poll_seconds
            try:
                await self.refresh()
                self.error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (a missing encoder, the database away: said in /ready, retried)
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("help center: could not refresh the index: %s", self.error)
                if self.encoder_error:
                    wait *= AFTER_FAILURE
            await asyncio.sleep(wait)


@cache
def live() -> LiveHelpCenter:
    """The action server's help center, on its database."""
    return LiveHelpCenter()
