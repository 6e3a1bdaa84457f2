"""The desk round's marks (bot/storage/round_marks.py): what the round does every so often is paced by the database,
so processes (machines) that take turns at the round together do it once per period, as one process would."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot.storage import round_marks
from bot.storage.base import Base
from bot.storage.db import create_engine as create_async_engine
from bot.storage.db import create_sessionmaker

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
EVERY = timedelta(minutes=60)
steps = st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=25)  # minutes between rounds
processes = st.lists(st.integers(min_value=0, max_value=2), min_size=25, max_size=25)  # who runs each round


def _memory_database():  # type: ignore[no-untyped-def]
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return engine


@settings(deadline=None, max_examples=60)
@given(gaps=steps, runners=processes, first_waits=st.booleans())
def test_turns_come_once_a_period_whichever_process_runs_the_round(
    gaps: list[int], runners: list[int], first_waits: bool
) -> None:
    """Three processes, each with its own engine (no memory shared), take the round in any order: the turns are
    exactly those of one process keeping the last turn in memory."""
    engines = [_memory_database()]
    engines += [engines[0]] * 2  # one database; separate sessions stand for the processes
    now, last, first = START, None, True
    for gap, runner in zip(gaps, runners):
        now += timedelta(minutes=gap)
        with Session(engines[runner]) as session, session.begin():
            taken = round_marks.take_turn(session, "summary", now, EVERY, first_waits=first_waits)
        if first:
            expected = not first_waits
            last, first = now, False
        else:
            expected = now - last >= EVERY
            last = now if expected else last
        assert taken == expected, (gap, now, last)
    engines[0].dispose()


@settings(deadline=None, max_examples=60)
@given(gaps=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=30))
def test_at_most_so_many_slots_in_any_window(gaps: list[int]) -> None:
    engine = _memory_database()
    now, taken, refused = START, [], []
    for gap in gaps:
        now += timedelta(seconds=gap)
        with Session(engine) as session, session.begin():
            took = round_marks.take_slot(session, "reannounced", 3, now, timedelta(minutes=1))
        (taken if took else refused).append(now)
    for moment in taken:
        assert len([t for t in taken if moment <= t < moment + timedelta(minutes=1)]) <= 3
    for moment in refused:  # refused only while three were taken in the minute before
        assert len([t for t in taken if moment - timedelta(minutes=1) < t <= moment]) >= 3
    engine.dispose()


def test_a_cleared_mark_is_due_at_once() -> None:
    engine = _memory_database()
    with Session(engine) as session, session.begin():
        assert round_marks.take_turn(session, "housekeeping", START, EVERY, first_waits=False)
        assert not round_marks.take_turn(session, "housekeeping", START + timedelta(minutes=1), EVERY)
        assert round_marks.due_at(session, "housekeeping", EVERY) == START + EVERY
        round_marks.clear(session, "housekeeping")
        assert round_marks.due_at(session, "housekeeping", EVERY) is None
        assert round_marks.take_turn(session, "housekeeping", START + timedelta(minutes=2), EVERY)
        assert round_marks.due_at(session, "housekeeping", EVERY) == START + timedelta(minutes=2) + EVERY
    engine.dispose()


async def test_two_processes_at_the_same_moment_one_takes_the_turn(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Two engines over one database (two processes), asking at the same moment: one turn, on SQLite and PostgreSQL."""
    async with sessions() as session:
        url = session.bind.url.render_as_string(hide_password=False)
    other = create_async_engine(url)
    try:
        both = [sessions, create_sessionmaker(other)]
        for moment in (START, START + EVERY, START + EVERY * 2):

            async def ask(makes: async_sessionmaker[AsyncSession], at: datetime = moment) -> bool:
                async with makes.begin() as session:
                    return await session.run_sync(round_marks.take_turn, "summary", at, EVERY, first_waits=False)

            turns = await asyncio.gather(*(ask(makes) for makes in both))
            assert sorted(turns) == [False, True], moment
    finally:
        await other.dispose()
