"""`frontline train`, `export` and `import`: the content in the database, from and to Rasa's files."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path

from bot.config import Settings
from bot.content import store, versions
from bot.content.files import ContentError, read_tree, write_files
from bot.content.training import export_for_training, prepare
from bot.rasa_runtime import ROOT, fingerprint, validate
from bot.rasa_runtime import train as rasa_train
from bot.storage.db import create_engine, create_sessionmaker, migrate

log = logging.getLogger(__name__)
CLI = "frontline train"


async def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    engine = create_engine(settings.database_url)
    await migrate(engine)
    return engine, create_sessionmaker(engine)


def train(settings: Settings, *, force: bool = False, live: bool = False) -> int:
    """Train on the database's content when it changed; the model goes live unless an admin chose another."""
    async def before() -> tuple[Path, dict[str, str], int]:
        engine, sessions = await _sessions(settings)
        try:
            await prepare(settings, sessions)
            return await export_for_training(settings, sessions)
        finally:
            await engine.dispose()

    folder, files, number = asyncio.run(before())
    started = time.monotonic()
    path = rasa_train(settings, force=force, content_dir=folder, files=files)
    seconds = time.monotonic() - started

    async def after() -> str:
        engine, sessions = await _sessions(settings)
        try:
            async with sessions.begin() as session:
                current = await versions.live(session)
                pointer = await store.get_setting(session, versions.LIVE_KEY) or {}
                if current is not None and current.fingerprint == fingerprint(settings, files):
                    return f"{path} (live already, version {current.id})"
                version = await versions.register(session, path, fingerprint(settings, files), CLI, content_version=number,
                                                  train_seconds=round(seconds, 1))
                if current is None or live or pointer.get("by", CLI) in (CLI, "seed"):
                    await versions.put_live(session, version.id, CLI)
                    return f"{path} (version {version.id}, live)"
                return f"{path} (version {version.id}; an admin's version {current.id} stays live: put it live in the console)"
        finally:
            await engine.dispose()

    print(asyncio.run(after()))
    return 0


def export(settings: Settings, folder: str | None) -> int:
    """Write the database's content as domain.yml and nlu/*.yml under `folder` (the project by default)."""
    target = Path(folder).resolve() if folder else ROOT

    async def run() -> list[Path]:
        engine, sessions = await _sessions(settings)
        try:
            async with sessions.begin() as session:
                await store.ensure_seeded(session, ROOT)
                return await store.export(session, target)
        finally:
            await engine.dispose()

    for path in asyncio.run(run()):
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
        engine, sessions = await _sessions(settings)
        try:
            async with sessions.begin() as session:
                await store.replace_all(session, content, f"frontline import {source}", seed=source == ROOT)
                if source == ROOT:
                    await store.put_setting(session, store.SEED_KEY, {"fingerprint": store.seed_fingerprint(ROOT)})
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(f"Imported {len(content.intents)} intents and {len(content.responses)} responses from {source}")
    return 0



