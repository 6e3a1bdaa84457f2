"""python-telegram-bot's requests over aiohttp (bot/telegram/request.py), against the Bot API emulator."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from telegram import Bot, InputFile
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.telegram.request import AiohttpRequest
from tests.unit.chat_harness import TOKEN


def _bot(base_url: str, **timeouts: float) -> Bot:
    return Bot(TOKEN, base_url=base_url, request=AiohttpRequest(**timeouts), get_updates_request=AiohttpRequest())


async def test_texts_buttons_files_and_updates_go_through_aiohttp() -> None:
    async with EmulatorServer() as server, EmulatorClient(server.base_url) as control:
        user = (await control.add_user("Ann"))["id"]
        async with _bot(server.bot_api_url) as bot:
            sent = await bot.send_message(
                user, "héllo & <b>", reply_markup={"inline_keyboard": [[{"text": "Yes", "callback_data": "app:1"}]]}
            )
            document = await bot.send_document(user, InputFile(b'{"a": 1}', filename="data.json"), caption="yours")
            await control.send_text(user, "hi bot")
            updates = await bot.get_updates(timeout=1)
        assert sent.text == "héllo & <b>" and sent.reply_markup.inline_keyboard[0][0].callback_data == "app:1"
        assert document.caption == "yours" and document.document.file_name == "data.json"
        assert await control.file_content(document.document.file_id) == b'{"a": 1}'
        assert [u.message.text for u in updates] == ["hi bot"]


async def test_telegrams_refusal_is_its_error_not_a_network_one() -> None:
    async with EmulatorServer() as server, _bot(server.bot_api_url) as bot:
        with pytest.raises(BadRequest):
            await bot.send_message(123456789, "nobody is here")


async def test_nothing_listening_is_a_network_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    bot = _bot(f"http://127.0.0.1:{port}/bot")
    await bot.request.initialize()  # Bot.initialize would call getMe first
    try:
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(1, "hello")
    finally:
        await bot.request.shutdown()
    assert not isinstance(raised.value, TimedOut)


async def test_a_server_slower_than_the_read_timeout_is_timed_out() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    async with TestServer(app) as server:
        bot = Bot(TOKEN, base_url=str(server.make_url("/bot")), request=AiohttpRequest(read_timeout=0.2))
        await bot.request.initialize()  # Bot.initialize would call getMe first
        try:
            with pytest.raises(TimedOut):
                await bot.delete_webhook()
        finally:
            await bot.request.shutdown()


async def test_a_request_before_initialize_or_after_shutdown_is_refused() -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/", "POST")
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/", "POST")
