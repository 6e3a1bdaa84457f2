"""Each app process's share of the bot's sending allowances, when several send for one bot.

Telegram's overall limit (about 30 messages a second) and a group's (20 a minute) are the bot's, whichever process
or machine sends. Each process that sends beats in the database every BEAT seconds (bot/storage/senders.py) and,
at each beat, paces itself to its share: TELEGRAM_RATE and TELEGRAM_GROUP_RATE divided by the processes that beat
within the last TERM. A process that stops cleanly leaves at once; one that dies is no longer counted after TERM, and
the others take its share back. A process that starts counts itself and those already there; the others learn of it
at their next beat, so for at most BEAT seconds the bot may send more than its allowance (Telegram answers that
with a 429 the outbox honours). A private chat's allowance is still each process's own (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from bot.storage import senders
from bot.storage.base import utcnow
from bot.storage.db import Sessions
from bot.telegram.poller_lease import this_process

log = logging.getLogger(__name__)
BEAT = 2.0  # seconds between beats
TERM = timedelta(seconds=3 * BEAT)  # a process silent this long is no longer counted (a beat may be late)


class Shared(Protocol):
    def share(self, processes: int) -> None: ...


class SendShare:
    """Beat, count the processes that send, and give each pace its share; `run` until cancelled, then `leave`."""

    def __init__(
        self,
        sessions: Sessions,
        paces: Sequence[Shared],
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.holder = this_process()
        self.processes = 1
        self._sessions, self._paces, self._clock, self._sleep = sessions, paces, clock, sleep

    async def beat(self) -> int:
        """Say this process still sends, and take its share of the allowances: how many processes share them."""
        now = self._clock()

        def beat_and_count(session: Session) -> int:
            senders.beat(session, self.holder, now)
            return senders.live(session, now, TERM)

        processes = max(1, await self._sessions.run(beat_and_count))
        if processes != self.processes:
            log.info("%d app processes send for this bot: this one takes 1/%d of its allowances", processes, processes)
        self.processes = processes
        for pace in self._paces:
            pace.share(processes)
        return processes

    async def run(self) -> None:
        """Beat every BEAT seconds until cancelled; a database that is away keeps the last share."""
        while True:
            await self._sleep(BEAT)
            try:
                await self.beat()
            except Exception as exc:  # noqa: BLE001 (the database may be back at the next beat)
                log.warning("could not count the processes sending for this bot, keeping 1/%d: %s", self.processes, exc)

    async def leave(self) -> None:
        """This process sends no more: the others take its share at their next beat."""
        with contextlib.suppress(Exception):
            await self._sessions.run(senders.leave, self.holder)
