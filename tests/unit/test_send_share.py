"""Each sending process's share of the bot's allowances (bot/telegram/send_share.py, bot/storage/senders.py)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from bot.telegram.group_pace import GroupPace
from bot.telegram.pace import Pace
from bot.telegram.send_share import BEAT, TERM, SendShare

START = datetime(2026, 3, 9, 23, 59, 58, tzinfo=UTC)
GROUP = -100


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


async def _room_at_once(pace: Pace) -> int:
    """How many messages (to as many chats) the pace lets leave at once, each still on its way."""
    async with contextlib.AsyncExitStack() as on_their_way:
        sent = 0
        while pace.has_room() and sent < 100:
            await on_their_way.enter_async_context(pace.room(1000 + sent))
            sent += 1
        return sent


async def test_processes_that_send_split_the_allowances_and_take_back_a_gone_ones_share(sessions) -> None:
    clock = Clock()
    paces = {name: (Pace(28, clock=lambda: 0.0), GroupPace(20, clock=lambda: 0.0)) for name in "AB"}
    a, b = (SendShare(sessions, paces[name], clock=clock) for name in "AB")
    assert await a.beat() == 1
    assert await b.beat() == 2  # B counts A, already there
    assert await a.beat() == 2  # A learns of B at its next beat
    for overall, group in paces.values():
        assert await _room_at_once(overall) == 14
        group.spend(GROUP, 9)
        assert group.wait(GROUP, 1, card=True) == 0.0
        group.spend(GROUP, 1)
        assert group.wait(GROUP, 1, card=True) > 0  # 10 of the group's 20 a minute

    await b.leave()  # a clean stop
    assert await a.beat() == 1
    assert await _room_at_once(paces["A"][0]) == 28 - 14  # the whole second again, less what A just sent
    paces["A"][1].spend(GROUP, 9)
    assert paces["A"][1].wait(GROUP, 1, card=True) == 0.0  # the whole minute again: 19 of 20 spent

    assert await b.beat() == 2
    clock.now += TERM - timedelta(seconds=BEAT / 2)  # B's beat is late, not missed for good
    assert await a.beat() == 2
    clock.now += timedelta(seconds=BEAT)  # B died: silent for longer than TERM
    assert await a.beat() == 1
