"""getUpdates as Telegram runs it for a restarted bot and for two bot instances: updates stay until an offset
confirms them, and a poll is ended with 409 Conflict whenever another instance polls."""

import asyncio

import aiohttp
from telegram import Bot
from telegram.error import Conflict

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from tests.emulator.conftest import TOKEN

CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"


async def test_updates_fetched_by_a_poller_that_died_come_again_until_confirmed(
    emulator: EmulatorServer, client: EmulatorClient
) -> None:
    user = await client.add_user("Ann")
    for text in ("one", "two"):
        await client.send_text(user["id"], text)
    # A poller takes the updates, then is gone without polling again.
    async with aiohttp.ClientSession() as killed, killed.get(f"{emulator.bot_api_url}{TOKEN}/getUpdates") as response:
        taken = (await response.json())["result"]
    assert [u["message"]["text"] for u in taken] == ["one", "two"]
    async with Bot(TOKEN, base_url=emulator.bot_api_url) as successor:
        again = await successor.get_updates()
        assert [u.update_id for u in again] == [u["update_id"] for u in taken]
        await successor.get_updates(offset=again[-1].update_id + 1)
    assert await client.pending_updates() == []


async def test_two_instances_polling_one_bot_are_each_answered_409_in_turn(emulator: EmulatorServer) -> None:
    async with Bot(TOKEN, base_url=emulator.bot_api_url) as first, Bot(TOKEN, base_url=emulator.bot_api_url) as second:
        polling = asyncio.create_task(first.get_updates(timeout=5))
        await asyncio.sleep(0.1)
        started_by_mistake = asyncio.create_task(second.get_updates(timeout=5))
        assert await _ends_with_conflict(polling), "the older poll is ended with 409"
        # The first instance polls again, as it would: now the second one is told.
        polling = asyncio.create_task(first.get_updates(timeout=1))
        assert await _ends_with_conflict(started_by_mistake), "the instance started by mistake is told with 409"
        assert await asyncio.wait_for(polling, 3) == ()


async def _ends_with_conflict(poll: asyncio.Task) -> bool:
    """True when the poll ends within 2 s with Telegram's 409 for a second instance."""
    await asyncio.wait([poll], timeout=2)
    if not poll.done():
        poll.cancel()
        return False
    failure = poll.exception()
    return isinstance(failure, Conflict) and failure.message == CONFLICT
