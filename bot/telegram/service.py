"""Service messages: a command's answer or a note to an agent, sent at once and never part of a transcript.

They do not go through the outbox (nothing is recorded), so a busy chat is waited for here: Telegram names the wait,
and the message is tried again a few times at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Bot
from telegram.error import RetryAfter, TelegramError

from bot.telegram.outbox import retry_seconds
from bot.telegram.pace import FOLLOW_UP, Pace

log = logging.getLogger(__name__)
TRIES = 3  # a command's answer is worth a short wait when Telegram asks for one
LONGEST_WAIT = 30.0  # seconds; beyond this the answer is no longer an answer


async def send(bot: Bot, chat_id: int, text: str, thread_id: int | None = None, rate: Pace | None = None) -> None:
    """Sent as soon as the app's pace (`rate`) has room, after customers' answers; when Telegram asks to wait (a busy
    chat), after the wait it names, a few times at most."""
    for _ in range(TRIES):
        try:
            async with rate.room(chat_id, 1, FOLLOW_UP) if rate is not None else contextlib.nullcontext():
                await bot.send_message(chat_id, text, message_thread_id=thread_id)
            return
        except RetryAfter as exc:
            await asyncio.sleep(min(retry_seconds(exc), LONGEST_WAIT))
        except TelegramError as exc:
            log.warning("could not send a service message to chat %s: %s", chat_id, exc)
            return
