"""Content at start (seed, upgrade, a live model) and the files training reads (an export under var/)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.content import current, seeding, versions
from bot.content.files import Content, read_tree, write_files, write_tree
from bot.content.help_center import SEED_FOLDER, read_folder
from bot.content.model_store import store_for
from bot.rasa_runtime import ROOT, fingerprint
from bot.storage.db import Sessions

log = logging.getLogger(__name__)


async def prepare(settings: Settings, sessions: Sessions, root: Path = ROOT) -> None:
    """Seed the content on first start, upgrade what admins left alone when the repository's seed changed, and
    put the model of the current content live when none is."""
    done = await sessions.run(seeding.ensure_seeded, read_tree(root))
    if done != "current":
        log.info("content %s from the repository's files", done)
    await seed_articles(sessions, root)
    files = write_files(await sessions.read(current.load))
    store = store_for(sessions, settings.models_dir)
    name = fingerprint(settings, files)
    live = await sessions.run(versions.ensure_live, name, await store.ensure(name))
    if live is None:
        log.warning("no model is live and none is trained for the content: run `frontline train`")
    elif not await store.ensure(live.fingerprint):  # (on PostgreSQL: stored from this machine's file if need be)
        log.error("the live model %s is in no model store here: restore it or train again", live.file)


async def seed_articles(sessions: Sessions, root: Path = ROOT) -> str:
    """The repository's help center into the database (seeding.ensure_articles_seeded); its unreadable files logged."""
    folder = read_folder(root / SEED_FOLDER)
    for name, reason in folder.skipped:
        if not name.lower().startswith("readme"):
            log.warning("help center: %s/%s is not imported: %s", SEED_FOLDER, name, reason)
    done = await sessions.run(seeding.ensure_articles_seeded, folder.articles)
    if done != "current":
        log.info("help-center articles %s from %s/", done, SEED_FOLDER)
    return done


def _content_and_version(session: Session) -> tuple[Content, int]:
    """The content, and the version it is at."""
    return current.load(session), current.version(session)


async def export_for_training(
    settings: Settings, sessions: Sessions, folder: Path | None = None
) -> tuple[Path, dict[str, str], int]:
    """Write the content under var/content/ (or `folder`); returns the folder, the files and the content version."""
    content, number = await sessions.read(_content_and_version)
    folder = folder or settings.var_dir / "content" / "current"
    if folder.exists():
        shutil.rmtree(folder)
    write_tree(content, folder)
    return folder, write_files(content), number
