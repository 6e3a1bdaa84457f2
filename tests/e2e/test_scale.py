"""The scale-out mode: PostgreSQL and Redis, two Rasa instances sharing the conversations; one dies mid-run, nothing is lost."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.emulator.client import EmulatorClient
from devstack.stack import Stack, free_port
from tests.conftest import skip_or_fail
from tests.e2e.helpers import variations
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

REDIS = ("127.0.0.1", 6379)
QUESTIONS = [
    ("how long does delivery take", "utter_faq/delivery_time"),
    ("what are your opening hours", "utter_faq/opening_hours"),
    ("how do i return something", "utter_faq/returns_policy"),
    ("can i pay with paypal", "utter_faq/payment_methods"),
]
CUSTOMERS = range(750_001, 750_007)


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not _redis_reachable():
        skip_or_fail(f"Redis is not reachable at {REDIS[0]}:{REDIS[1]}")
    database = asyncio.run(_fresh_postgres_database())
    stack = Stack(
        tmp_path_factory.mktemp("scaled"),
        database=database,
        redis_url="redis://127.0.0.1:6379/5",
        more_rasa_ports=[free_port()],
    )
    try:
        stack.start_emulator()
        stack.start_actions()
        stack.start_app()  # migrates the database first; Rasa then adds its own table beside ours
        stack.start_rasa(0)
        stack.start_rasa(1)
        yield stack
    except (subprocess.SubprocessError, TimeoutError, RuntimeError):
        for name in ("emulator", "actions", "rasa", "rasa1", "app"):
            print(f"--- {name} log ---\n{stack.log(name)}")
        raise
    finally:
        stack.stop()
        asyncio.run(_drop_postgres_database(database))


async def _converse(emulator: EmulatorClient, user: int, kill: asyncio.Event, round_done: asyncio.Event) -> list[str]:
    answers = []
    for number, (question, _) in enumerate(QUESTIONS):
        if number == 2:
            round_done.set()
            await kill.wait()
        after = (await emulator.sent(user)).last
        await emulator.send_text(user, question)
        [reply] = (await emulator.wait_for_text(user, after, timeout=30))[-1:]
        answers.append(reply["text"])
    return answers


async def test_one_rasa_instance_dies_mid_run_and_no_conversation_is_lost(scaled: Stack) -> None:
    async with EmulatorClient(scaled.emulator_url) as emulator:
        for user in CUSTOMERS:
            await emulator.add_user("Sam", user_id=user)
        kill, halfway = asyncio.Event(), [asyncio.Event() for _ in CUSTOMERS]
        talks = [asyncio.create_task(_converse(emulator, user, kill, done)) for user, done in zip(CUSTOMERS, halfway)]

        async def killer() -> None:
            await asyncio.gather(*(done.wait() for done in halfway))
            scaled.kill("rasa")  # the first instance dies; half the conversations were its own
            kill.set()

        _, *answers = await asyncio.gather(killer(), *talks)
    for conversation in answers:
        for answer, (_, response) in zip(conversation, QUESTIONS):
            assert answer in variations(response), f"every message answered by the bot, none lost: {conversation}"
    # Rasa's shared tracker store (in our PostgreSQL) holds each message once, whichever instance took it.
    engine = create_async_engine(scaled.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT sender_id, count(*) FROM events WHERE type_name = 'user' GROUP BY sender_id")
            )
            counts = dict(rows.all())
    finally:
        await engine.dispose()
    assert counts == {f"tg-{user}": len(QUESTIONS) for user in CUSTOMERS}


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Webhook mode with two app workers sharing the port, on PostgreSQL."""
    database = asyncio.run(_fresh_postgres_database())
    stack = Stack(tmp_path_factory.mktemp("workers"), database=database)
    try:
        stack.start_emulator()
        stack.start_actions()
        stack.start_app(
            ready_call="setWebhook",
            APP_WORKERS="2",
            WEBHOOK_SECRET="e2e-webhook-secret-0123",
            WEBHOOK_URL=f"http://127.0.0.1:{stack.app_port}/telegram",
        )
        stack.start_rasa(0)
        yield stack
    except (subprocess.SubprocessError, TimeoutError, RuntimeError):
        for name in ("emulator", "actions", "rasa", "app"):
            print(f"--- {name} log ---\n{stack.log(name)}")
        raise
    finally:
        stack.stop()
        asyncio.run(_drop_postgres_database(database))


async def test_two_workers_share_the_webhook_and_keep_each_chat_in_order(workers: Stack) -> None:
    users = range(760_001, 760_005)
    async with EmulatorClient(workers.emulator_url) as emulator:
        for user in users:
            await emulator.add_user("Kim", user_id=user)
        for _ in range(2):  # every customer fires all questions at once, twice over
            for question, _ in QUESTIONS:
                for user in users:
                    await emulator.send_text(user, question)
        expected = [response for _ in range(2) for _, response in QUESTIONS]
        for user in users:
            replies = await emulator.wait_for_text(user, predicate=_nth_reply(len(expected)), timeout=60)
            texts = [m["text"] for m in replies]
            assert len(texts) == len(expected), texts
            for text_, response in zip(texts, expected):
                assert text_ in variations(response), f"answers come in the order of the questions: {texts}"
    engine = create_async_engine(workers.database_url)
    try:
        for _ in range(40):  # an update is marked handled just after its reply went out
            async with engine.connect() as connection:
                pending = await connection.scalar(text("SELECT count(*) FROM inbox_updates WHERE status = 'PENDING'"))
            if not pending:
                break
            await asyncio.sleep(0.25)
    finally:
        await engine.dispose()
    assert pending == 0
    assert workers.log("app").count("app ready") == 2, "two workers served"
    # Whichever worker answers a scrape, it counts the updates both took.
    asked = len(users) * 2 * len(QUESTIONS)
    for _ in range(6):
        assert _messages_counted(workers) == asked


def _messages_counted(stack: Stack) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.app_port}/metrics", headers={"Authorization": f"Bearer {stack.metrics_token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "frontline_updates_total" and sample.labels.get("kind") == "message"
    )


def _nth_reply(count: int):
    seen = []

    def predicate(_text: str) -> bool:
        seen.append(_text)
        return len(seen) >= count

    return predicate
