"""The promise of the agent's side of the relay: whatever an agent sends from their private chat (texts, photos,
files, voice notes, videos, audio, stickers, locations, albums, in any order) reaches the customer in that order,
each exactly once."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.storage.models import DeliveryStatus, Message
from tests.unit.chat_harness import Harness, running_harness
from tests.unit.test_desk import ALEX, _claimed, _handing_over

T = TypeVar("T")
JSON = dict[str, Any]
MAYA = 4242
CAPTIONED = ("photo", "document", "voice", "video", "audio")
SINGLE = ("text", *CAPTIONED, "sticker", "location")

one = st.sampled_from(SINGLE).map(lambda kind: (kind, 1))
album = st.tuples(st.just("album"), st.integers(min_value=2, max_value=4))
scripts = st.lists(st.one_of(one, album), min_size=1, max_size=6)


class World:
    """The app with Maya claimed by Alex, in an event loop driven from synchronous hypothesis tests."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._running = running_harness(tmp_path, desk=True, TELEGRAM_GROUP_RATE="0", TELEGRAM_RATE="0")
        self.harness: Harness = self.run(self._running.__aenter__())
        self.harness.rasa.answer = _handing_over
        self.run(self.harness.emulator.set_limits(enabled=False))
        self.run(_claimed(self.harness))
        self.tags = itertools.count(1)

    def run(self, step: Awaitable[T], timeout: float = 120) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(step, timeout))

    def close(self) -> None:
        self.run(self._running.__aexit__(None, None, None))
        self.loop.close()

    async def send(self, script: list[tuple[str, int]]) -> list[str]:
        """Alex sends the script; the identity of each message, in the order sent (an album's parts marked with
        the album: `m3.0@m3`)."""
        emulator, sent = self.harness.emulator, []
        for kind, count in script:
            tag = f"m{next(self.tags)}"
            if kind == "text":
                await emulator.send_text(ALEX, tag)
                sent.append(tag)
            elif kind == "album":
                items = [{"kind": "photo", "caption": f"{tag}.{n}"} for n in range(count)]
                await emulator.send_album(ALEX, items)
                sent += [f"{tag}.{n}@{tag}" for n in range(count)]
            elif kind in CAPTIONED:
                await emulator.send_media(ALEX, kind, caption=tag)
                sent.append(tag)
            elif kind == "sticker":
                message = (await emulator.send_media(ALEX, "sticker", emoji="👍"))["message"]
                sent.append(message["sticker"]["file_unique_id"])
            else:
                latitude = next(self.tags) / 1000
                await emulator.send_location(ALEX, latitude, 0.5)
                sent.append(f"at {latitude}")
        return sent

    async def received(self, after: int, count: int, timeout: float = 60) -> list[str]:
        """What reached Maya after `after`, once `count` messages have and nothing is left to deliver."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = (await self.harness.emulator.sent(MAYA, after)).messages
            async with self.harness.sessions() as session:
                pending = await session.scalar(
                    select(Message.id).where(Message.chat_id == MAYA, Message.status == DeliveryStatus.PENDING).limit(1)
                )
            if len(found) >= count and pending is None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # a duplicate would show up now
        messages = [m["message"] for m in (await self.harness.emulator.sent(MAYA, after)).messages]
        albums: dict[str, str] = {}  # the customer's media group ids, named by the first part's album
        return [_identity(message, albums) for message in messages]


def _identity(message: JSON, albums: dict[str, str]) -> str:
    """What a message the customer got is: its text or caption without the agent's name, a sticker's file, a
    location's latitude; a part of an album marked with the album (named as its first part's caption says)."""
    if "sticker" in message:
        return str(message["sticker"]["file_unique_id"])
    if "location" in message:
        return f"at {message['location']['latitude']}"
    said = str(message.get("text") or message.get("caption") or "").removeprefix("Alex: ")
    group = message.get("media_group_id")
    if group is None:
        return said
    return f"{said}@{albums.setdefault(group, said.partition('.')[0])}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = World(tmp_path_factory.mktemp("media-order"))
    yield built
    built.close()


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts)
def test_what_an_agent_sends_reaches_the_customer_in_order_each_exactly_once(
    world: World, script: list[tuple[str, int]]
) -> None:
    after = world.run(world.harness.emulator.sent(MAYA)).last
    sent = world.run(world.send(script))
    assert world.run(world.received(after, len(sent))) == sent
