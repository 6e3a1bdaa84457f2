"""What `frontline doctor` finds: a check's verdict, and a failure to reach something in words."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

TIMEOUT = 3.0  # seconds for each network check
OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Finding:
    """One check's verdict: `fix` says in one sentence what to do when it is not OK."""

    status: str
    check: str
    detail: str
    fix: str | None = None
    lines: tuple[str, ...] = ()  # shown under the verdict (the configuration's settings)


def reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else str(exc.os_error or exc)
    return str(exc) or type(exc).__name__
