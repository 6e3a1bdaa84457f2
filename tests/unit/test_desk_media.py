"""Media and edits both ways: what an agent sends from their private chat (every kind, albums) reaches the customer,
a copy Telegram refuses is explained to the agent, an agent's edit edits the customer's copy, and a customer's edit
reaches the agent marked as edited. Run whole against the emulator (tests/unit/test_desk.py's harness)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.desk import cards
from bot.storage import transcript
from bot.storage.models import DeliveryStatus, Direction, Message
from tests.unit.chat_harness import Harness, running_harness
from tests.unit.test_desk import ALEX, _claimed, _handing_over, _last, _new

MAYA = 4242
KINDS: dict[str, Callable[[Harness, str], Any]] = {
    "photo": lambda h, tag: h.emulator.send_media(ALEX, "photo", caption=tag),
    "document": lambda h, tag: h.emulator.send_document(ALEX, b"invoice", file_name="invoice.pdf", caption=tag),
    "voice": lambda h, tag: h.emulator.send_voice(ALEX, caption=tag),
    "video": lambda h, tag: h.emulator.send_video(ALEX, caption=tag),
    "audio": lambda h, tag: h.emulator.send_audio(ALEX, caption=tag),
    "sticker": lambda h, tag: h.emulator.send_media(ALEX, "sticker", emoji="👍"),
    "location": lambda h, tag: h.emulator.send_location(ALEX, 51.5, -0.12),
}


@pytest.fixture
async def desk(tmp_path) -> AsyncIterator[Harness]:
    """The desk with Telegram's limits off (pacing is test_group_queue.py's), Maya claimed by Alex."""
    async with running_harness(tmp_path, desk=True, TELEGRAM_GROUP_RATE="0", TELEGRAM_RATE="0") as running:
        running.rasa.answer = _handing_over
        await running.emulator.set_limits(enabled=False)
        await _claimed(running)
        yield running


async def _arrived(harness: Harness, chat_id: int, after: int, count: int, timeout: float = 10) -> list[dict]:
    """The first `count` messages the bot sent or edited in a chat after `after`, once there are that many."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = (await harness.emulator.sent(chat_id, after)).messages
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def _told(harness: Harness, chat_id: int, after: int, needle: str, timeout: float = 10) -> list[str]:
    """The texts the bot sent a chat after `after` that contain `needle`, once there is one ([] if none comes)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        texts = [m.get("text") or "" for m in (await harness.emulator.sent(chat_id, after)).messages]
        if any(needle in t for t in texts) or asyncio.get_running_loop().time() > deadline:
            return [t for t in texts if needle in t]
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_each_kind_an_agent_sends_reaches_the_customer_and_is_recorded(desk: Harness, kind: str) -> None:
    start = await _last(desk, MAYA)
    sent = (await KINDS[kind](desk, "here it is"))["message"]
    [copy] = await _arrived(desk, MAYA, start, 1)
    assert copy["method"] == "copyMessage" and kind in copy["message"]
    if kind in ("photo", "document", "voice", "video", "audio"):
        assert copy["message"]["caption"] == "Alex: here it is"
        assert copy["message"][kind if kind != "photo" else "photo"] == sent[kind]
    async with desk.sessions() as session:
        rows = [m for m in await session.run_sync(transcript.messages, MAYA) if m.kind == "agent"]
    assert rows[-1].status is DeliveryStatus.SENT and rows[-1].telegram_message_id == copy["message"]["message_id"]
    assert (rows[-1].payload or {}).get("source") == {"chat_id": ALEX, "message_id": sent["message_id"]}


async def test_an_agents_album_reaches_the_customer_as_one_album_in_order(desk: Harness) -> None:
    start = await _last(desk, MAYA)
    items = [{"kind": "photo", "caption": "front"}, {"kind": "photo", "caption": "back"}, {"kind": "video"}]
    album = await desk.emulator.send_album(ALEX, items)
    copies = await _arrived(desk, MAYA, start, 3)
    assert [c["method"] for c in copies] == ["copyMessages"] * 3
    assert [c["message"].get("caption") for c in copies] == ["front", "back", None]
    assert [bool(c["message"].get("video")) for c in copies] == [False, False, True]
    groups = {c["message"].get("media_group_id") for c in copies}
    assert len(groups) == 1 and None not in groups, "one album at the customer's"
    async with desk.sessions() as session:
        rows = [m for m in await session.run_sync(transcript.messages, MAYA) if m.kind == "agent"]
    assert [(r.payload or {}).get("source", {}).get("message_id") for r in rows] == [
        m["message_id"] for m in album["messages"]
    ]


async def test_a_copy_telegram_refuses_is_explained_to_the_agent(desk: Harness) -> None:
    await desk.emulator.block(MAYA)
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_media(ALEX, "photo", caption="the new lamp")
    [told] = await _told(desk, ALEX, agent_start, "didn't reach") or ["(nothing)"]
    assert told.startswith("⚠️ Your photo didn't reach Maya (T000001): Telegram refused it (")
    assert "blocked" in told, "the reason Telegram gave"


async def test_a_file_telegram_finds_too_big_is_explained_and_what_follows_still_goes(desk: Harness) -> None:
    await desk.emulator.set_fault("400", method="copyMessage", chat_id=MAYA, description="file is too big")
    agent_start, customer_start = await _last(desk, ALEX), await _last(desk, MAYA)
    await desk.emulator.send_document(ALEX, b"big", file_name="manual.pdf", caption="the manual")
    await desk.emulator.send_text(ALEX, "Did that arrive?")
    told = await _told(desk, ALEX, agent_start, "didn't reach")
    assert told == ["⚠️ Your document didn't reach Maya (T000001): Telegram refused it (File is too big)."]
    got = await _arrived(desk, MAYA, customer_start, 1)
    assert [m["message"].get("text") for m in got] == ["Alex: Did that arrive?"]


async def test_an_agents_edit_edits_the_customers_copy(desk: Harness) -> None:
    start = await _last(desk, MAYA)
    text = (await desk.emulator.send_text(ALEX, "Your refund is 20 EUR"))["message"]
    [copy] = await _new(desk, MAYA, start, "refund")
    await desk.emulator.edit(ALEX, text["message_id"], "Your refund is 25 EUR")
    found = await _arrived(desk, MAYA, copy["seq"], 1)
    assert [m["method"] for m in found] == ["editMessageText"]
    edited = found[0]
    assert edited["message"]["message_id"] == copy["message"]["message_id"]
    assert edited["message"]["text"] == "Alex: Your refund is 25 EUR"

    photo = (await desk.emulator.send_media(ALEX, "photo", caption="the old model"))["message"]
    [photo_copy] = await _arrived(desk, MAYA, edited["seq"], 1)
    await desk.emulator.edit_caption(ALEX, photo["message_id"], "the new model")
    [recaptioned] = await _arrived(desk, MAYA, photo_copy["seq"], 1)
    assert recaptioned["method"] == "editMessageCaption"
    assert recaptioned["message"]["message_id"] == photo_copy["message"]["message_id"]
    assert recaptioned["message"]["caption"] == "Alex: the new model"
    history = {m["message_id"]: m for m in await desk.emulator.history(MAYA)}
    assert history[copy["message"]["message_id"]]["text"] == "Alex: Your refund is 25 EUR"
    async with desk.sessions() as session:
        edits = (await session.scalars(select(Message.text).where(Message.kind == "agent_edit"))).all()
    assert edits == ["Alex: Your refund is 25 EUR", "Alex: the new model"], "the transcript keeps both versions"
    async with desk.sessions() as session:
        lines = cards.transcript(await session.run_sync(transcript.messages, MAYA), "Maya")
    assert lines[-4:] == [
        "Alex: Your refund is 20 EUR",
        "(edited) Alex: Your refund is 25 EUR",
        "Alex: [photo] the old model",
        "(edited) Alex: the new model",
    ], "the next agent reads both versions, and what was sent"


async def test_an_edit_of_a_message_no_customer_got_is_explained(desk: Harness) -> None:
    await desk.emulator.block(MAYA)
    text = (await desk.emulator.send_text(ALEX, "Your refund is 20 EUR"))["message"]
    agent_start = await _last(desk, ALEX)
    await desk.emulator.edit(ALEX, text["message_id"], "Your refund is 25 EUR")
    told = await _told(desk, ALEX, agent_start, "edit of a message didn't reach")
    expected = "⚠️ Your edit of a message didn't reach Maya (T000001): Telegram refused it ({reason})."
    assert told == [expected.format(reason="the message to edit never reached the chat")]


async def test_a_customers_edit_reaches_the_agent_and_the_topic_marked_as_edited(desk: Harness) -> None:
    agent_start, group_start = await _last(desk, ALEX), await _last(desk, desk.group_id)
    original = (await desk.emulator.send_text(MAYA, "my order is A12345"))["message"]
    first = (await _new(desk, ALEX, agent_start, "A12345"))[-1]
    await desk.emulator.edit(MAYA, original["message_id"], "my order is A12346")
    [relayed] = await _new(desk, ALEX, first["seq"], "A12346")
    assert relayed["text"] == "💬 Maya · T000001 ✏️ edited\nmy order is A12346"
    [noted] = await _new(desk, desk.group_id, group_start, "A12346")
    assert noted["text"] == relayed["text"] and noted["message_thread_id"]

    photo = (await desk.emulator.send_media(MAYA, "photo", caption="the lamp"))["message"]
    after = (await _new(desk, ALEX, relayed["seq"], "the lamp"))[-1]["seq"]
    await desk.emulator.edit_caption(MAYA, photo["message_id"], "the broken lamp")
    [copied] = await _new(desk, ALEX, after, "broken lamp")
    assert copied["method"] == "copyMessage" and copied["message"]["photo"]
    assert copied["message"]["caption"] == "💬 Maya · T000001 ✏️ edited\nthe broken lamp"
    async with desk.sessions() as session:
        kinds = [(m.direction, m.kind, m.text) for m in await session.run_sync(transcript.messages, MAYA)]
    assert (Direction.IN, "edited", "my order is A12346") in kinds
