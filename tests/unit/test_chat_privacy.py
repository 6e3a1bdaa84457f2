"""/mydata and /forget through the whole app (intake, handlers, outbox) against the emulator and a scripted Rasa."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import replies
from bot.storage import privacy, transcript
from bot.storage.models import CallbackPayload, Customer, Direction, InboxStatus, InboxUpdate
from bot.telegram.outbox import Outbox
from tests.unit.chat_harness import Harness, callback_answer, eventually

USER = 4242


def _buttons(message: dict) -> dict[str, str]:
    """Title → callback data of a message's inline keyboard."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return {b["text"]: b["callback_data"] for row in rows for b in row}


async def _command(harness: Harness, text: str, expect: str, user: int = USER) -> list[dict]:
    after = (await harness.emulator.sent(user)).last
    await harness.emulator.send_text(user, text)
    return await harness.emulator.wait_for_text(user, after, predicate=lambda t: t == expect, timeout=5)


async def _press(harness: Harness, message: dict, title: str, expect: str) -> list[dict]:
    after = (await harness.emulator.sent(USER)).last
    await harness.emulator.press(USER, message["message_id"], _buttons(message)[title])
    return await harness.emulator.wait_for_text(USER, after, predicate=lambda t: t == expect, timeout=5)


def _rasa_tracker(path: Path, senders: list[str]) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE events (id INTEGER NOT NULL, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) "
            "NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT, PRIMARY KEY (id))"
        )
        db.executemany("INSERT INTO events (sender_id, type_name) VALUES (?, 'user')", [(s,) for s in senders])


async def test_mydata_sends_the_customers_data_as_a_json_file(harness: Harness) -> None:
    await harness.say("where is my parcel")
    [document] = await _command(harness, "/mydata", replies.MYDATA_CAPTION)
    assert document["method"] == "sendDocument" and document["file"]["file_name"] == replies.MYDATA_FILE_NAME
    export = json.loads(await harness.emulator.file_content(document["file"]["file_id"]))
    assert export["customer"]["first_name"] == "Maya"
    [conversation] = export["conversations"]
    texts = [(m["direction"], m["text"]) for m in conversation["messages"]]
    assert texts[:3] == [("IN", "where is my parcel"), ("OUT", "echo: where is my parcel"), ("IN", "/mydata")]
    assert [m["message"] for m in harness.rasa.received] == ["where is my parcel"], "Rasa is not asked"

    async def last_stored() -> tuple:  # (the app records the file id once Telegram has answered: just after it)
        async with harness.sessions() as session:
            stored = (await session.run_sync(transcript.messages, USER))[-1]
        return stored.kind, stored.payload

    wanted = ("document", {"file_name": replies.MYDATA_FILE_NAME, "file_id": document["file"]["file_id"]})
    assert await eventually(last_stored, wanted), await last_stored()


async def test_forget_yes_deletes_everything_even_the_confirmation_once_delivered(
    harness: Harness, tmp_path: Path
) -> None:
    _rasa_tracker(tmp_path / "rasa-tracker.db", ["tg-4242", "tg-777", "tg-4242"])
    await harness.say("my name is Maya and my order is A12345")
    [*_, question] = await _command(harness, "/forget", replies.FORGET_CONFIRM)
    assert set(_buttons(question)) == {replies.FORGET_YES, replies.FORGET_NO}
    await _press(harness, question, replies.FORGET_YES, replies.FORGOTTEN)

    async def stored() -> tuple:
        async with harness.sessions() as session:
            customers = list(await session.scalars(select(Customer).where(Customer.telegram_user_id == USER)))
            messages = await session.run_sync(transcript.messages, USER)
            updates = list(await session.scalars(select(InboxUpdate).where(InboxUpdate.chat_id == USER)))
            payloads = list(await session.scalars(select(CallbackPayload).where(CallbackPayload.chat_id == USER)))
        return customers, messages, updates, payloads

    # The confirmation was recorded (the outbox sends only what is recorded), then went with its bare records.
    assert await eventually(stored, ([], [], [], [])), await stored()
    with sqlite3.connect(tmp_path / "rasa-tracker.db") as db:
        assert [row[0] for row in db.execute("SELECT sender_id FROM events")] == ["tg-777"]
    assert all(not m["message"].startswith("app:") for m in harness.rasa.received)
    # A forget log line (a keyed hash, never the id itself) lets a restore forget them again.
    [line] = (tmp_path / "forget-log").read_text().splitlines()
    assert str(USER) not in line and len(line.split()[1]) == 64


async def test_forget_no_deletes_nothing(harness: Harness) -> None:
    await harness.say("hello")
    [*_, question] = await _command(harness, "/forget", replies.FORGET_CONFIRM)
    await _press(harness, question, replies.FORGET_NO, replies.NOTHING_DELETED)
    async with harness.sessions() as session:
        customer = await session.scalar(select(Customer).where(Customer.telegram_user_id == USER))
        stored = await session.run_sync(transcript.messages, USER)
    assert customer.first_name == "Maya"
    assert [m.text for m in stored if m.direction is Direction.IN] == ["hello", "/forget", replies.FORGET_NO]
    assert [m["message"] for m in harness.rasa.received] == ["hello"]


async def test_another_chat_cannot_press_the_forget_button(harness: Harness) -> None:
    await harness.say("hello")
    [*_, question] = await _command(harness, "/forget", replies.FORGET_CONFIRM)
    await harness.emulator.add_user("Mallory", user_id=5151)
    [reply] = await _command(harness, "hi", "echo: hi", user=5151)
    pressed = await harness.emulator.press(
        5151, reply["message_id"], _buttons(question)[replies.FORGET_YES], forged=True
    )
    answer = await callback_answer(harness, pressed["callback_query_id"])
    assert replies.EXPIRED_BUTTON in str(answer)
    async with harness.sessions() as session:
        customer = await session.scalar(select(Customer).where(Customer.telegram_user_id == USER))
        assert customer.first_name == "Maya"
        assert [m.text for m in await session.run_sync(transcript.messages, USER)][:2] == ["hello", "echo: hello"]


async def _handled_after_the_forget(harness: Harness, sent: dict, written: asyncio.Event, stored: str) -> None:
    """`sent`, written during the forget, waits in the inbox until the forget goes on (`written`), then is handled:
    Rasa gets it and the new transcript is the confirmation, then it and its answer."""

    async def status() -> InboxStatus | None:
        async with harness.sessions() as session:
            row = await session.get(InboxUpdate, sent["update_id"])
            return row.status if row else None

    assert await eventually(status, InboxStatus.PENDING), stored
    written.set()
    assert await eventually(status, InboxStatus.DONE, timeout=8), await status()
    assert [m["message"] for m in harness.rasa.received] == ["hello", "it's me again"]
    async with harness.sessions() as session:
        stored_messages = await session.run_sync(transcript.messages, USER)
    assert [(m.direction, m.text) for m in stored_messages] == [
        (Direction.OUT, replies.FORGOTTEN),
        (Direction.IN, "it's me again"),
        (Direction.OUT, "echo: it's me again"),
    ]


async def test_a_message_written_as_the_forget_is_confirmed_is_handled_not_lost(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer writes again between the confirmation's delivery and the dropping of its bare records: the
    update, stored in the inbox meanwhile, is handled (it once went with the bare records, never to be handled)."""
    delivered, written = asyncio.Event(), asyncio.Event()
    flush = Outbox.flush

    async def held(outbox: Outbox, chat_id: int) -> None:
        # The customer's chat handler (its task, not the retry round), once the confirmation is delivered.
        await flush(outbox, chat_id)
        task = asyncio.current_task()
        if chat_id != USER or delivered.is_set() or task is None or task.get_name() != f"chat-{USER}":
            return
        if any(m.get("text") == replies.FORGOTTEN for m in (await harness.emulator.sent(USER)).messages):
            delivered.set()
            await written.wait()

    monkeypatch.setattr(Outbox, "flush", held)
    await harness.say("hello")
    [*_, question] = await _command(harness, "/forget", replies.FORGET_CONFIRM)
    await harness.emulator.press(USER, question["message_id"], _buttons(question)[replies.FORGET_YES])
    await asyncio.wait_for(delivered.wait(), 5)
    sent = await harness.emulator.send_text(USER, "it's me again")

    await _handled_after_the_forget(harness, sent, written, "stored in the inbox while the forget is finishing")


async def test_a_message_written_while_the_forget_runs_is_handled_not_lost(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer writes again while their records are being forgotten: the update, stored in the inbox after the
    button press and not handled yet, is not forgotten with the old records but handled once the forget is done
    (it used to be deleted from the inbox with the rest of the chat's updates)."""
    forgetting, written = asyncio.Event(), asyncio.Event()
    forget_tracker = privacy.forget_rasa_tracker

    async def held(tracker_url: str, sender_id: str) -> int:
        forgetting.set()
        await written.wait()
        return await forget_tracker(tracker_url, sender_id)

    monkeypatch.setattr(privacy, "forget_rasa_tracker", held)
    await harness.say("hello")
    [*_, question] = await _command(harness, "/forget", replies.FORGET_CONFIRM)
    await harness.emulator.press(USER, question["message_id"], _buttons(question)[replies.FORGET_YES])
    await asyncio.wait_for(forgetting.wait(), 5)
    sent = await harness.emulator.send_text(USER, "it's me again")

    await _handled_after_the_forget(harness, sent, written, "stored in the inbox while the forget runs")
