"""The handoff's promise, as a property: whatever the customer wrote, whatever the bot collected and whatever they
sent before a person takes over, the agent receives it all.

One app (with the agents' desk) runs against the emulator and a scripted Rasa for the whole module, in an event
loop of its own (as in test_fuzz_inbound.py); hypothesis draws conversations (texts up to Telegram's 4,096
characters in any script, media of every kind in any order, bot replies in between), then a handoff for any reason
with any details collected. What the agents' group received in the ticket's topic (the card, the copied media and
the attached transcript) must hold every customer text byte for byte, every collected value, and every attachment
(copied: the same file_unique_id; or listed in the transcript).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.desk import cards
from bot.desk import round as desk_round
from bot.storage.models import Conversation, DeliveryStatus, Message, Ticket
from tests.unit.chat_harness import Harness, running_harness

T = TypeVar("T")
JSON = dict[str, Any]
EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
TRIGGER = "Please put me through to a person"
REASONS = ("customer_request", "fallbacks", "frustration", "complaint", "bot_unavailable")
FILES = ("photo", "document", "voice", "video", "audio")


@dataclass
class Script:
    """What one customer does before the handoff, and what the bot collected."""

    steps: list[tuple[str, Any]]
    reason: str
    collected: dict[str, str]
    replies: list[str] = field(default_factory=list)


class World:
    """The app, emulator and scripted Rasa, in an event loop driven from synchronous hypothesis tests."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        # Telegram's limits and our pace of them are not this property's business: none; the round every 0.1 s.
        self._running = running_harness(tmp_path, desk=True, TELEGRAM_GROUP_RATE="0", TELEGRAM_RATE="0")
        self.harness: Harness = self.run(self._running.__aenter__())
        self._users = itertools.count(7_000_001)
        self.scripts: dict[str, Script] = {}
        self.harness.rasa.answer = self._rasa
        self.run(self.harness.emulator.set_limits(enabled=False))

    def run(self, step: Awaitable[T], timeout: float = 120) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(step, timeout))

    def close(self) -> None:
        self.run(self._running.__aexit__(None, None, None))
        self.loop.close()

    def _rasa(self, body: JSON) -> Any:
        from aiohttp import web

        script = self.scripts.get(body["sender"])
        if script is None or body["message"] != TRIGGER:
            replies = script.replies if script else []
            return [{"text": replies.pop(0) if replies else "Noted."}]
        if script.reason == "bot_unavailable":
            return web.Response(status=500, text="Rasa is down")
        handoff = {
            "reason": script.reason,
            "ticket_id": None,
            "collected": script.collected,
            "intents": [{"name": "request_human", "confidence": 0.9}],
            "message": TRIGGER,
        }
        return [{"text": "I'm bringing in a person."}, {"custom": {"handoff": handoff}}]

    async def play(self, script: Script) -> tuple[int, list[JSON]]:
        """The customer's conversation, then the request for a person; their chat id and what they sent."""
        emulator = self.harness.emulator
        user = (await emulator.add_user("Dana", user_id=next(self._users), last_name="Quinn"))["id"]
        self.scripts[f"tg-{user}"] = script
        sent = []
        for kind, value in script.steps:
            after = (await emulator.sent(user)).last
            if kind == "text":
                sent.append((await emulator.send_text(user, value))["message"])
            elif kind == "album":
                sent += (await emulator.send_album(user, value))["messages"]
            else:
                sent.append((await emulator.send_media(user, kind, **value))["message"])
            # Each message answered before the next, as in a real conversation.
            await self._answered(user, after, len(value) if kind == "album" else 1)
        await emulator.send_text(user, TRIGGER)
        return user, sent

    async def _answered(self, user: int, after: int, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len((await self.harness.emulator.sent(user, after)).messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{user} was not answered")
            await asyncio.sleep(0.02)

    async def received(self, user: int, timeout: float = 60) -> tuple[list[JSON], str]:
        """What the agents' group got in the ticket's topic, once everything recorded for it is delivered; and the
        attached transcript's text ("" when none was attached)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.harness.sessions() as session:
                conversation = await session.scalar(select(Conversation).where(Conversation.chat_id == user))
                ticket = conversation and await session.scalar(
                    select(Ticket).where(Ticket.conversation_id == conversation.id)
                )
                pending = conversation and await session.scalar(
                    select(Message.id)
                    .where(
                        Message.conversation_id == conversation.id,
                        Message.chat_id == self.harness.group_id,
                        Message.status == DeliveryStatus.PENDING,
                    )
                    .limit(1)
                )
            if ticket is not None and ticket.topic_id is not None and pending is None:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the ticket of {user} never reached the group whole")
        topic = [
            m
            for m in (await self.harness.emulator.sent(self.harness.group_id)).messages
            if m.get("message_thread_id") == ticket.topic_id
        ]
        documents = [
            m["message"]["document"]
            for m in topic
            if "document" in m.get("message", {})
            and m["message"]["document"].get("file_name", "").endswith("-transcript.txt")
        ]
        text = "".join([(await self.harness.emulator.file_content(d["file_id"])).decode() for d in documents])
        return topic, text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    original = desk_round.ROUND_SECONDS
    desk_round.ROUND_SECONDS = 0.1
    running = World(tmp_path_factory.mktemp("context"))
    try:
        yield running
    finally:
        running.close()
        desk_round.ROUND_SECONDS = original


# --- what customers send -------------------------------------------------------------------------------------

# What Telegram delivers: any script, no NUL, no surrogates, trimmed, not a command.
letters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r")
short = st.text(letters, min_size=1, max_size=200)
# Long texts are built from a piece repeated: hypothesis draws short strings far faster than 4,000-character ones.
long = st.builds(
    lambda piece, times: (piece * times)[:4096], st.text(letters, min_size=1, max_size=12), st.integers(300, 4096)
)


def _telegram(text: str) -> str | None:
    text = text.strip()
    return text if text and not text.startswith("/") and text != TRIGGER else None


texts = st.one_of(short, long).map(_telegram).filter(bool)
captions = st.one_of(st.none(), st.text(letters, min_size=1, max_size=120).map(_telegram))
file_step = st.builds(
    lambda kind, caption: (kind, {"caption": caption} if caption else {}), st.sampled_from(FILES), captions
)
location = st.builds(
    lambda lat, lon: ("location", {"latitude": lat, "longitude": lon}),
    st.floats(-89, 89).map(lambda x: round(x, 5)),
    st.floats(-179, 179).map(lambda x: round(x, 5)),
)
contact = st.builds(
    lambda name, phone: ("contact", {"contact": {"first_name": name, "phone_number": phone}}),
    st.text(st.characters(whitelist_categories=("L",)), min_size=1, max_size=20),
    st.from_regex(r"\+[1-9][0-9]{7,12}", fullmatch=True),
)
album_item = st.builds(
    lambda kind, caption: {"kind": kind, **({"caption": caption} if caption else {})},
    st.sampled_from(("photo", "video")),
    captions,
)
album = st.lists(album_item, min_size=2, max_size=10).map(lambda items: ("album", items))
steps = st.lists(
    st.one_of(texts.map(lambda t: ("text", t)), file_step, location, contact, album), min_size=1, max_size=12
)
slot_text = st.one_of(short, long).map(lambda t: t.strip()).filter(bool)
collected = st.fixed_dictionaries(
    {},
    optional={
        "complaint_description": slot_text,
        "order_number": slot_text,
        "contact": slot_text,
        "complaint_category": st.sampled_from(sorted(cards.CATEGORIES)),
        "desired_resolution": st.sampled_from(sorted(cards.RESOLUTIONS)),
    },
)
conversations = st.builds(
    Script, steps=steps, reason=st.sampled_from(REASONS), collected=collected, replies=st.lists(texts, max_size=6)
)


def _copied(topic: list[JSON]) -> list[JSON]:
    """The customer's media copied into the topic, as the messages Telegram made of them."""
    return [m["message"] for m in topic if m.get("method") in ("copyMessage", "copyMessages")]


def _unique_id(message: JSON) -> str | None:
    for kind in FILES:
        if kind in message:
            item = message[kind][-1] if isinstance(message[kind], list) else message[kind]
            return item.get("file_unique_id")
    return None


@EXAMPLES
@given(script=conversations)
def test_every_fact_reaches_the_agent(world: World, script: Script) -> None:
    user, sent = world.run(world.play(script))
    topic, transcript = world.run(world.received(user))
    card = next(m["text"] for m in topic if (m.get("text") or "").startswith("🎫"))
    everything = card + "\n" + transcript
    for kind, value in script.steps:
        if kind == "text":
            assert value in everything, f"a customer's text did not reach the agent whole: {value[:80]!r}"
    for message in sent:
        if message.get("caption"):
            assert message["caption"] in everything, "a caption did not reach the agent"
    if script.reason != "bot_unavailable":
        for slot, value in script.collected.items():
            words = (
                cards.CATEGORIES.get(value) or cards.RESOLUTIONS.get(value)
                if slot in ("complaint_category", "desired_resolution")
                else None
            )
            assert value in everything or (words and words in card), f"the collected {slot} did not reach the agent"
    copied = _copied(topic)
    for message in sent:
        if (unique := _unique_id(message)) is not None:
            assert unique in {_unique_id(m) for m in copied} or unique in transcript, (
                f"{unique} neither copied nor listed"
            )
        elif "location" in message:
            place = message["location"]
            assert (
                any(m.get("location") == place for m in copied)
                or f"{place['latitude']:.6f}, {place['longitude']:.6f}" in transcript
            ), "a location neither copied nor listed"
        elif "contact" in message:
            phone = message["contact"]["phone_number"]
            assert any((m.get("contact") or {}).get("phone_number") == phone for m in copied) or phone in transcript, (
                "a contact neither copied nor listed"
            )
    assert len(card) <= 4096, "the card is longer than Telegram allows"
