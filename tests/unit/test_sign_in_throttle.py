"""The console's sign-in throttle in the database: two app machines (an engine each) over one database count one set
of failures, attempts side by side are each counted once, and forgotten counts go (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.admin import throttle
from bot.admin.throttle import BY_ADDRESS, BY_NAME, FORGET
from bot.storage import attempt_counts
from bot.storage.db import Sessions, create_engine, create_sessionmaker, migrate
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

NOW = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
AT_ONCE = 16
# One address and one name, every attempt at NOW: the address's delays add up (1, 1+2, 1+2+4 s) and the name's grow
# (1, 2, 4 s); the seventh would wait 15 s, more than ADDRESS_MAX_WAIT, and is refused, as is every one after it.
EXPECTED_WAITS = [0.0, 0.0, 0.0, 1.0, 3.0, 7.0]


@pytest.fixture(params=["sqlite", "postgres"])
async def machines(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[tuple[Sessions, Sessions]]:
    """Two machines' sessions (an engine each) over one migrated database."""
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'one.db'}" if request.param == "sqlite" else await _fresh_postgres_database()
    )
    engines = [create_engine(url), create_engine(url)]
    both = (create_sessionmaker(engines[0]), create_sessionmaker(engines[1]))
    try:
        await migrate(engines[0])
        yield both
    finally:
        for sessions, engine in zip(both, engines, strict=True):
            sessions.dispose()
            await engine.dispose()
        if request.param == "postgres":
            await _drop_postgres_database(url)


def _outcomes(passes: list[throttle.Pass]) -> tuple[list[float], int]:
    return sorted(p.wait for p in passes if not p.refused), sum(p.refused for p in passes)


async def test_attempts_side_by_side_on_two_machines_are_each_counted_once(machines) -> None:
    a, b = machines
    one_by_one = [await throttle.admit(a, "198.51.100.1", "alice", NOW) for _ in range(AT_ONCE)]
    at_once = await asyncio.gather(*(throttle.admit((a, b)[n % 2], "198.51.100.2", "bob", NOW) for n in range(AT_ONCE)))
    assert _outcomes(one_by_one) == (EXPECTED_WAITS, AT_ONCE - len(EXPECTED_WAITS))
    assert _outcomes(list(at_once)) == _outcomes(one_by_one)
    addresses = await b.read(attempt_counts.counted, BY_ADDRESS)
    names = await b.read(attempt_counts.counted, BY_NAME)
    assert addresses["198.51.100.2"].failures == names["bob"].failures == len(EXPECTED_WAITS)


async def test_the_right_password_on_one_machine_takes_back_the_failure_counted_on_it(machines) -> None:
    a, b = machines
    passes = [await throttle.admit((a, b)[n % 2], "198.51.100.3", "carol", NOW) for n in range(3)]
    await throttle.settle(b, passes[0], True, NOW)
    await throttle.settle(a, passes[1], False, NOW)
    names = await a.read(attempt_counts.counted, BY_NAME)
    assert names["carol"].failures == 2
    assert (await a.read(attempt_counts.counted, BY_ADDRESS))["198.51.100.3"].failures == 2


async def test_a_forgotten_count_starts_afresh_and_goes_from_the_database(machines) -> None:
    a, b = machines
    early = await throttle.admit(a, "198.51.100.4", "dave", NOW)
    later = NOW + FORGET + timedelta(seconds=1)
    await throttle.admit(b, "198.51.100.5", "erin", later)
    assert set(await a.read(attempt_counts.counted, BY_ADDRESS)) == {"198.51.100.5"}
    assert set(await a.read(attempt_counts.counted, BY_NAME)) == {"erin"}
    # A count forgotten while its attempt was checked, then started again: the late "right" changes the new one not.
    for _ in range(2):
        await throttle.admit(a, "198.51.100.5", "erin", later + FORGET * 2)
    await throttle.settle(b, early, True, later + FORGET * 2)
    again = await throttle.admit(b, "198.51.100.4", "dave", later + FORGET * 2)
    await throttle.settle(a, early, True, later + FORGET * 2)
    assert again.wait == 0.0
    names = await a.read(attempt_counts.counted, BY_NAME)
    assert names["dave"].failures == 1 and names["erin"].failures == 2
