"""The Rasa client over several instances: each conversation has its own, and a dead one is stood in for once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.rasa import RasaClient, RasaUnavailable
from devstack.stack import free_port


class FakeRasa:
    """A Rasa instance that records messages and keeps a tracker per sender (shared, as a shared store is)."""

    def __init__(self, name: str, trackers: dict[str, list[dict]]) -> None:
        self.name, self.trackers, self.received = name, trackers, []

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        events = self.trackers.setdefault(body["sender"], [])
        events.append({"event": "user", "text": body["message"], "metadata": body["metadata"]})
        events.append({"event": "bot", "text": f"{self.name}: {body['message']}", "data": {}})
        return web.json_response([{"text": f"{self.name}: {body['message']}"}])

    async def tracker(self, request: web.Request) -> web.Response:
        return web.json_response({"events": self.trackers.get(request.match_info["sender"], [])})


@pytest.fixture
async def two_instances() -> AsyncIterator[tuple[list[FakeRasa], list[str], list[web.AppRunner]]]:
    trackers: dict[str, list[dict]] = {}
    fakes, urls, runners = [], [], []
    for name in ("one", "two"):
        fake = FakeRasa(name, trackers)
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", fake.webhook)
        app.router.add_get("/conversations/{sender}/tracker", fake.tracker)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        fakes.append(fake)
        urls.append(f"http://127.0.0.1:{port}")
        runners.append(runner)
    yield fakes, urls, runners
    for runner in runners:
        await runner.cleanup()


async def test_each_conversation_keeps_to_its_instance(two_instances) -> None:
    fakes, urls, _ = two_instances
    client = RasaClient(urls, timeout=5)
    try:
        for n in range(20):
            sender = f"tg-{n}"
            first = client.instances(sender)[0]
            answer = await client.send(sender, "hi", {"update_id": n})
            assert answer[0]["text"].startswith(fakes[urls.index(first)].name)
        assert fakes[0].received and fakes[1].received, "conversations are spread over both"
    finally:
        await client.close()


async def test_a_dead_instance_is_stood_in_for_and_a_taken_message_is_not_sent_twice(two_instances) -> None:
    fakes, urls, runners = two_instances
    client = RasaClient(urls, timeout=5)
    sender = next(f"tg-{n}" for n in range(100) if RasaClient(urls, 5).instances(f"tg-{n}")[0] == urls[0])
    try:
        await client.send(sender, "first", {"update_id": 1})
        await runners[0].cleanup()  # instance one dies
        assert (await client.send(sender, "second", {"update_id": 2}))[0]["text"] == "two: second"
        # The dead instance had already taken update 1: the stand-in answers from the shared tracker.
        assert await client.send(sender, "first", {"update_id": 1}) == [{"text": "one: first"}]
        assert [b["message"] for b in fakes[1].received] == ["second"]
    finally:
        await client.close()


async def test_every_instance_down_is_unavailable() -> None:
    client = RasaClient([f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"], timeout=2)
    try:
        with pytest.raises(RasaUnavailable):
            await client.send("tg-1", "hello", {"update_id": 1})
        assert "unreachable" in (await client.status() or "")
    finally:
        await client.close()
