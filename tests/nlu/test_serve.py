"""nlu/serve.py: a pulled model is loaded in a thread while the event loop keeps serving (.venv-rasa has no
pytest-asyncio: each test runs its own loop)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from rasa.core import agent as rasa_agent

from nlu import serve


class SlowAgent:
    fingerprint = "old"

    def __init__(self) -> None:
        self.loaded_in: str | None = None

    def load_model(self, model_path, fingerprint=None) -> None:  # as Agent.load_model, but slow and observable
        time.sleep(0.5)
        self.loaded_in = threading.current_thread().name
        self.fingerprint = fingerprint


class Server:
    url = "http://127.0.0.1:1/models/live"


def test_the_event_loop_keeps_running_while_a_pulled_model_loads(monkeypatch) -> None:
    asyncio.run(_loop_keeps_running(monkeypatch))


async def _loop_keeps_running(monkeypatch) -> None:
    async def pulled(model_server, fingerprint, folder) -> str:
        Path(folder, "model.tar.gz").write_bytes(b"model")
        return "new"

    monkeypatch.setattr(rasa_agent, "_pull_model_and_fingerprint", pulled)
    agent = SlowAgent()
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(ticking())
    await serve.update_model_beside(Server(), agent)
    ticker.cancel()
    assert agent.fingerprint == "new"
    assert agent.loaded_in != threading.main_thread().name
    assert ticks >= 10, "the loop stood still while the model loaded"


def test_no_new_model_loads_nothing_and_a_failed_load_keeps_the_old_model(monkeypatch) -> None:
    asyncio.run(_nothing_or_failure(monkeypatch))


async def _nothing_or_failure(monkeypatch) -> None:
    async def nothing_new(model_server, fingerprint, folder):
        return None

    monkeypatch.setattr(rasa_agent, "_pull_model_and_fingerprint", nothing_new)
    agent = SlowAgent()
    await serve.update_model_beside(Server(), agent)
    assert agent.loaded_in is None and agent.fingerprint == "old"

    async def broken(model_server, fingerprint, folder):
        return "broken"

    def fails(agent, folder, fingerprint):
        raise ValueError("not a model")

    monkeypatch.setattr(rasa_agent, "_pull_model_and_fingerprint", broken)
    monkeypatch.setattr(rasa_agent, "_load_and_set_updated_model", fails)
    await serve.update_model_beside(Server(), agent)
    assert agent.fingerprint == "old"


def test_installing_replaces_rasas_model_update_and_nlg_request() -> None:
    from rasa.core.nlg import callback

    original, request = rasa_agent._update_model_from_server, callback.nlg_request_format
    try:
        serve.install()
        assert rasa_agent._update_model_from_server is serve.update_model_beside
        assert callback.nlg_request_format is serve.compact_nlg_request
    finally:
        rasa_agent._update_model_from_server, callback.nlg_request_format = original, request


def test_the_nlg_request_carries_the_slots_not_every_event() -> None:
    from rasa.shared.core.events import SlotSet, UserUttered
    from rasa.shared.core.slots import TextSlot
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker("tg-7", slots=[TextSlot("first_name", mappings=[])])
    for i in range(50):
        tracker.update(UserUttered(f"message {i}", {"name": "greet", "confidence": 1.0}))
    tracker.update(SlotSet("first_name", "Maya"))
    body = serve.compact_nlg_request("utter_greet_name", tracker, "rest", response_id=None, ticket_id="T000001")
    assert body == {
        "response": "utter_greet_name",
        "id": None,
        "arguments": {"ticket_id": "T000001"},
        "tracker": {"sender_id": "tg-7", "slots": {"first_name": "Maya"}},
        "channel": {"name": "rest"},
    }
