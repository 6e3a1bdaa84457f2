"""Webhook mode: Telegram (the emulator) POSTs updates; each is stored before the 200, and a chat's come in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.storage import inbox
from tests.unit.chat_harness import Harness, eventually, running_harness


@pytest.fixture
async def hooked(tmp_path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, webhook=True) as running:
        yield running


async def test_messages_arrive_by_webhook_and_are_answered_in_order(hooked: Harness) -> None:
    for text in ("first", "second", "third"):
        await hooked.emulator.send_text(hooked.user_id, text)
    replies = await hooked.emulator.wait_for_text(hooked.user_id, predicate=lambda t: t == "echo: third")
    assert [m["text"] for m in replies] == ["echo: first", "echo: second", "echo: third"]
    assert not await hooked.emulator.calls("getUpdates"), "no polling in webhook mode"

    async def pending() -> list:
        async with hooked.sessions() as session:
            return await session.run_sync(inbox.pending)

    assert await eventually(pending, []), "every update is marked handled (just after its reply went out)"


async def test_a_call_without_the_secret_is_refused(hooked: Harness) -> None:
    [call] = await hooked.emulator.calls("setWebhook")
    url = call["params"]["url"]
    update = {
        "update_id": 999,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 4242, "type": "private"},
            "from": {"id": 4242, "is_bot": False, "first_name": "Eve"},
            "text": "/forget",
        },
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}) as response,
    ):
        assert response.status == 403
    async with hooked.sessions() as session:
        assert await session.run_sync(inbox.newest_update_id) is None, "nothing was stored"
