"""Reply-time alerts run whole (app, emulator's agents' group, scripted Rasa): the desk's round reminds the agent,
notes it for the admins in the ticket's topic, and holds the customer, once per unanswered stretch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.unit.chat_harness import Harness, running_harness
from tests.unit.test_desk import ALEX, _claimed, _handing_over, _in_group, _last, _new

REMINDER, NOTE, HOLD = "for a reply from you", "For the admins", "Thank you for bearing with us"


@pytest.fixture
async def hasty_desk(tmp_path) -> AsyncIterator[Harness]:
    """An agent is reminded after 1.2 seconds without a reply, the admins after 2.4; a customer held after 3."""
    async with running_harness(
        tmp_path, desk=True, AGENT_REPLY_MINUTES="0.02", CUSTOMER_HOLD_MINUTES="0.05", TELEGRAM_GROUP_RATE="0"
    ) as running:
        running.rasa.answer = _handing_over
        yield running


async def _texts(harness: Harness, chat_id: int, after: int, words: str) -> list[str]:
    return [
        m.get("text") or ""
        for m in (await harness.emulator.sent(chat_id, after)).messages
        if words in (m.get("text") or "")
    ]


async def test_an_unanswered_customer_reminds_the_agent_tells_the_admins_and_is_held_once_a_stretch(
    hasty_desk: Harness,
) -> None:
    desk = hasty_desk
    customer, agent_start, group_start = desk.user_id, await _last(desk, ALEX), await _last(desk, desk.group_id)
    await _claimed(desk)
    [reminder] = [m["text"] for m in await _new(desk, ALEX, agent_start, REMINDER) if REMINDER in m["text"]]
    assert reminder.startswith("⏰ Maya") and "T0000" in reminder
    note = await _in_group(desk, group_start, lambda m: NOTE in (m.get("text") or ""))
    assert note["message_thread_id"] and "no reply from Alex" in note["text"] and "/release T0000" in note["text"]
    held = await _new(desk, customer, 0, HOLD)
    assert held[-1]["text"].startswith(f"{HOLD}: Alex has your messages")
    await asyncio.sleep(4.5)  # two more rounds and then some: nothing again in the same stretch
    assert len(await _texts(desk, ALEX, agent_start, REMINDER)) == 1
    assert len(await _texts(desk, desk.group_id, group_start, NOTE)) == 1
    assert len(await _texts(desk, customer, 0, HOLD)) == 1
    # Alex answers: the stretch ends. Maya writes again: a new stretch, reminded once more.
    after = await _last(desk, customer)
    await desk.emulator.send_text(ALEX, "Sorry for the wait, looking now")
    await _new(desk, customer, after, "Sorry for the wait")
    agent_after = await _last(desk, ALEX)
    await desk.emulator.send_text(customer, "Thanks, any news?")
    await _new(desk, ALEX, agent_after, "any news?")
    await _new(desk, ALEX, agent_after, REMINDER)
    await _new(desk, customer, after, HOLD)
    assert len(await _texts(desk, ALEX, agent_start, REMINDER)) == 2
