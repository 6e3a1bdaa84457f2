"""Property-based fuzzing of every inbound path: whatever Telegram may send, nothing crashes and nothing is stored wrongly.

One app (with the agents' desk) runs against the emulator and a scripted Rasa for the whole module, in an event
loop of its own; hypothesis drives it from plain functions. Updates are queued raw through the emulator's
`POST /_emulator/updates`, so fields can be odd or missing as Telegram's schema allows. Each example uses a
fresh customer, and checks: the update is marked done in the inbox, nothing was logged at ERROR, what is stored
in the transcript is what was sent, and the customer got an answer where one is due.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot import clock, replies
from bot.desk.texts import EDIT_NOT_SENT
from bot.emulator.markup import detect_entities
from bot.emulator.state import DEFAULT_BOT_USERNAME
from bot.storage import transcript
from bot.storage.models import CallbackPayload, DeliveryStatus, Direction, InboxStatus, InboxUpdate, Message
from tests.unit.chat_harness import Harness, running_harness

T = TypeVar("T")
JSON = dict[str, Any]
AGENT = 5151  # a member of the agents' group, registered as an agent (/start) before the examples
OUTSIDER = 5252  # a member of the agents' group who never registered
OTHER_GROUP = -1009999999999  # a group the bot is in that is not the agents'
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
CUSTOMER_COMMANDS = ("start", "help", "tickets", "cancel", "mydata", "forget")
AGENT_COMMANDS = (
    "close",
    "return",
    "note",
    "transfer",
    "promise",
    "promises",
    "kept",
    "queue",
    "help",
    "start",
    "block",
    "unblock",
)
GROUP_COMMANDS = ("queue", "agents", "release")
POLL_SINCE_API_9 = {"allows_revoting": False, "members_only": False}  # required by this PTB (Bot API 9.6, 10.0)
MEDIA = (
    "photo",
    "sticker",
    "voice",
    "video_note",
    "video",
    "audio",
    "document",
    "animation",
    "location",
    "contact",
    "dice",
    "venue",
    "poll",
)


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, from any logger (the app's error handler logs there), logged in one event loop
    (other tests' apps log in theirs)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        try:
            mine = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            mine = False
        # A task of any earlier test, collected now, is reported in whichever loop runs: not this app's (a task of
        # its own that died shows as an update never handled).
        collected = record.name == "asyncio" and record.getMessage().startswith("Task exception was never retrieved")
        if mine and not collected:
            self.records.append(record)

    def take(self) -> list[str]:
        taken = [f"{r.name}: {r.getMessage()}\n{self.format(r) if r.exc_info else ''}" for r in self.records]
        self.records.clear()
        return taken


class World:
    """The app, emulator and scripted Rasa, in an event loop driven from synchronous hypothesis tests."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._running = running_harness(tmp_path, desk=True)
        self.harness: Harness = self.run(self._running.__aenter__())
        self.errors = ErrorLog(self.loop)
        self.errors.setFormatter(logging.Formatter())
        logging.getLogger().addHandler(self.errors)
        self._users = itertools.count(8_000_001)
        self._message_ids = itertools.count(1_000)
        self.broken: str | None = None
        self.run(self._setup())

    def run(self, step: Awaitable[T], timeout: float = 60) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(step, timeout))

    async def _setup(self) -> None:
        emulator = self.harness.emulator
        await emulator.add_group("Elsewhere", members=[AGENT])
        await emulator.set_member(self.harness.group_id, AGENT, admin=True)  # admin commands too
        after = (await emulator.sent(AGENT)).last
        await emulator.send_text(AGENT, "/start")
        await emulator.wait_for_text(AGENT, after, timeout=10)

    def close(self) -> None:
        logging.getLogger().removeHandler(self.errors)
        self.run(self._running.__aexit__(None, None, None))
        self.loop.close()

    async def new_customer(self, first_name: str) -> JSON:
        """A user the emulator knows (so replies can be delivered), with a private chat no one used before."""
        return await self.harness.emulator.add_user(first_name or "X", user_id=next(self._users))

    def message_id(self) -> int:
        return next(self._message_ids)

    async def inject(self, kind: str, payload: JSON) -> int:
        return (await self.harness.emulator.inject_update(kind, payload))["update_id"]

    async def handled(self, update_id: int, timeout: float = 10) -> None:
        """Wait until the inbox marks the update done (fails the example if it never is).

        Once one never is, later examples fail at once (they would only wait in vain), so hypothesis stops soon.
        """
        deadline = time.monotonic() + timeout
        while self.broken is None and time.monotonic() < deadline:
            if self.harness.app.done():
                self.broken = f"the app stopped: {self.harness.app!r}"
                break
            async with self.harness.sessions() as session:
                row = await session.get(InboxUpdate, update_id)
                if row is not None and row.status is InboxStatus.DONE:
                    return
            await asyncio.sleep(0.02)
        if self.broken is None:
            pending = await self.harness.emulator.pending_updates()
            self.broken = (
                f"update {update_id} was never marked done (stored: {row is not None}; not yet fetched "
                f"from Telegram: {[u['update_id'] for u in pending]}; the first: {str(pending[:1])[:3000]})"
            )
        raise AssertionError(self.broken)

    async def rows(self, update_id: int) -> list[Message]:
        async with self.harness.sessions() as session:
            return list(
                await session.scalars(select(Message).where(Message.update_id == update_id).order_by(Message.id))
            )

    async def delivered_replies(self, update_id: int, timeout: float = 15) -> list[Message]:
        """The replies recorded for an update, once none is waiting to be sent."""
        deadline = time.monotonic() + timeout
        while True:
            out = [m for m in await self.rows(update_id) if m.direction is Direction.OUT and m.status is not None]
            if all(m.status is not DeliveryStatus.PENDING for m in out) or time.monotonic() > deadline:
                return out
            await asyncio.sleep(0.02)

    async def calls_since(self, seq: int, method: str) -> list[JSON]:
        return await self.harness.emulator.calls(method=method, after=seq)

    async def delivered_since(self, seq: int, method: str) -> list[JSON]:
        """The calls Telegram accepted: a call it asked to wait (429) and that the bot made again counts once."""
        return [call for call in await self.calls_since(seq, method) if call["status"] == 200]

    async def last_call(self) -> int:
        calls = await self.harness.emulator.calls()
        return calls[-1]["seq"] if calls else 0

    async def stolen_button(self) -> str | None:
        """Callback data really issued, to some other chat: a forger's best guess."""
        async with self.harness.sessions() as session:
            key = await session.scalar(select(CallbackPayload.id).limit(1))
        return None if key is None else f"b:{key}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    running = World(tmp_path_factory.mktemp("fuzz"))
    try:
        yield running
    finally:
        running.close()


# --- what Telegram may send ---------------------------------------------------------------------------------

any_text = st.text(min_size=1, max_size=300)
# Long texts are built from a piece repeated: hypothesis draws short strings far faster than 5000-character ones.
long_text = st.builds(
    lambda piece, times: (piece * times)[:6000], st.text(min_size=1, max_size=8), st.integers(700, 6000)
)
slash_text = any_text.map(lambda text: "/" + text)


def command(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A command (known or made up), maybe addressed @ a bot (this one or another), maybe with arguments."""
    name = st.one_of(st.sampled_from(names), st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True))
    at = st.sampled_from(["", f"@{DEFAULT_BOT_USERNAME}", "@Some_Other_Bot", "@"])
    args = st.one_of(
        st.just(""),
        st.text(max_size=120).map(lambda rest: " " + rest),
        st.sampled_from(
            [
                " T000001",
                " T",
                " T²",
                " T99999999999999999999999",
                " #1",
                " ²",
                " 99999999999999999999",
                " -1",
                " tomorrow 10:00 call back",
                " in 2 hours",
                " 0",
            ]
        ),
    )
    return st.builds(lambda n, a, r: f"/{n}{a}{r}", name, at, args)


def texts(commands: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.one_of(any_text, long_text, slash_text, command(commands))


garbage_entities = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["bot_command", "mention", "url", "bold", "text_link", "custom_emoji", "made_up"]),
            "offset": st.integers(-3, 7000),
            "length": st.integers(-3, 7000),
        }
    ),
    max_size=3,
)


@st.composite
def text_content(draw: st.DrawFn, commands: tuple[str, ...]) -> JSON:
    """A text with the entities Telegram would mark, none, or nonsense ones."""
    text = draw(texts(commands))
    entities = draw(st.one_of(st.just(detect_entities(text, [])), st.just([]), garbage_entities))
    return {"text": text, **({"entities": entities} if entities else {})}


def _file(kind: str, **extra: Any) -> JSON:
    return {"file_id": f"fuzz-{kind}", "file_unique_id": f"u-{kind}", **extra}


@st.composite
def media_content(draw: st.DrawFn) -> JSON:
    kind = draw(st.sampled_from(MEDIA))
    contents: dict[str, Callable[[], JSON]] = {
        "photo": lambda: {"photo": [_file("photo", width=90, height=90), _file("photo", width=800, height=800)]},
        "sticker": lambda: {
            "sticker": _file("sticker", width=512, height=512, is_animated=False, is_video=False, type="regular")
        },
        "voice": lambda: {"voice": _file("voice", duration=draw(st.integers(0, 10_000)))},
        "video_note": lambda: {"video_note": _file("video_note", length=240, duration=3)},
        "video": lambda: {"video": _file("video", width=640, height=480, duration=5)},
        "audio": lambda: {"audio": _file("audio", duration=60)},
        "document": lambda: {
            "document": _file(
                "document",
                **draw(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "file_name": any_text,
                            "mime_type": st.one_of(
                                st.sampled_from(["image/jpeg", "image/", "application/pdf"]), any_text
                            ),
                        },
                    )
                ),
            )
        },
        "animation": lambda: {
            "animation": _file("animation", width=1, height=1, duration=1),
            "document": _file("document", mime_type="video/mp4"),
        },
        "location": lambda: {
            "location": {"latitude": draw(st.floats(-90, 90)), "longitude": draw(st.floats(-180, 180))}
        },
        "contact": lambda: {"contact": {"phone_number": draw(any_text), "first_name": draw(any_text)}},
        "dice": lambda: {"dice": {"emoji": "🎲", "value": 3}},
        "venue": lambda: {"venue": {"location": {"latitude": 1.0, "longitude": 2.0}, "title": "x", "address": "y"}},
        "poll": lambda: {
            "poll": {
                "id": "1",
                "question": "q?",
                "options": [],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                **POLL_SINCE_API_9,
            }
        },
    }
    content = contents[kind]()
    caption = draw(st.one_of(st.none(), any_text, long_text, slash_text))
    if caption is not None and kind not in ("sticker", "location", "contact", "dice", "venue", "poll"):
        content["caption"] = caption
    return content


def user_json(user: JSON) -> JSON:
    return {
        key: user[key]
        for key in ("id", "is_bot", "first_name", "last_name", "username", "language_code")
        if key in user
    }


names = st.text(min_size=1, max_size=70)


@dataclass
class Sent:
    """An injected update and what the checks need to know of it."""

    update_id: int
    kind: str
    content: JSON
    chat_id: int | None


async def send_message(
    world: World, chat: JSON, sender: JSON | None, content: JSON, *, edited: bool = False, thread_id: int | None = None
) -> Sent:
    message: JSON = {"message_id": world.message_id(), "date": int(clock.now().timestamp()), "chat": chat, **content}
    if sender is not None:
        message["from"] = sender
    if thread_id is not None:
        message |= {"message_thread_id": thread_id, "is_topic_message": True}
    if edited:
        message["edit_date"] = int(clock.now().timestamp())
    kind = "edited_message" if edited else "message"
    return Sent(await world.inject(kind, message), kind, content, chat["id"])


def private_chat(user: JSON) -> JSON:
    return {"id": user["id"], "type": "private", "first_name": user["first_name"]}


# --- the checks ---------------------------------------------------------------------------------------------


def is_command(content: JSON) -> bool:
    """Whether Telegram (and so PTB's filters) takes a text for a command: a bot_command entity at its start."""
    entities = content.get("entities") or [{}]
    return "text" in content and entities[0].get("type") == "bot_command" and entities[0].get("offset") == 0


def expected_stored_text(content: JSON) -> str:
    """What the transcript keeps of a customer's message: the whole text, or the whole caption (no clipping)."""
    return transcript.storable(content.get("text", content.get("caption", "")))


async def check_customer_message(world: World, sent: Sent) -> None:
    await world.handled(sent.update_id)
    assert world.errors.take() == []
    rows = await world.rows(sent.update_id)
    incoming = [m for m in rows if m.direction is Direction.IN]
    assert [(m.chat_id, m.text) for m in incoming] == [(sent.chat_id, expected_stored_text(sent.content))]
    answered = await world.delivered_replies(sent.update_id)
    assert answered, "the customer got no answer"
    assert {m.chat_id for m in answered} == {sent.chat_id}
    assert {m.status for m in answered} == {DeliveryStatus.SENT}, [(m.text[:80], m.status) for m in answered]
    text = sent.content.get("text", "")
    if is_command(sent.content) and sent.content["entities"] == detect_entities(text, []):  # as Telegram marks it
        name, _, bot = text[1 : sent.content["entities"][0]["length"]].partition("@")
        if name.lower() not in CUSTOMER_COMMANDS or bot and bot.lower() != DEFAULT_BOT_USERNAME.lower():
            assert answered[0].text.startswith("Sorry, I don't know the command /"), answered[0].text
    elif len(text) > 1000 and not is_command(sent.content):
        assert [m.text for m in answered] == [replies.LONG_MESSAGE]


# --- the properties -----------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_customers_messages_of_any_shape(world: World) -> None:
    @FUZZ
    @given(first_name=names, content=st.one_of(text_content(CUSTOMER_COMMANDS), media_content()), edited=st.booleans())
    def customer_writes(first_name: str, content: JSON, edited: bool) -> None:
        async def example() -> None:
            customer = await world.new_customer(first_name)
            sender = user_json(customer) | {"first_name": first_name}
            await check_customer_message(
                world, await send_message(world, private_chat(customer), sender, content, edited=edited)
            )

        world.run(example())

    customer_writes()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_forged_and_odd_button_presses(world: World) -> None:
    @FUZZ
    @given(
        data=st.one_of(
            st.none(),
            any_text,
            st.text(min_size=65, max_size=400),
            any_text.map(lambda t: "b:" + t),
            st.sampled_from(["app:forget:yes", "desk:claim:1", "b:", "STOLEN"]),
        ),
        with_message=st.booleans(),
        text=st.one_of(st.none(), any_text),
    )
    def customer_presses(data: str | None, with_message: bool, text: str | None) -> None:
        async def example() -> None:
            customer = await world.new_customer("Presser")
            if data == "STOLEN":
                forged = await world.stolen_button()
            else:
                forged = data
            query: JSON = {"id": str(world.message_id()), "from": user_json(customer), "chat_instance": "1"}
            if forged is not None:
                query["data"] = forged
            else:
                query["game_short_name"] = "game"
            if with_message:
                message: JSON = {
                    "message_id": world.message_id(),
                    "date": int(clock.now().timestamp()),
                    "chat": private_chat(customer),
                    "from": {"id": 123456789, "is_bot": True, "first_name": "Bot"},
                }
                query["message"] = message | ({"text": text} if text is not None else {})
            else:
                query["inline_message_id"] = "inline-1"
            before = await world.last_call()
            update_id = await world.inject("callback_query", query)
            await world.handled(update_id)
            assert world.errors.take() == []
            assert await world.rows(update_id) == [], "a refused button stores nothing"
            answers = await world.calls_since(before, "answerCallbackQuery")
            assert [call["params"].get("text") for call in answers] == [replies.EXPIRED_BUTTON]

        world.run(example())

    customer_presses()


@st.composite
def elsewhere(draw: st.DrawFn, world: World) -> tuple[str, JSON, JSON | None, int | None]:
    """Where a message comes from that is not a customer's private chat: (where, chat, sender, topic)."""
    where = draw(st.sampled_from(["agent", "agents-group", "other-group", "channel"]))
    group = world.harness.group_id
    sender = draw(st.sampled_from([AGENT, OUTSIDER, 4242, None]))
    sender_json = None if sender is None else {"id": sender, "is_bot": False, "first_name": draw(names)}
    topic = draw(st.one_of(st.none(), st.integers(1, 10**6)))
    if where == "agent":
        return (
            where,
            {"id": AGENT, "type": "private", "first_name": "Alex"},
            {"id": AGENT, "is_bot": False, "first_name": "Alex"},
            None,
        )
    if where == "agents-group":
        return where, {"id": group, "type": "supergroup", "title": "Agents", "is_forum": True}, sender_json, topic
    if where == "other-group":
        return where, {"id": OTHER_GROUP, "type": "supergroup", "title": "Elsewhere"}, sender_json, None
    return where, {"id": -1001111111111, "type": "channel", "title": "News"}, None, None


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_agents_groups_channels_and_updates_nobody_expects(world: World) -> None:
    every_command = AGENT_COMMANDS + GROUP_COMMANDS + CUSTOMER_COMMANDS

    @FUZZ
    @given(data=st.data(), content=st.one_of(text_content(every_command), media_content()), edited=st.booleans())
    def someone_writes(data: st.DataObject, content: JSON, edited: bool) -> None:
        where, chat, sender, topic = data.draw(elsewhere(world))

        async def example() -> None:
            before = await world.last_call()
            if where == "channel":
                post = {"message_id": world.message_id(), "date": 0, "chat": chat, **content}
                sent = Sent(
                    await world.inject("edited_channel_post" if edited else "channel_post", post), "post", content, None
                )
            else:
                sent = await send_message(world, chat, sender, content, edited=edited, thread_id=topic)
            await world.handled(sent.update_id)
            assert world.errors.take() == []
            stored_in = [m for m in await world.rows(sent.update_id) if m.direction is Direction.IN]
            assert stored_in == [], "nothing from an agent, a group or a channel is stored as a customer's message"
            if where == "other-group" or where == "channel":
                assert await world.calls_since(before, "sendMessage") == [], "the bot keeps out of others' groups"
            if where == "agent" and not edited and is_command(content):
                told = [
                    c
                    for c in await world.calls_since(before, "sendMessage")
                    if str(c["params"]["chat_id"]) == str(AGENT)
                ]
                assert told, "an agent's command is always answered"

        world.run(example())

    someone_writes()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_update_kinds_the_app_has_no_handler_for(world: World) -> None:
    customer = {"id": 4242, "is_bot": False, "first_name": "Maya"}
    chat = {"id": 4242, "type": "private", "first_name": "Maya"}
    member = {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "Bot"}}
    kinds = st.sampled_from(
        [
            (
                "my_chat_member",
                {
                    "chat": chat,
                    "from": customer,
                    "date": 0,
                    "old_chat_member": member,
                    "new_chat_member": {**member, "status": "kicked", "until_date": 0},
                },
            ),
            ("inline_query", {"id": "1", "from": customer, "query": "x" * 300, "offset": ""}),
            (
                "message_reaction",
                {
                    "chat": chat,
                    "message_id": 1,
                    "date": 0,
                    "old_reaction": [],
                    "new_reaction": [{"type": "emoji", "emoji": "👍"}],
                    "user": customer,
                },
            ),
            (
                "poll",
                {
                    "id": "1",
                    "question": "q",
                    "options": [],
                    "total_voter_count": 0,
                    "is_closed": True,
                    "is_anonymous": True,
                    "type": "regular",
                    "allows_multiple_answers": False,
                    **POLL_SINCE_API_9,
                },
            ),
            (
                "edited_channel_post",
                {"message_id": 1, "date": 0, "chat": {"id": -1001111111111, "type": "channel"}, "text": "x"},
            ),
            (
                "chat_join_request",
                {
                    "chat": {"id": -1001, "type": "supergroup", "title": "x"},
                    "from": customer,
                    "user_chat_id": 4242,
                    "date": 0,
                },
            ),
        ]
    )

    @FUZZ
    @given(kind_and_payload=kinds)
    def telegram_sends(kind_and_payload: tuple[str, JSON]) -> None:
        async def example() -> None:
            update_id = await world.inject(*kind_and_payload)
            await world.handled(update_id)
            assert world.errors.take() == []
            assert await world.rows(update_id) == []

        world.run(example())

    telegram_sends()


def text_message(text: str) -> JSON:
    return {"text": text, **({"entities": entities} if (entities := detect_entities(text, [])) else {})}


number_args = st.one_of(
    st.from_regex(r"#?T?[0-9]{1,30}", fullmatch=True),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=12).map(lambda digits: "T" + digits),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=12),
    any_text,
)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_agents_commands_with_any_arguments(world: World) -> None:
    """The desk's commands, in an agent's private chat and as the group's admin, with numbers of every script and size."""
    group = {"id": world.harness.group_id, "type": "supergroup", "title": "Agents", "is_forum": True}
    desk = {"id": AGENT, "type": "private", "first_name": "Alex"}

    @FUZZ
    @given(
        name=st.sampled_from(AGENT_COMMANDS + GROUP_COMMANDS),
        args=number_args,
        in_group=st.booleans(),
        anonymous=st.booleans(),
    )
    # Found by this test: digits Python's isdigit takes but int refuses, numbers beyond a database's integers, and
    # an admin command in the group without a sender (the Bot API's `from` is optional).
    @example(name="kept", args="²", in_group=False, anonymous=False)
    @example(name="kept", args="#99999999999999999999999", in_group=False, anonymous=False)
    @example(name="release", args="T²", in_group=True, anonymous=False)
    @example(name="release", args="T99999999999999999999999", in_group=True, anonymous=False)
    @example(name="agents", args="", in_group=True, anonymous=True)
    @example(name="release", args="T000001", in_group=True, anonymous=True)
    def agent_types(name: str, args: str, in_group: bool, anonymous: bool) -> None:
        async def example() -> None:
            before = await world.last_call()
            sender = None if in_group and anonymous else {"id": AGENT, "is_bot": False, "first_name": "Alex"}
            sent = await send_message(world, group if in_group else desk, sender, text_message(f"/{name} {args}"))
            await world.handled(sent.update_id)
            assert world.errors.take() == []
            assert [m for m in await world.rows(sent.update_id) if m.direction is Direction.IN] == []
            if not in_group or name in GROUP_COMMANDS:
                told = await world.delivered_since(before, "sendMessage")
                assert [str(call["params"]["chat_id"]) for call in told] == [str((group if in_group else desk)["id"])]

        world.run(example())

    agent_types()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_an_agents_edit_stays_at_the_desk(world: World) -> None:
    """Found by the fuzzing above: an agent's edited message went to the customer handlers, and so to Rasa."""
    desk = {"id": AGENT, "type": "private", "first_name": "Alex"}
    sender = {"id": AGENT, "is_bot": False, "first_name": "Alex"}

    async def example() -> None:
        asked = len(world.harness.rasa.received)
        for content in (
            text_message("sorry, I meant the blue one"),
            text_message("/help"),
            {"caption": "x", "photo": [_file("photo", width=1, height=1)]},
        ):
            before = await world.last_call()
            sent = await send_message(world, desk, sender, content, edited=True)
            await world.handled(sent.update_id)
            assert world.errors.take() == []
            assert await world.rows(sent.update_id) == []
            told = await world.delivered_since(before, "sendMessage")
            assert [(call["params"]["chat_id"], call["params"]["text"]) for call in told] == [
                (str(AGENT), EDIT_NOT_SENT)
            ]
        assert len(world.harness.rasa.received) == asked

    world.run(example())


ASK_FOR_A_PERSON = "fuzz: I want a person"


def echo_or_hand_over(body: JSON) -> list[JSON]:
    """The scripted Rasa: a handoff for ASK_FOR_A_PERSON, an echo for anything else."""
    if body["message"] == ASK_FOR_A_PERSON:
        return [{"text": "A person will pick this up."}, {"custom": {"handoff": {"reason": "customer_request"}}}]
    return [{"text": f"echo: {body['message']}"}]


def squeezed(text: str) -> str:
    return "".join(text.split())


async def claimed_customer(world: World) -> JSON:
    """A customer who asked for a person, whose ticket the agent claimed: what they send goes to the agent's chat.

    (Relaying into the agents' group instead would meet its limit of 20 messages a minute, which python-telegram-bot's
    rate limiter enforces by waiting: the examples would take minutes.)
    """
    emulator, group = world.harness.emulator, world.harness.group_id
    customer = await world.new_customer("Waiting")
    group_start, agent_start = (await emulator.sent(group)).last, (await emulator.sent(AGENT)).last
    await world.handled(
        (
            await send_message(world, private_chat(customer), user_json(customer), text_message(ASK_FOR_A_PERSON))
        ).update_id
    )
    # The group may still be working through the earlier examples' answers there (20 messages a minute).
    [*_, card] = await emulator.wait_for_text(
        group, group_start, predicate=lambda text: "Waiting" in text and "🎫" in text, timeout=180
    )
    claim = next(b for row in card["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Claim")
    await emulator.press(AGENT, card["message_id"], claim["callback_data"], chat_id=group)
    await emulator.wait_for_text(
        AGENT, agent_start, predicate=lambda text: "You're now talking with" in text, timeout=15
    )
    assert world.errors.take() == []
    return customer


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_what_a_customer_sends_to_an_agent_reaches_the_agent_whole(world: World) -> None:
    """While a person helps a customer, whatever the customer sends is stored and relayed to them, never to Rasa."""

    @FUZZ
    @example(content={"text": "a\x00b"}, edited=False)  # a NUL: kept as U+FFFD, relayed whole
    @example(content=text_message("/0"), edited=False)  # a command the bot does not have: words for the agent
    @given(
        content=st.one_of(st.builds(text_message, st.one_of(any_text, long_text)), media_content()),
        edited=st.booleans(),
    )
    def customer_writes_to_the_agent(content: JSON, edited: bool) -> None:
        async def example() -> None:
            asked = len(world.harness.rasa.received)
            sent = await send_message(world, private_chat(customer), user_json(customer), content, edited=edited)
            await world.handled(sent.update_id)
            assert world.errors.take() == []
            rows = await world.rows(sent.update_id)
            assert [(m.chat_id, m.text) for m in rows if m.direction is Direction.IN] == [
                (customer["id"], expected_stored_text(content))
            ]
            relayed = [m for m in rows if m.kind == "relay"]
            # An edit goes to the ticket's topic too (the record), marked as edited like the agent's copy.
            assert relayed and {m.chat_id for m in relayed} == ({AGENT, world.harness.group_id} if edited else {AGENT})
            for chat_id in {m.chat_id for m in relayed}:  # the header, on each chat's first part
                first = next(m for m in relayed if m.chat_id == chat_id and m.text)
                assert ("✏️ edited" in first.text.split("\n", 1)[0]) == edited
            relayed = [m for m in relayed if m.chat_id == AGENT]
            if "text" in content:
                assert squeezed("".join(m.text for m in relayed)).endswith(
                    squeezed(transcript.storable(content["text"]))
                ), "nothing cut off"
            assert len(world.harness.rasa.received) == asked, "Rasa stays out of it"

        world.run(example())

    echo = world.harness.rasa.answer
    world.harness.rasa.answer = echo_or_hand_over
    try:
        customer = world.run(claimed_customer(world), timeout=240)
        customer_writes_to_the_agent()
    finally:
        world.harness.rasa.answer = echo
