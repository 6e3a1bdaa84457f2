"""Failpoints: named places where a test may ask the process to die, to prove recovery."""

import logging
import os
import signal

from bot.config import Settings

log = logging.getLogger(__name__)


def failpoint(settings: Settings, name: str) -> None:
    """Kill this process outright if FRONTLINE_FAILPOINTS names this point (tests only)."""
    if name in settings.failpoints:
        log.warning("failpoint %s reached: killing the process", name)
        os.kill(os.getpid(), signal.SIGKILL)
