"""Models in PostgreSQL (bot/content/model_store.py, bot/storage/model_blobs.py): stored once, in chunks; served by
any app instance from the database, with no file on its disk; earlier versions put back live; SQLite keeps files."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import load_settings
from bot.content import model_store, modelserver, seeding, versions
from bot.content.deploy import Trainer
from bot.content.files import ContentError, read_tree
from bot.rasa_runtime import ROOT
from bot.storage import model_blobs
from bot.storage.db import Sessions, create_engine, create_sessionmaker, migrate
from bot.web import HealthServer
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

MODEL = os.urandom(2 * model_blobs.CHUNK_BYTES + 12345)  # three chunks, the last one short


@pytest.fixture
async def database() -> AsyncIterator[str]:
    url = await _fresh_postgres_database()
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@contextlib.asynccontextmanager
async def instance(url: str, **pool: int) -> AsyncIterator[Sessions]:
    """One app instance's sessions on the shared database (its own engine and pool, as on another machine)."""
    engine = create_async_engine(url, **pool) if pool else create_engine(url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def server_app(server: HealthServer) -> web.Application:
    app = web.Application()
    for path, handler in server.gets.items():
        app.router.add_get(path, handler)
    return app


def _model(folder: Path, name: str, data: bytes = MODEL) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.tar.gz"
    path.write_bytes(data)
    return path


async def _live(sessions: Sessions, path: Path, name: str) -> int:
    version = await sessions.run(versions.register, path, name, "ann")
    await sessions.run(versions.put_version_live, version.id, "ann")
    return version.id


async def test_a_model_stored_by_one_instance_is_served_by_another_without_its_file(
    database: str, tmp_path: Path
) -> None:
    async with instance(database) as one, instance(database) as two:
        path = _model(tmp_path / "one", "f1")
        assert await model_store.store_for(one, tmp_path / "one").put(path, "f1")
        await _live(one, path, "f1")
        path.unlink()  # the trained file is gone from every disk: the database has it
        server = HealthServer(gets={modelserver.PATH: modelserver.ModelServer(two, tmp_path / "two").handle})
        async with TestClient(TestServer(server_app(server))) as client:
            response = await client.get(modelserver.PATH)
            assert response.status == 200 and response.headers["ETag"] == "f1"
            assert int(response.headers["Content-Length"]) == len(MODEL) and await response.read() == MODEL
            assert (await client.get(modelserver.PATH, headers={"If-None-Match": "f1"})).status == 304
        async with two() as session:
            stored = await session.get(model_blobs.ModelFile, "f1")
            count = await session.scalar(select(func.count()).select_from(model_blobs.ModelChunk))
        assert (stored.size, stored.chunks, count) == (len(MODEL), 3, 3)


async def test_two_instances_storing_one_model_at_once_store_it_once(database: str, tmp_path: Path) -> None:
    async with instance(database) as one, instance(database) as two:
        stores = [model_store.store_for(s, tmp_path / name) for s, name in ((one, "one"), (two, "two"))]
        paths = [_model(tmp_path / name, "f2") for name in ("one", "two")]
        outcomes = await asyncio.gather(*(store.put(path, "f2") for store, path in zip(stores, paths, strict=True)))
        assert sorted(outcomes) == [False, True]
        async with one() as session:
            numbers = (await session.scalars(select(model_blobs.ModelChunk.number))).all()
        assert sorted(numbers) == [0, 1, 2]


async def test_a_model_is_sent_without_holding_a_pooled_connection(database: str, tmp_path: Path) -> None:
    """A pool of one: while a Rasa instance has not read the model yet (24 MiB: more than the sockets' buffers hold,
    so the sending waits for it), the instance's other work gets the connection (each chunk is read in a
    transaction of its own)."""
    async with instance(database, pool_size=1, max_overflow=0, pool_timeout=2) as sessions:
        path = _model(tmp_path, "f3", os.urandom(24 * model_blobs.CHUNK_BYTES))
        await model_store.store_for(sessions, tmp_path).put(path, "f3")
        await _live(sessions, path, "f3")
        server = HealthServer(gets={modelserver.PATH: modelserver.ModelServer(sessions, tmp_path / "none").handle})
        async with TestClient(TestServer(server_app(server))) as client:
            response = await client.get(modelserver.PATH)
            first = await response.content.readexactly(model_blobs.CHUNK_BYTES)
            assert (await sessions.read(versions.live_version)).fingerprint == "f3"  # while the rest waits
            rest = await response.read()
        assert first + rest == path.read_bytes()


async def test_an_earlier_version_goes_back_live_from_the_database_or_from_a_file_trained_before(
    database: str, tmp_path: Path
) -> None:
    """The way back: a version stored in the database; one trained before models moved there (its file only on
    the disk of the instance that puts it back), stored on the way; one whose model is nowhere, refused."""
    async with instance(database) as sessions:
        await sessions.run(seeding.ensure_seeded, read_tree(ROOT))
        trainer = Trainer(load_settings({"FRONTLINE_VAR": str(tmp_path)}), sessions)
        models = tmp_path / "models"
        stored = _model(models, "old1", b"stored")
        await model_store.store_for(sessions, models).put(stored, "old1")
        first = await sessions.run(versions.register, stored, "old1", "ann")
        stored.unlink()
        before = await sessions.run(versions.register, _model(models, "old2", b"file only"), "old2", "ann")
        lost = await sessions.run(versions.register, models / "gone.tar.gz", "gone", "ann")
        await trainer.put_live(before.id, "ann")
        assert await model_store.store_for(sessions, tmp_path / "elsewhere").has("old2")
        await trainer.put_live(first.id, "ann")
        assert (await sessions.read(versions.live_version)).fingerprint == "old1"
        with pytest.raises(ContentError, match="missing"):
            await trainer.put_live(lost.id, "ann")
        assert (await sessions.read(versions.live_version)).fingerprint == "old1"


async def test_on_sqlite_models_stay_files(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    try:
        store = model_store.store_for(sessions, tmp_path / "models")
        assert isinstance(store, model_store.FileStore) and not isinstance(store, model_store.DatabaseStore)
        assert await store.put(_model(tmp_path / "trained", "f4"), "f4")
        assert (tmp_path / "models" / "f4.tar.gz").read_bytes() == MODEL
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(model_blobs.ModelFile)) == 0
    finally:
        sessions.dispose()
        await engine.dispose()


class FakeRasa(Trainer):
    """Rasa's training replaced by writing the model file; the evaluation left out."""

    trained: list[str] = []  # noqa: RUF012 (every instance's trainings, in order)

    async def _rasa(self, version_id: int, arguments: list[str]) -> None:
        out = Path(arguments[arguments.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        name = arguments[arguments.index("--fixed-model-name") + 1]
        (out / f"{name}.tar.gz").write_bytes(MODEL)
        self.trained.append(str(self._settings.var_dir))

    async def _evaluate(self, version_id, content, work):  # type: ignore[no-untyped-def]
        return None


async def test_a_model_trained_on_one_machine_is_not_trained_again_on_another_and_goes_live_there(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.content import deploy

    monkeypatch.setattr(deploy, "build_spacy_pipeline", lambda settings: None)
    monkeypatch.setattr(FakeRasa, "trained", [])
    async with instance(database) as one, instance(database) as two:
        await one.run(seeding.ensure_seeded, read_tree(ROOT))
        trainers = [
            FakeRasa(load_settings({"FRONTLINE_VAR": str(tmp_path / n)}), s) for n, s in (("a", one), ("b", two))
        ]
        first = await trainers[0].start("ann")
        await trainers[0].wait()
        second = await trainers[1].start("bob")  # the same content, on the other machine
        await trainers[1].wait()
        assert FakeRasa.trained == [str((tmp_path / "a").resolve())]
        await trainers[1].put_live(second, "bob")
        assert not (tmp_path / "b" / "models").exists()
        server = HealthServer(gets={modelserver.PATH: modelserver.ModelServer(two, tmp_path / "b" / "models").handle})
        async with TestClient(TestServer(server_app(server))) as client:
            response = await client.get(modelserver.PATH)
            assert response.status == 200 and await response.read() == MODEL
        first_version = await one.read(versions.get_version, first)
        assert first_version.fingerprint == response.headers["ETag"]


async def test_the_doctor_finds_the_live_model_in_the_database_with_no_file_on_this_machine(
    database: str, tmp_path: Path
) -> None:
    from bot.ops import doctor

    settings = load_settings({"FRONTLINE_VAR": str(tmp_path / "var"), "DATABASE_URL": database})
    async with instance(database) as sessions:
        path = _model(tmp_path / "trained", "f5")
        await model_store.store_for(sessions, tmp_path / "trained").put(path, "f5")
        await _live(sessions, path, "f5")
    live, in_database = await doctor.live_model(settings)
    assert (live, in_database) == ("f5.tar.gz", True)
    assert doctor.model(settings, live, in_database).status == "OK"


def test_frontline_train_on_another_machine_finds_the_model_in_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`frontline train` stores its model in PostgreSQL; run on a second machine (another FRONTLINE_VAR), it trains
    nothing and finds that model live."""
    from bot.content import commands

    trained: list[Path] = []

    def rasa_train(settings, *, force, content_dir, files):  # type: ignore[no-untyped-def]
        path = _model(settings.models_dir, commands.fingerprint(settings, files))
        trained.append(path)
        return path

    monkeypatch.setattr(commands, "rasa_train", rasa_train)
    url = asyncio.run(_fresh_postgres_database())
    try:
        engine = create_engine(url)
        asyncio.run(migrate(engine))
        asyncio.run(engine.dispose())
        for machine in ("a", "b"):
            assert commands.train(load_settings({"FRONTLINE_VAR": str(tmp_path / machine), "DATABASE_URL": url})) == 0
        assert [path.parent.parent.name for path in trained] == ["a"]
        assert "live already" in capsys.readouterr().out.splitlines()[-1]
        trained[0].unlink()

        async def served() -> bytes:
            async with instance(url) as sessions:
                live = await sessions.read(versions.live_version)
                stored = await model_store.store_for(sessions, tmp_path / "b").open(live.fingerprint)
                return b"".join([piece async for piece in stored.pieces])

        assert asyncio.run(served()) == MODEL
    finally:
        asyncio.run(_drop_postgres_database(url))
