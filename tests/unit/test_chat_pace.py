"""The app whole against the emulator with Telegram's limits on: a burst of answers is paced, never refused, and
"typing…" never stands in an answer's way."""

from __future__ import annotations

import asyncio

from telegram.ext import ExtBot

from bot.telegram import typing_action
from tests.unit.chat_harness import Harness, eventually

CUSTOMERS = range(7001, 7046)  # 45 customers, two answers each: 90 messages asked for at once, 3 seconds' worth


async def _answered(harness: Harness, chat_id: int) -> list[str]:
    return [m["text"] for m in (await harness.emulator.sent(chat_id)).messages]


async def test_a_burst_of_answers_to_many_chats_is_paced_not_refused(harness: Harness) -> None:
    harness.rasa.answer = lambda body: [{"text": f"1: {body['message']}"}, {"text": f"2: {body['message']}"}]
    for user_id in CUSTOMERS:
        await harness.emulator.add_user(f"Customer {user_id}", user_id=user_id)
    await asyncio.gather(*(harness.emulator.send_text(user_id, f"hello {user_id}") for user_id in CUSTOMERS))

    async def all_answered() -> bool:
        return len((await harness.emulator.sent()).messages) >= 2 * len(CUSTOMERS)

    assert await eventually(all_answered, True, timeout=30)
    for user_id in CUSTOMERS:  # each answer once, in order
        assert await _answered(harness, user_id) == [f"1: hello {user_id}", f"2: hello {user_id}"]
    refused = [c for c in await harness.emulator.calls() if c["status"] == 429]
    assert refused == [], "Telegram (the emulator) refused none of them"


async def test_typing_still_on_its_way_does_not_hold_up_the_answer(harness: Harness, monkeypatch) -> None:
    monkeypatch.setattr(typing_action, "TYPING_AFTER", 0.05)
    on_its_way, answered = asyncio.Event(), asyncio.Event()

    async def typing_held_until_answered(self: ExtBot, *args: object, **kwargs: object) -> bool:
        on_its_way.set()
        await answered.wait()  # Telegram answers the chat action only after the customer has the answer
        return True

    monkeypatch.setattr(ExtBot, "send_chat_action", typing_held_until_answered)

    async def after_typing(body: dict) -> list:  # Rasa answers once "typing…" is on its way
        await on_its_way.wait()
        return [{"text": f"echo: {body['message']}"}]

    harness.rasa.answer = after_typing
    try:
        messages = await harness.say("where is my parcel", timeout=10)
    finally:
        answered.set()
    assert messages[-1]["text"] == "echo: where is my parcel"
