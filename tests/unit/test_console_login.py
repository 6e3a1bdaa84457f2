"""Signing in to the console as an attacker would try it, over HTTP: no name told apart, nobody kept out, bodies limited.

Time is a fake clock (the sign-in's `utcnow` and its `pause`), hashes are counted (and made fast) through the
module's `hash_password`, so nothing here waits or reads the wall clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import make_url

from bot.admin import accounts
from bot.admin.console import build_console
from bot.admin.pages import PREFIX
from bot.config import load_settings
from bot.content.deploy import Trainer
from bot.storage.db import create_engine, create_sessionmaker, migrate
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
MESSAGE = re.compile(r'<p class="message error"[^>]*>(.*?)</p>', re.DOTALL)
USER_MAX_WAIT = 20.0  # the longest a name's throttle may hold its admin back (bot.admin.throttle.USER_MAX_WAIT)
COPIES = itertools.count()
NOT_ALICE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80).filter(
    lambda name: name.strip() not in ("", "alice")
)


@dataclass
class World:
    """The fake clock and what the sign-ins did: seconds waited and hashes computed."""

    now: datetime = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    waited: float = 0.0
    hashes: int = 0
    hashed: list[str] = field(default_factory=list)

    async def pause(self, seconds: float) -> None:
        self.waited += seconds
        self.now += timedelta(seconds=seconds)

    def hasher(self) -> Callable[[str, bytes], str]:
        def fast(password: str, salt: bytes) -> str:  # scrypt's work is not what is tested here
            self.hashes += 1
            return hashlib.sha256(salt + password.encode()).hexdigest()

        return fast


@dataclass
class Answer:
    status: int
    message: str
    waited: float
    hashes: int


async def fresh_database(tmp_path: Path) -> str:
    """A database of its own (no counts of failures yet) with the account alice: a copy of one migrated once."""
    template = tmp_path / "template.db"
    if not template.exists():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(accounts, "hash_password", World().hasher())
            engine = create_engine(f"sqlite+aiosqlite:///{template}")
            sessions = create_sessionmaker(engine)
            try:
                await migrate(engine)
                await accounts.add_account(sessions, "alice", PASSWORD, "test")
            finally:
                sessions.dispose()
                await engine.dispose()
    copy = tmp_path / f"console-{next(COPIES)}.db"
    shutil.copyfile(template, copy)
    if template.with_name("template.db-wal").exists():
        shutil.copyfile(template.with_name("template.db-wal"), copy.with_name(copy.name + "-wal"))
    return f"sqlite+aiosqlite:///{copy}"


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database with the account alice (skipped, with the reason, without PostgreSQL)."""
    database_url = await _fresh_postgres_database()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(accounts, "hash_password", World().hasher())
            engine = create_engine(database_url)
            try:
                await migrate(engine)
                await accounts.add_account(create_sessionmaker(engine), "alice", PASSWORD, "test")
            finally:
                await engine.dispose()
        yield database_url
    finally:
        await _drop_postgres_database(database_url)


@asynccontextmanager
async def console(database_url: str, world: World, behind_proxy: bool = True, var: Path | None = None):
    """A console over the database (with the account alice: `fresh_database`), on the fake clock; each console has
    its own engine, as each app machine has."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "utcnow", lambda: world.now)
        patch.setattr(accounts, "pause", world.pause, raising=False)
        patch.setattr(accounts, "hash_password", world.hasher())
        engine = create_engine(database_url)
        sessions = create_sessionmaker(engine)
        try:
            folder = var or Path(make_url(database_url).database or "").parent
            settings = load_settings({"FRONTLINE_VAR": str(folder)})
            admin = build_console(settings, sessions, Trainer(settings, sessions), behind_proxy=behind_proxy)
            root = web.Application()
            root.add_subapp(PREFIX, admin)
            async with TestClient(TestServer(root)) as client:
                yield client
        finally:
            sessions.dispose()
            await engine.dispose()


async def attempt(client: TestClient, world: World, username: str, password: str, address: str) -> Answer:
    """One sign-in as a browser makes it (the form, then the post), from `address` as the proxy reports it."""
    page = await (await client.get(f"{PREFIX}/login")).text()
    waited, hashes = world.waited, world.hashes
    response = await client.post(
        f"{PREFIX}/login",
        data={"csrf": CSRF.search(page).group(1), "username": username, "password": password, "next": ""},
        headers={"X-Forwarded-For": f"203.0.113.9, {address}"},
        allow_redirects=False,
    )
    found = MESSAGE.search(await response.text())
    return Answer(response.status, found.group(1) if found else "", world.waited - waited, world.hashes - hashes)


def run(scenario) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(scenario)


STEPS = st.lists(st.tuples(st.integers(0, 3), st.floats(0, 120)), min_size=1, max_size=14)


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, stranger=NOT_ALICE)
@example(steps=[(0, 0.0)] * 8, stranger="nobody")
def test_a_real_name_and_an_unknown_one_get_the_same_answers_after_the_same_work(tmp_path, steps, stranger) -> None:
    """Wrong passwords for alice and for a name nobody has, sent alike (addresses, pauses between): the same
    answers, after the same waits, each after one password hash; throttling included."""

    async def play(username: str) -> list[Answer]:
        world = World()
        answers = []
        async with console(await fresh_database(tmp_path), world) as client:
            for address, gap in steps:
                world.now += timedelta(seconds=gap)
                answers.append(await attempt(client, world, username, "a wrong password", f"198.51.100.{address}"))
        return answers

    async def scenario() -> None:
        real, unknown = await play("alice"), await play(stranger)
        assert real == unknown
        assert all(answer.hashes == 1 for answer in real)
        assert all(answer.status == 401 and "Wrong username or password" in answer.message for answer in real)

    run(scenario())


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(guesses=st.lists(st.tuples(st.integers(1, 50), st.floats(0, 30)), max_size=20))
@example(guesses=[(n, 0.0) for n in range(1, 11)])
def test_guessing_at_a_name_never_keeps_its_admin_out(tmp_path, guesses) -> None:
    """However many wrong guesses at alice come from other addresses, her right password gets her in, at worst
    after a short wait."""

    async def scenario() -> None:
        world = World()
        async with console(await fresh_database(tmp_path), world) as client:
            for address, gap in guesses:
                world.now += timedelta(seconds=gap)
                await attempt(client, world, "alice", "a guess", f"198.51.100.{address}")
            answer = await attempt(client, world, "alice", PASSWORD, "192.0.2.1")
        assert answer.status == 303, answer
        assert answer.waited <= USER_MAX_WAIT

    run(scenario())


@pytest.mark.parametrize("behind_proxy", [False, True])
def test_one_address_spraying_names_is_slowed_and_a_forwarded_address_is_trusted_only_behind_a_proxy(
    tmp_path, behind_proxy
) -> None:
    """Twelve names tried from one peer, each claiming another X-Forwarded-For, then alice's right password from the
    same peer: refused (the peer is throttled) unless the console is told it is behind a proxy, whose addresses it
    then trusts."""

    async def scenario() -> None:
        world = World()
        async with console(await fresh_database(tmp_path), world, behind_proxy=behind_proxy) as client:
            answers = [await attempt(client, world, f"name{n}", "a guess", f"198.51.100.{n}") for n in range(1, 13)]
            last = await attempt(client, world, "alice", PASSWORD, "192.0.2.1")
        assert all(answer.status == 401 and answer.hashes == 1 for answer in answers)
        if behind_proxy:
            assert last.status == 303 and world.waited == 0
        else:
            assert last.status == 401 and last.message == answers[0].message
            assert last.hashes == 1, "a throttled attempt costs a hash too: its time tells nothing"

    run(scenario())


GUESSES = 12  # from one address: the 8th and later are refused at once (its wait would pass ADDRESS_MAX_WAIT)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_consoles_over_one_database_hold_one_limit(tmp_path, backend) -> None:
    """Two app machines' consoles (an engine each) over one database: guesses from one address alternating between
    them are slowed and refused exactly as on one console, and the address's right password after them is refused
    too (with the counts per console, each would have seen half the guesses and let it in)."""

    async def guess(clients: list[TestClient], world: World) -> list[Answer]:
        answers = [
            await attempt(clients[n % len(clients)], world, f"name{n}", "a guess", "198.51.100.7")
            for n in range(GUESSES)
        ]
        return [*answers, await attempt(clients[0], world, "alice", PASSWORD, "198.51.100.7")]

    async def on_one(database_url: str) -> list[Answer]:
        world = World()
        async with console(database_url, world, var=tmp_path) as only:
            return await guess([only], world)

    async def on_two(database_url: str) -> list[Answer]:
        world = World()
        async with console(database_url, world, var=tmp_path) as a, console(database_url, world, var=tmp_path) as b:
            return await guess([a, b], world)

    async def scenario() -> None:
        if backend == "sqlite":
            one, two = await on_one(await fresh_database(tmp_path)), await on_two(await fresh_database(tmp_path))
        else:
            async with postgres_database() as first, postgres_database() as second:
                one, two = await on_one(first), await on_two(second)
        assert two == one
        assert [answer.waited for answer in two[:GUESSES]] == [0, 0, 0, 1, 2, 4, 8] + [0] * (GUESSES - 7)
        assert two[-1].status == 401 and two[-1].message == two[0].message
        assert all(answer.hashes == 1 for answer in two)

    run(scenario())
