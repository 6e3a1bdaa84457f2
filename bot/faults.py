"""Failpoints: named places where a test may ask the process to die, to prove recovery.

The points of the app: `after-inbox` (the customer's message stored, Rasa not asked), `before-record-reply`
(Rasa answered, its reply not stored yet), `before-send` (the reply stored, not sent) and `after-send`
(Telegram accepted the reply, not yet marked sent: the one place a restart sends a message twice).
A point may be armed for one chat only, `after-send@12345`, so that a test sharing the app with others kills
it at its own customer's message.
"""

import logging
import os
import signal

from bot.config import Settings

log = logging.getLogger(__name__)
VARIABLE = "FRONTLINE_FAILPOINTS"


def armed(settings: Settings | None) -> frozenset[str]:
    """The points this process dies at: the settings', or the environment's for code that holds no settings."""
    if settings is not None:
        return settings.failpoints
    return frozenset(p for p in os.environ.get(VARIABLE, "").split(",") if p)


def failpoint(settings: Settings | None, name: str, chat_id: int | None = None) -> None:
    """Kill this process outright if FRONTLINE_FAILPOINTS names this point, or this point in this chat (tests only)."""
    points = armed(settings)
    if name in points or (chat_id is not None and f"{name}@{chat_id}" in points):
        log.warning("failpoint %s reached: killing the process", name)
        os.kill(os.getpid(), signal.SIGKILL)
