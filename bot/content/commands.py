"""`frontline train`, `export` and `import`: the content in the database, from and to Rasa's files."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.content import current, seeding, versions
from bot.content.files import Content, ContentError, read_tree, write_files, write_tree
from bot.content.model_store import file_name, store_for
from bot.content.training import export_for_training, prepare
from bot.rasa_runtime import ROOT, fingerprint, validate
from bot.rasa_runtime import train as rasa_train
from bot.storage.db import Sessions, create_engine, create_sessionmaker, migrate
from bot.storage.settings import get_setting, put_setting

log = logging.getLogger(__name__)
CLI = "frontline train"


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[Sessions]:
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    try:
        await migrate(engine)
        yield sessions
    finally:
        sessions.dispose()
        await engine.dispose()


def train(settings: Settings, *, force: bool = False, live: bool = False) -> int:
    """Train on the database's content when it changed; the model goes live unless an admin chose another.

    On PostgreSQL the model is stored in the database (every app instance serves it), and a model of the content
    stored there already, trained on any machine, is not trained again."""

    async def before() -> tuple[Path, dict[str, str], int, bool]:
        async with _sessions(settings) as sessions:
            await prepare(settings, sessions)
            folder, files, number = await export_for_training(settings, sessions)
            stored = await store_for(sessions, settings.models_dir).has(fingerprint(settings, files))
            return folder, files, number, stored

    folder, files, number, stored = asyncio.run(before())
    name = fingerprint(settings, files)
    started = time.monotonic()
    if stored and not force:
        path = settings.models_dir / file_name(name)
        log.info("model %s is stored already; not retraining", name)
    else:
        path = rasa_train(settings, force=force, content_dir=folder, files=files)
    seconds = time.monotonic() - started

    async def after() -> str:
        async with _sessions(settings) as sessions:
            if path.is_file():
                await store_for(sessions, settings.models_dir).put(path, name)
            return await sessions.run(_record, path, name, number, round(seconds, 1), live=live)

    print(asyncio.run(after()))
    return 0


def _record(session: Session, path: Path, name: str, number: int, seconds: float, *, live: bool) -> str:
    """The trained model as a new version, put live unless an admin chose another; what was done, in words."""
    now = versions.live_version(session)
    pointer = get_setting(session, versions.LIVE_KEY) or {}
    if now is not None and now.fingerprint == name:
        return f"{path} (live already, version {now.id})"
    version = versions.register(session, path, name, CLI, content_version=number, train_seconds=seconds)
    if now is None or live or pointer.get("by", CLI) in (CLI, "seed"):
        versions.put_version_live(session, version.id, CLI)
        return f"{path} (version {version.id}, live)"
    return f"{path} (version {version.id}; an admin's version {now.id} stays live: put it live in the console)"


def export(settings: Settings, folder: str | None) -> int:
    """Write the database's content as domain.yml and nlu/*.yml under `folder` (the project by default)."""
    target = Path(folder).resolve() if folder else ROOT

    async def run() -> Content:
        async with _sessions(settings) as sessions:
            await sessions.run(seeding.ensure_seeded, read_tree(ROOT))
            return await sessions.read(current.load)

    for path in write_tree(asyncio.run(run()), target):
        print(path)
    return 0


def import_files(settings: Settings, folder: str | None) -> int:
    """Load domain.yml and nlu/*.yml into the database, after Rasa's own validation and ours."""
    source = Path(folder).resolve() if folder else ROOT
    try:
        content = read_tree(source)
    except (ContentError, OSError) as exc:
        print(f"Not imported: {exc}")
        return 1
    with tempfile.TemporaryDirectory(prefix="frontline-import-") as scratch:
        for path, text in write_files(content).items():
            (Path(scratch) / path).parent.mkdir(parents=True, exist_ok=True)
            (Path(scratch) / path).write_text(text, encoding="utf-8")
        problem = validate(settings, Path(scratch))
    if problem:
        print(f"Not imported: Rasa rejects these files:\n{problem}")
        return 1

    async def run() -> None:
        async with _sessions(settings) as sessions:
            await sessions.run(_import, content, f"frontline import {source}", seed=source == ROOT)

    asyncio.run(run())
    print(f"Imported {len(content.intents)} intents and {len(content.responses)} responses from {source}")
    return 0


def _import(session: Session, content: Content, who: str, *, seed: bool) -> None:
    """`content` as the whole content; from the repository's files, it is the seed too (see seeding.upgrade_seed)."""
    seeding.replace_all(session, content, who, seed=seed)
    if seed:
        put_setting(session, seeding.SEED_KEY, {"fingerprint": seeding.fingerprint(content)})
