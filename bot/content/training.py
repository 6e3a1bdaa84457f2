"""Content at start (seed, upgrade, a live model) and the files training reads (an export under var/)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.content import store, versions
from bot.content.files import write_files, write_tree
from bot.rasa_runtime import ROOT, fingerprint

log = logging.getLogger(__name__)


async def prepare(settings: Settings, sessions: async_sessionmaker[AsyncSession], root: Path = ROOT) -> None:
    """Seed the content on first start, upgrade what admins left alone when the repository's seed changed, and
    put the model of the current content live when none is."""
    async with sessions.begin() as session:
        done = await store.ensure_seeded(session, root)
        if done != "current":
            log.info("content %s from the repository's files", done)
        files = write_files(await store.load(session))
        live = await versions.ensure_live(session, settings.models_dir, fingerprint(settings, files))
        if live is None:
            log.warning("no model is live and none is trained for the content: run `frontline train`")


async def export_for_training(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                              folder: Path | None = None) -> tuple[Path, dict[str, str], int]:
    """Write the content under var/content/ (or `folder`); returns the folder, the files and the content version."""
    async with sessions() as session:
        content = await store.load(session)
        number = await store.version(session)
    folder = folder or settings.var_dir / "content" / "current"
    if folder.exists():
        shutil.rmtree(folder)
    write_tree(content, folder)
    return folder, write_files(content), number
