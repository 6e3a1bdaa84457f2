"""Leases in the database: one holder at a time, free again once a dead holder's term runs out."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.storage import leases
from bot.storage.db import Sessions

T0 = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # any fixed instant: leases read no clock of their own
TERM = 10.0
_names = itertools.count()

# One step of several processes: (who, what, seconds since the previous step).
STEPS = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from(["take", "renew", "release"]), st.sampled_from([0, 1, 4, 9, 11])),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
async def test_a_lease_has_one_holder_at_a_time_and_frees_when_its_term_runs_out(
    sessions: Sessions, steps: list[tuple[str, str, int]]
) -> None:
    """Whatever several processes do, in any order, the lease matches a model with one holder and a term: a take
    wins only when the lease is free, run out or already the taker's; a renewal only for the holder."""
    name = f"poller-{next(_names)}"
    now, holder, until = T0, None, T0  # the model
    for who, what, elapsed in steps:
        now += timedelta(seconds=elapsed)
        free = holder is None or until <= now or holder == who
        if what == "take":
            took = await sessions.run(leases.take, name, who, now=now, seconds=TERM)
            assert took == free, (who, holder, until, now)
            if took:
                holder, until = who, now + timedelta(seconds=TERM)
        elif what == "renew":
            renewed = await sessions.run(leases.renew, name, who, now=now, seconds=TERM)
            assert renewed == (holder == who), (who, holder)
            if renewed:
                until = now + timedelta(seconds=TERM)
        else:
            await sessions.run(leases.release, name, who)
            if holder == who:
                holder = None
        stored = await sessions.read(leases.current, name)
        assert (stored.holder if stored else None) == holder
        if stored:
            assert stored.expires_at == until


async def test_a_holder_known_to_be_dead_is_replaced_before_its_term_runs_out(sessions: Sessions) -> None:
    assert await sessions.run(leases.take, "poller", "host:1", now=T0, seconds=TERM)
    assert not await sessions.run(leases.take, "poller", "host:2", now=T0, seconds=TERM)
    assert not await sessions.run(leases.take, "poller", "host:2", now=T0, seconds=TERM, replacing="host:3")
    assert await sessions.run(leases.take, "poller", "host:2", now=T0, seconds=TERM, replacing="host:1")
    assert not await sessions.run(leases.renew, "poller", "host:1", now=T0, seconds=TERM), "the old holder lost it"


async def test_processes_racing_for_a_free_lease_give_it_to_exactly_one(sessions: Sessions) -> None:
    later = T0 + timedelta(seconds=TERM + 1)
    assert await sessions.run(leases.take, "poller", "dead", now=T0, seconds=TERM)
    for round_ in range(5):  # the term ran out: many try to take it at once
        now = later + timedelta(seconds=round_ * (TERM + 1))
        wins = await asyncio.gather(
            *(sessions.run(leases.take, "poller", f"p{round_}-{n}", now=now, seconds=TERM) for n in range(6))
        )
        assert sum(wins) == 1, wins
