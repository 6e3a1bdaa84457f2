"""The "typing…" a customer sees while Rasa thinks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from telegram.constants import ChatAction

from bot.telegram.outbox import Outbox

log = logging.getLogger(__name__)
TYPING_REFRESH = 4.0
# "typing…" only once Rasa has taken this long: a quicker answer is itself the sign, and the Bot API call it saves
# was a tenth of the app's work per message (make bench-profile).
TYPING_AFTER = 0.5


@contextlib.asynccontextmanager
async def typing_shown(outbox: Outbox, chat_id: int) -> AsyncIterator[None]:
    """Shows "typing…" while the block runs, from TYPING_AFTER on. A call on its way is let finish, not abandoned:
    Telegram may answer it with a "retry after", which the chat's replies must then wait out (the outbox hears of
    it only from an answer)."""
    done = asyncio.Event()

    async def keep_typing() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), TYPING_AFTER)
        while not done.is_set():
            await outbox.chat_action(chat_id, ChatAction.TYPING)  # in step with the chat's replies
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), TYPING_REFRESH)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        done.set()
        [outcome] = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, Exception):
            log.warning("typing indicator for chat %s failed: %r", chat_id, outcome)
