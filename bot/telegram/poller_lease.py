"""One poller per bot and database: the right to poll getUpdates is a lease in the database, renewed while we live.

Two processes polling one bot split its updates between them, and each confirms (and so drops at Telegram) updates
the other has not stored. So polling starts only once this process holds the lease `poller:<bot id>`:
- a live holder renews it every third of its term: a second instance sees it renewed and refuses to start;
- a holder that died (SIGKILL, a lost machine) stops renewing: its successor takes the lease once the term runs
  out, or at once when the holder was a process on this machine that no longer exists;
- a holder that could not renew in time (paused, or cut off from the database) and finds the lease taken stops.
Webhook mode takes no lease: Telegram sends each update to the webhook once, and its workers share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.storage import leases
from bot.storage.base import utcnow
from bot.storage.db import Sessions

log = logging.getLogger(__name__)


class AnotherPoller(RuntimeError):
    """Another instance polls this bot with this database: this one must not."""


def bot_id(token: str) -> str:
    """The bot's id: the number before the token's colon (never the secret after it)."""
    return token.split(":", 1)[0]


def _pid_space() -> str:
    """Which process ids this process sees: containers sharing a host name may each have their own."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def this_process() -> str:
    """How this process names itself as a holder: host, pid, a nonce for each start, and its pid space."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}:{_pid_space()}"


def _gone_from_this_host(holder: str) -> bool:
    """True when the holder was another process on this machine (same host name, same pid space) that no longer
    exists."""
    host, pid_text, _nonce, space = (holder.split(":") + ["", "", ""])[:4]
    if host != socket.gethostname() or space != _pid_space() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, under another user
        return False
    return False


def describe(lease: leases.Lease) -> str:
    host, _, rest = lease.holder.partition(":")
    return f"host {host}, process {rest.partition(':')[0]}, lease renewed until {lease.expires_at:%H:%M:%S} UTC"


class PollerLease:
    """Claim the right to poll, keep it while polling, give it up on the way out."""

    def __init__(
        self,
        sessions: Sessions,
        token: str,
        seconds: float,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = f"poller:{bot_id(token)}"
        self.holder = this_process()
        self.seconds = seconds
        self._sessions = sessions
        self._clock = clock
        self._sleep = sleep

    async def claim(self) -> None:
        """Take the lease, waiting for a dead holder's term to run out; raise AnotherPoller if its holder renews it
        meanwhile (it is alive)."""
        first: leases.Lease | None = None
        waited = 0.0
        step = max(self.seconds / 10, 0.1)
        while True:
            held = await self._sessions.read(leases.current, self.name)
            replacing = held.holder if held is not None and _gone_from_this_host(held.holder) else None
            now = self._clock()
            if await self._sessions.run(
                leases.take, self.name, self.holder, now=now, seconds=self.seconds, replacing=replacing
            ):
                if held is not None and held.holder != self.holder:
                    log.info("took over polling from an instance that stopped (%s)", describe(held))
                return
            held = await self._sessions.read(leases.current, self.name)
            if held is None:
                continue  # released just now: take it
            if first is None:
                first = held
                log.info("another instance holds the polling lease (%s); waiting to see if it is alive", describe(held))
            elif held != first or waited > 3 * self.seconds:
                raise AnotherPoller(
                    f"another instance is already polling this Telegram bot with this database ({describe(held)}); "
                    "this one will not poll beside it, as the two would split the bot's updates between them. "
                    "Stop the other instance first (several workers need webhook mode: see docs/deployment.md)."
                )
            await self._sleep(step)
            waited += step

    async def keep(self) -> None:
        """Renew the lease every third of its term until cancelled; raise AnotherPoller once it is lost."""
        while True:
            await self._sleep(self.seconds / 3)
            try:
                kept = await self._sessions.run(
                    leases.renew, self.name, self.holder, now=self._clock(), seconds=self.seconds
                )
            except Exception as exc:  # noqa: BLE001 (the database may be back before the term runs out)
                log.warning("could not renew the polling lease, trying again: %s", exc)
                continue
            if not kept:
                raise AnotherPoller(
                    "this instance lost the polling lease (it could not renew it for over "
                    f"{self.seconds:.0f} s) and another instance has taken over polling: stopping"
                )

    async def release(self) -> None:
        """Give the lease up, so that a successor starts polling at once."""
        with contextlib.suppress(Exception):
            await self._sessions.run(leases.release, self.name, self.holder)
