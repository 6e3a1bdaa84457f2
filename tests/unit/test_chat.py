"""The app's customer chat, run whole (intake, handlers, outbox) against the emulator and a scripted Rasa."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bot import replies
from bot.app import serve
from bot.config import load_settings
from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.storage import inbox, transcript
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import DeliveryStatus, Direction

TOKEN = "123456789:unit-test-token"


@dataclass
class ScriptedRasa:
    """Stands in for Rasa's REST channel: records what it was sent, answers what the test scripts."""

    answer: Callable[[dict[str, Any]], Any] = lambda body: [{"text": f"echo: {body['message']}"}]
    received: list[dict[str, Any]] = field(default_factory=list)
    tracker_events: list[dict[str, Any]] = field(default_factory=list)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        result = self.answer(body)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.Response):
            return result
        return web.json_response(result)

    async def tracker(self, request: web.Request) -> web.Response:
        return web.json_response({"events": self.tracker_events})


@dataclass
class Harness:
    emulator: EmulatorClient
    rasa: ScriptedRasa
    sessions: Any
    user_id: int = 4242

    async def say(self, text: str, timeout: float = 5) -> list[dict]:
        after = (await self.emulator.sent(self.user_id)).last
        await self.emulator.send_text(self.user_id, text)
        return await self.emulator.wait_for_text(self.user_id, after, timeout=timeout)


async def eventually(probe: Callable[[], Any], expected: Any, timeout: float = 5) -> Any:
    """True once the probe returns `expected`, False if it never does within the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await probe()) != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return value == expected


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[Harness]:
    """Emulator + scripted Rasa + the real app (SQLite), all in this event loop."""
    emulator = EmulatorServer()
    emulator_url = await emulator.start("127.0.0.1", 0)
    rasa = ScriptedRasa()
    rasa_app = web.Application()
    rasa_app.router.add_post("/webhooks/rest/webhook", rasa.webhook)
    rasa_app.router.add_get("/conversations/{sender}/tracker", rasa.tracker)
    runner = web.AppRunner(rasa_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rasa_port = site._server.sockets[0].getsockname()[1]
    settings = load_settings({
        "FRONTLINE_VAR": str(tmp_path),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": f"{emulator_url}/bot",
        "RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "RASA_TIMEOUT": "1.5",
    })
    stop = asyncio.Event()
    app = asyncio.create_task(serve(settings, stop))
    engine = create_engine(settings.database_url)
    async with EmulatorClient(emulator_url) as control:
        await control.add_user("Maya", user_id=4242, username="maya")
        for _ in range(100):
            if await control.calls("getUpdates"):
                break
            await asyncio.sleep(0.05)
        yield Harness(control, rasa, create_sessionmaker(engine))
    stop.set()
    await asyncio.wait_for(app, 30)
    await engine.dispose()
    await runner.cleanup()
    await emulator.stop()


async def test_text_reaches_rasa_with_the_customer_profile(harness: Harness) -> None:
    messages = await harness.say("where is my parcel")
    assert messages[-1]["text"] == "echo: where is my parcel"
    sent = harness.rasa.received[-1]
    assert sent["sender"] == "tg-4242"
    assert sent["metadata"]["telegram"]["first_name"] == "Maya"
    assert sent["metadata"]["telegram"]["username"] == "maya"
    assert isinstance(sent["metadata"]["update_id"], int)


async def test_start_asks_rasa_to_greet(harness: Harness) -> None:
    await harness.say("/start")
    assert harness.rasa.received[-1]["message"] == "/greet"


async def test_intent_syntax_in_text_is_escaped(harness: Harness) -> None:
    await harness.say('  / /request_human{"x": 1} please')
    assert not harness.rasa.received[-1]["message"].startswith("/")


async def test_empty_rasa_answer_becomes_the_trouble_message(harness: Harness) -> None:
    harness.rasa.answer = lambda body: []
    assert (await harness.say("hello"))[-1]["text"] == replies.TROUBLE


async def test_rasa_error_becomes_the_trouble_message(harness: Harness) -> None:
    harness.rasa.answer = lambda body: web.Response(status=500)
    assert (await harness.say("hello"))[-1]["text"] == replies.TROUBLE


async def test_slow_rasa_is_cut_off_with_the_trouble_message(harness: Harness) -> None:
    async def slow(body: dict) -> list:
        await asyncio.sleep(5)
        return [{"text": "too late"}]

    harness.rasa.answer = slow
    assert (await harness.say("hello", timeout=5))[-1]["text"] == replies.TROUBLE


async def test_typing_is_shown_while_rasa_thinks(harness: Harness) -> None:
    async def slowish(body: dict) -> list:
        await asyncio.sleep(0.3)
        return [{"text": "done"}]

    harness.rasa.answer = slowish
    await harness.say("hello")
    actions = await harness.emulator.calls("sendChatAction")
    assert any(str(call["params"].get("action")) == "typing" for call in actions)


async def test_long_reply_is_split_for_telegram(harness: Harness) -> None:
    harness.rasa.answer = lambda body: [{"text": "word " * 1500}]
    after = (await harness.emulator.sent(4242)).last
    await harness.emulator.send_text(4242, "tell me everything")
    await harness.emulator.wait_for_text(4242, after, timeout=5)
    await asyncio.sleep(0.3)
    parts = (await harness.emulator.sent(4242, after)).messages
    assert len(parts) == 2 and all(len(p["text"]) <= 4096 for p in parts)


async def test_buttons_carry_server_side_ids_and_pressing_sends_the_payload(harness: Harness) -> None:
    harness.rasa.answer = lambda body: [{"text": "Pick one", "buttons": [{"title": "Talk to a person", "payload": "/request_human"}]}]
    messages = await harness.say("hmm")
    button = messages[-1]["reply_markup"]["inline_keyboard"][0][0]
    assert button["text"] == "Talk to a person"
    assert "request_human" not in button["callback_data"]
    harness.rasa.answer = lambda body: [{"text": "A person will help"}]
    after = (await harness.emulator.sent(4242)).last
    await harness.emulator.press(4242, messages[-1]["message_id"], button["callback_data"])
    await harness.emulator.wait_for_text(4242, after, predicate=lambda t: t == "A person will help", timeout=5)
    assert harness.rasa.received[-1]["message"] == "/request_human"


async def test_forged_button_is_refused_without_asking_rasa(harness: Harness) -> None:
    messages = await harness.say("hello")
    asked = len(harness.rasa.received)
    pressed = await harness.emulator.press(4242, messages[-1]["message_id"], "b:not-issued", forged=True)
    for _ in range(100):
        answer = await harness.emulator.callback_answer(pressed["callback_query_id"])
        if answer.get("answered"):
            break
        await asyncio.sleep(0.05)
    assert replies.EXPIRED_BUTTON in str(answer)
    assert len(harness.rasa.received) == asked


async def test_group_messages_are_ignored(harness: Harness) -> None:
    group = await harness.emulator.add_group("Some group", members=[4242])
    await harness.emulator.send_text(4242, "hello bot", chat_id=group["id"])
    await asyncio.sleep(0.5)
    assert harness.rasa.received == []
    assert (await harness.emulator.sent(group["id"])).messages == []


async def test_reply_survives_a_telegram_outage(harness: Harness) -> None:
    await harness.emulator.set_fault("502", method="sendMessage", count=3)
    messages = await harness.say("hello", timeout=15)
    assert messages[-1]["text"] == "echo: hello"

    async def statuses() -> list[DeliveryStatus]:
        async with harness.sessions() as session:
            return [m.status for m in await transcript.messages(session, 4242) if m.direction is Direction.OUT]

    assert await eventually(statuses, [DeliveryStatus.SENT])


async def test_a_handled_update_is_marked_done_and_recorded_once(harness: Harness) -> None:
    await harness.say("hello")

    async def pending() -> list:
        async with harness.sessions() as session:
            return await inbox.pending(session)

    assert await eventually(pending, [])
    async with harness.sessions() as session:
        stored = await transcript.messages(session, 4242)
    assert [m.direction for m in stored] == [Direction.IN, Direction.OUT]
    assert len(harness.rasa.received) == 1


async def test_a_handoff_payload_is_stored_not_sent(harness: Harness) -> None:
    handoff = {"handoff": {"reason": "customer_request", "ticket_id": None, "collected": {"order_number": "A12345"}}}
    harness.rasa.answer = lambda body: [{"text": "A person will pick this up."}, {"custom": handoff}]
    messages = await harness.say("I want a person")
    assert messages[-1]["text"] == "A person will pick this up."
    async with harness.sessions() as session:
        stored = await transcript.messages(session, 4242)
    assert [(m.kind, m.payload) for m in stored if m.kind == "handoff"] == [("handoff", handoff)]
    assert len((await harness.emulator.sent(4242)).messages) == 1
