"""nlu/tracker_store.py: Rasa's SQL tracker store with checked connections, waiting out a database restart."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from nlu import tracker_store
from nlu.tracker_store import ResilientSQLTrackerStore


@pytest.fixture
def store(tmp_path, monkeypatch) -> ResilientSQLTrackerStore:
    monkeypatch.setattr(tracker_store, "RETRY_DELAYS", (0.01, 0.01))
    return ResilientSQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "tracker.db"))


def test_connections_are_checked_before_use(store) -> None:
    assert store.engine.pool._pre_ping


def test_a_conversation_is_saved_and_read_back(store) -> None:
    tracker = DialogueStateTracker("tg-1", slots=[])
    tracker.update(UserUttered("hello", {"name": "greet", "confidence": 1.0}))
    asyncio.run(store.save(tracker))
    again = asyncio.run(store.retrieve("tg-1"))
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["hello"]


def _failing(times: int, calls: list[int]):
    original = SQLTrackerStore.save

    async def save(self, tracker) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError("the database restarts"))
        await original(self, tracker)

    return save


def test_a_write_waits_out_a_short_outage(store, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(SQLTrackerStore, "save", _failing(2, calls))
    tracker = DialogueStateTracker("tg-2", slots=[])
    tracker.update(UserUttered("my order arrived broken", {"name": "complain", "confidence": 1.0}))
    asyncio.run(store.save(tracker))
    assert len(calls) == 3
    assert asyncio.run(store.retrieve("tg-2")) is not None


def test_a_longer_outage_is_an_error_not_a_forgotten_conversation(store, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(SQLTrackerStore, "save", _failing(10, calls))
    with pytest.raises(sa.exc.OperationalError):
        asyncio.run(store.save(DialogueStateTracker("tg-3", slots=[])))
    assert len(calls) == 3  # the first try and one for each delay
