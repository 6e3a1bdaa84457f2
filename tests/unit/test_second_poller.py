"""Only one instance polls a bot with a database: a second one refuses, a dead one's successor takes over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import serve
from bot.storage.db import Sessions
from tests.unit.chat_harness import running_harness

TOKEN = "123456789:unit-test-token"
T0 = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)


async def test_a_second_instance_on_the_same_bot_and_database_refuses_to_poll(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as harness:
        stop = asyncio.Event()
        second = asyncio.create_task(serve(harness.settings, stop))
        await asyncio.wait([second], timeout=20)
        refused = second.done()
        if not refused:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(second, 30)
        assert refused, "a second instance started polling beside the first"
        assert "another instance is already polling this Telegram bot with this database" in str(second.exception())
        polls = await harness.emulator.calls("getUpdates")
        assert [call for call in polls if call["status"] == 409] == [], "the second instance never polled"
        assert (await harness.say("still there?"))[-1]["text"] == "echo: still there?"
        assert not harness.app.done()


def _leases():
    from bot.storage import leases

    return leases


class FakeTime:
    """The lease's clock and sleep: sleeping moves the clock, and `during_sleep` runs what others do meanwhile."""

    def __init__(self) -> None:
        self.now = T0
        self.slept = 0.0
        self.during_sleep = None

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.slept += seconds
        if self.during_sleep is not None:
            await self.during_sleep()


def _lease(sessions: Sessions, time: FakeTime, seconds: float = 10.0):
    from bot.telegram.poller_lease import PollerLease

    return PollerLease(sessions, TOKEN, seconds, clock=time.clock, sleep=time.sleep)


async def test_a_dead_instance_on_another_machine_holds_the_bot_only_until_its_lease_runs_out(
    sessions: Sessions,
) -> None:
    time = FakeTime()
    assert await sessions.run(_leases().take, "poller:123456789", "elsewhere:77:ab", now=T0, seconds=10)
    await _lease(sessions, time).claim()
    assert 10 <= time.slept <= 11
    assert (await sessions.read(_leases().current, "poller:123456789")).holder.startswith(socket.gethostname())


async def test_a_live_instance_renewing_its_lease_makes_the_newcomer_refuse(sessions: Sessions) -> None:
    from bot.telegram.poller_lease import AnotherPoller

    time = FakeTime()
    assert await sessions.run(_leases().take, "poller:123456789", "elsewhere:77:ab", now=T0, seconds=10)

    async def the_other_renews() -> None:
        assert await sessions.run(_leases().renew, "poller:123456789", "elsewhere:77:ab", now=time.now, seconds=10)

    time.during_sleep = the_other_renews
    with pytest.raises(AnotherPoller, match="host elsewhere, process 77"):
        await _lease(sessions, time).claim()
    assert time.slept < 10 / 3 + 1, "found out within one renewal"


async def test_an_instance_killed_on_this_machine_is_replaced_at_once(sessions: Sessions) -> None:
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    holder = f"{socket.gethostname()}:{gone.pid}:ab:{os.stat('/proc/self/ns/pid').st_ino}"
    time = FakeTime()
    assert await sessions.run(_leases().take, "poller:123456789", holder, now=T0, seconds=10)
    await _lease(sessions, time).claim()
    assert time.slept == 0


async def test_a_holder_in_another_pid_space_of_this_host_is_not_taken_for_dead(sessions: Sessions) -> None:
    """Containers sharing the host name each number their own processes: a pid missing here may live there."""
    from bot.telegram.poller_lease import AnotherPoller

    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    holder = f"{socket.gethostname()}:{gone.pid}:ab:another-pid-space"
    time = FakeTime()
    assert await sessions.run(_leases().take, "poller:123456789", holder, now=T0, seconds=10)

    async def the_other_renews() -> None:
        assert await sessions.run(_leases().renew, "poller:123456789", holder, now=time.now, seconds=10)

    time.during_sleep = the_other_renews
    with pytest.raises(AnotherPoller):
        await _lease(sessions, time).claim()


async def test_an_instance_that_lost_its_lease_stops(sessions: Sessions) -> None:
    from bot.telegram.poller_lease import AnotherPoller

    time = FakeTime()
    mine = _lease(sessions, time)
    await mine.claim()
    await mine.release()  # as if it ran out and someone else took it
    assert await sessions.run(_leases().take, "poller:123456789", "elsewhere:77:ab", now=time.now, seconds=10)
    with pytest.raises(AnotherPoller, match="lost the polling lease"):
        await mine.keep()


async def test_a_poller_on_another_database_is_named_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease cannot see an instance on another database; Telegram's 409 can, and the log says what it means."""
    from telegram import Bot

    caplog.set_level(logging.ERROR, logger="bot.telegram.intake")
    async with running_harness(tmp_path) as harness:
        api_url = harness.settings.telegram_api_url
        async with Bot(harness.settings.telegram_token, base_url=api_url) as elsewhere:
            for _ in range(4):  # the other process polls, and the app's next poll ends its poll in turn
                with contextlib.suppress(Exception):
                    await elsewhere.get_updates(timeout=1)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "bot.telegram.intake"]
    assert any("Another process is polling this bot" in line for line in said), said


async def test_an_app_whose_lease_was_taken_over_stops_polling(tmp_path: Path) -> None:
    """Say it was paused past its term and a successor took over: it must stop rather than poll beside it."""
    from bot.telegram.poller_lease import AnotherPoller

    with pytest.raises(AnotherPoller, match="lost the polling lease"):
        async with running_harness(tmp_path, POLLER_LEASE_SECONDS="0.6") as harness:
            held = await harness.sessions.read(_leases().current, "poller:123456789")
            assert await harness.sessions.run(
                _leases().take, "poller:123456789", "elsewhere:77:ab", now=T0, seconds=10, replacing=held.holder
            )
            await asyncio.wait([harness.app], timeout=10)
            assert harness.app.done(), "the app goes on polling without its lease"
            polls = len(await harness.emulator.calls("getUpdates"))
            await asyncio.sleep(1)
            assert len(await harness.emulator.calls("getUpdates")) == polls, "and polls no more"
