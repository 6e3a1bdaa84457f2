"""/forget leaves nothing of the customer: not in the transcript, not in the inbox of raw updates, not in the
agents' updates that quote them (a press on a card, a reply to a relayed message)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot import replies
from tests.unit.chat_harness import Harness, eventually, running_harness
from tests.unit.stored_rows import traces
from tests.unit.test_desk import ALEX, _agent_ready, _handing_over, _last, _new, _press, _queued

MAYA = 4242
# What only this customer said or is called: no row may hold any of it once they are forgotten.
WORDS = ("zebra", "Maya", "crackled")


@pytest.fixture
async def desk(tmp_path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, desk=True, RELAY_MERGE_SECONDS="0.5") as running:
        running.rasa.answer = _handing_over
        yield running


async def _left_of_maya(harness: Harness) -> list:
    async with harness.sessions() as session:
        return await session.run_sync(traces, WORDS, (MAYA,))


async def test_after_forget_no_row_holds_the_customers_words_or_ids(desk: Harness) -> None:
    await desk.say("my zebra lamp arrived crackled")
    card = await _queued(desk)
    await _agent_ready(desk)
    agent_start = await _last(desk, ALEX)
    await _press(desk, ALEX, card, "Claim")  # the press carries the card: the customer's words
    await _new(desk, ALEX, agent_start, "You're now talking with Maya")
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(MAYA, "the zebra pattern is crackled all over")
    [relayed] = await _new(desk, ALEX, agent_start, "zebra pattern")
    customer_start = await _last(desk, MAYA)
    # The agent's reply quotes the relayed message, and names the customer itself.
    await desk.emulator.send_text(
        ALEX, "So sorry, Maya: a new lamp is on its way", reply_to_message_id=relayed["message_id"]
    )
    await _new(desk, MAYA, customer_start, "new lamp")
    assert await _left_of_maya(desk), "the test's words are stored before the customer is forgotten"

    messages = await desk.say("/forget")
    after = await _last(desk, MAYA)
    await _press(desk, MAYA, messages[-1], replies.FORGET_YES)
    await _new(desk, MAYA, after, "deleted your data")

    async def left() -> list:
        return [
            (table, {k: v for k, v in row.items() if k not in ("created_at", "updated_at")})
            for table, row in await _left_of_maya(desk)
        ]

    assert await eventually(left, []), await left()
