"""The "typing…" a customer sees while Rasa thinks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from telegram.constants import ChatAction

from bot.telegram.outbox import Outbox

log = logging.getLogger(__name__)
TYPING_REFRESH = 4.0
# "typing…" only once Rasa has taken this long: a quicker answer is itself the sign, and the Bot API call it saves
# was a tenth of the app's work per message (make bench-profile).
TYPING_AFTER = 0.5


@contextlib.asynccontextmanager
async def typing_shown(outbox: Outbox, chat_id: int) -> AsyncIterator[None]:
    """Shows "typing…" while the block runs, from TYPING_AFTER on, and never holds up the answer: on exit a call
    still on its way is left to finish on its own (a "retry after" it is answered with still holds the chat's
    replies back: Outbox.chat_action records it), and none is made while messages wait for room to be sent."""
    done = asyncio.Event()

    async def keep_typing() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), TYPING_AFTER)
        while not done.is_set():
            await outbox.chat_action(chat_id, ChatAction.TYPING)  # skipped when a reply is on its way or paced
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), TYPING_REFRESH)

    task = asyncio.create_task(keep_typing())
    _running.add(task)
    task.add_done_callback(_finished(chat_id))
    try:
        yield
    finally:
        done.set()


_running: set[asyncio.Task[None]] = set()  # kept referenced until they end


def _finished(chat_id: int) -> Callable[[asyncio.Task[None]], None]:
    def report(task: asyncio.Task[None]) -> None:
        _running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("typing indicator for chat %s failed: %r", chat_id, task.exception())

    return report
