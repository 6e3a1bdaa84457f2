"""A restart between claiming a message's one trip to Rasa and hearing back: Rasa is never asked twice, and a
message it never got is still answered."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot import clock
from bot.storage import inbox, transcript
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import InboxUpdate, utcnow
from tests.unit.chat_harness import running_harness

UPDATE_ID = 900_001
TEXT = "where is my parcel"


async def _left_claimed(tmp_path: Path, claimed_ago: timedelta) -> None:
    """The database as an app leaves it that died right after recording a message and claiming its trip to Rasa
    (the `after-inbox` failpoint): the customer known, the message recorded, the update pending and claimed."""
    async with running_harness(tmp_path) as harness:
        await harness.say("hello")  # the customer and their conversation
    raw = {
        "update_id": UPDATE_ID,
        "message": {
            "message_id": 9001,
            "date": int(clock.now().timestamp()),
            "text": TEXT,
            "chat": {"id": 4242, "type": "private", "first_name": "Maya"},
            "from": {"id": 4242, "is_bot": False, "first_name": "Maya", "username": "maya"},
        },
    }
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'frontline.db'}")
    try:
        async with create_sessionmaker(engine).begin() as session:
            await session.run_sync(inbox.store, update_id=UPDATE_ID, chat_id=4242, payload=raw)
            conversation = await session.run_sync(transcript.find_conversation, 4242)
            await session.run_sync(
                transcript.record_incoming, conversation=conversation, update_id=UPDATE_ID, kind="text", text=TEXT
            )
            row = await session.get(InboxUpdate, UPDATE_ID)
            row.rasa_sent_at = utcnow() - claimed_ago
    finally:
        await engine.dispose()


async def test_a_message_rasa_never_got_is_asked_after_the_restart(tmp_path: Path) -> None:
    await _left_claimed(tmp_path, claimed_ago=timedelta(minutes=5))  # long past RASA_TIMEOUT: Rasa is not at it
    async with running_harness(tmp_path) as harness:
        messages = await harness.emulator.wait_for_text(4242, timeout=10, predicate=lambda text: TEXT in text)
        assert messages[-1]["text"] == f"echo: {TEXT}"
        assert [body["message"] for body in harness.rasa.received] == [TEXT]
        assert body_update_id(harness.rasa.received[-1]) == UPDATE_ID


async def test_what_rasa_answered_while_the_app_was_down_is_sent_without_asking_again(tmp_path: Path) -> None:
    await _left_claimed(tmp_path, claimed_ago=timedelta(0))  # just claimed: Rasa may still be working on it

    def tracker(reading: int) -> list[dict]:
        """Rasa's tracker has the message and its answer from the second reading on (Rasa was still at it)."""
        if reading == 1:
            return []
        return [
            {"event": "user", "text": TEXT, "metadata": {"update_id": UPDATE_ID}},
            {"event": "bot", "text": "It left the depot this morning."},
        ]

    async with running_harness(tmp_path, RASA_TIMEOUT="30") as harness:
        harness.rasa.tracker_at = tracker
        messages = await harness.emulator.wait_for_text(4242, timeout=20, predicate=lambda text: "depot" in text)
        assert messages[-1]["text"] == "It left the depot this morning."
        assert harness.rasa.received == [], "Rasa was not asked again"
        assert harness.rasa.tracker_reads >= 2


def body_update_id(body: dict) -> int:
    return body["metadata"]["update_id"]
