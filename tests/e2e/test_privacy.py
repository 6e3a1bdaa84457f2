"""The customer's data through the real stack: /mydata returns it, /forget removes it from us and from Rasa."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from sqlalchemy import func, select

from bot import replies
from bot.emulator.client import EmulatorClient
from bot.storage import transcript
from bot.storage.models import CallbackPayload, Customer, InboxUpdate
from devstack.stack import Stack
from tests.e2e.helpers import press, replies_after


def _tracker_events(stack: Stack, sender_id: str) -> int:
    with sqlite3.connect(stack.workdir / "rasa-tracker.db") as db:
        return db.execute("SELECT count(*) FROM events WHERE sender_id = ?", (sender_id,)).fetchone()[0]


async def test_the_customer_gets_their_data_and_then_has_it_forgotten(
    stack: Stack, emulator: EmulatorClient, customer: dict, db
) -> None:
    user = customer["id"]
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "where is my order A12345?")
    await replies_after(emulator, user, after)
    assert _tracker_events(stack, f"tg-{user}") > 0

    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "/mydata")
    [document] = await emulator.wait_for_text(user, after, predicate=lambda t: t == replies.MYDATA_CAPTION, timeout=15)
    export = json.loads(await emulator.file_content(document["file"]["file_id"]))
    assert (export["customer"]["first_name"], export["customer"]["username"]) == ("Maya", "maya_l")
    texts = [m["text"] for m in export["conversations"][0]["messages"]]
    assert texts[0] == "where is my order A12345?" and "/mydata" in texts

    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "/forget")
    question = (await replies_after(emulator, user, after, until=replies.FORGET_CONFIRM))[-1]
    await press(emulator, user, question, replies.FORGET_YES, until=replies.FORGOTTEN)

    async def stored() -> tuple:
        async with db() as session:
            customers = list(await session.scalars(select(Customer).where(Customer.telegram_user_id == user)))
            messages = await session.run_sync(transcript.messages, user)
            updates = await session.scalar(
                select(func.count()).select_from(InboxUpdate).where(InboxUpdate.chat_id == user)
            )
            buttons = await session.scalar(
                select(func.count()).select_from(CallbackPayload).where(CallbackPayload.chat_id == user)
            )
        return customers, messages, updates, buttons

    # Nothing remains: not even the bare records that carried the confirmation, once it was delivered.
    for _ in range(100):
        if await stored() == ([], [], 0, 0):
            break
        await asyncio.sleep(0.1)
    assert await stored() == ([], [], 0, 0)
    assert _tracker_events(stack, f"tg-{user}") == 0
