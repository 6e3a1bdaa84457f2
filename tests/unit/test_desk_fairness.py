"""One customer cannot stall the desk: a limit on new tickets, a waiting customer's messages merged and paced in
the agents' group, and nobody waiting for the group's backlog."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot import replies
from bot.storage.models import Ticket
from tests.unit.chat_harness import Harness, running_harness
from tests.unit.test_desk import _handing_over, _last, _new, _queued


@pytest.fixture
async def desk(tmp_path) -> AsyncIterator[Harness]:
    """The app with an agents' group, a Rasa that hands over on "I want a person", and relays paced at 3 s."""
    async with running_harness(tmp_path, desk=True, RELAY_MERGE_SECONDS="3") as running:
        running.rasa.answer = _handing_over
        yield running


async def _tickets(harness: Harness) -> int:
    async with harness.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Ticket))


async def test_a_customer_who_keeps_asking_gets_their_open_ticket_not_another(desk: Harness) -> None:
    for _ in range(3):
        start = await _last(desk, 4242)
        await desk.emulator.send_text(4242, "I want a person")
        await _new(desk, 4242, start, "in line")
        await desk.emulator.send_text(4242, "/cancel")
        await _new(desk, 4242, start, "left the queue")
    assert await _tickets(desk) == 3
    start, group_start = await _last(desk, 4242), await _last(desk, desk.group_id)
    await desk.emulator.send_text(4242, "I want a person")
    told = (await _new(desk, 4242, start, "in line"))[-1]
    assert "You're number 1 in line" in told["text"]
    assert await _tickets(desk) == 3, "past MAX_TICKETS_PER_HOUR the request goes to the open ticket"
    # Their open ticket's topic gets a fresh card: what they said since, and why they want a person now.
    [card] = await _new(desk, desk.group_id, group_start, "🎫")
    assert card["text"].startswith("🎫 T000003 · Maya") and "Needs a person: asked for a person" in card["text"]
    assert [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row] == ["Claim"]


async def test_a_waiting_customers_messages_reach_the_group_merged(desk: Harness) -> None:
    card = await _queued(desk)
    group_start = await _last(desk, desk.group_id)
    said = ["the lamp is blue", "it came yesterday", "the box was wet too", "order A12345"]
    for text in said:
        await desk.emulator.send_text(4242, text)
    await _new(desk, desk.group_id, group_start, said[-1], timeout=15)
    relays = [
        m for m in (await desk.emulator.sent(desk.group_id, group_start)).messages if "💬 Maya" in (m.get("text") or "")
    ]
    assert 1 <= len(relays) <= 2, [m["text"] for m in relays]
    joined = "\n".join(m["text"] for m in relays)
    assert all(text in joined for text in said) and all(
        m["message_thread_id"] == card["message_thread_id"] for m in relays
    )


async def test_customers_never_wait_for_a_slow_agents_group(desk: Harness) -> None:
    await _queued(desk)
    # Every call into the group takes 4 s (a backlog Telegram paces, short of a timeout): 16 s for what follows.
    await desk.emulator.set_fault("slow", chat_id=desk.group_id, delay=4, count=-1)
    try:
        customer_start = await _last(desk, 4242)
        for text in ("are you there?", "hello?", "anyone?"):
            await desk.emulator.send_text(4242, text)  # relayed to the group
        await desk.emulator.send_text(4242, "/cancel")
        [cancelled] = await _new(desk, 4242, customer_start, "T000001")
        assert cancelled["text"] == replies.CANCELLED.format(ticket="T000001")
    finally:
        await desk.emulator.clear_faults()
