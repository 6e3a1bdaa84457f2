"""Finding 6 through the real stack on PostgreSQL: a customer who types an email address longer than the ticket's
column can hold is asked for it again, and the complaint still completes (it used to be set aside as failed)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from bot.emulator.client import EmulatorClient
from bot.storage import tickets, transcript
from bot.storage.db import create_engine, create_sessionmaker
from devstack.stack import Stack, running_stack
from tests.e2e.helpers import press, replies_after, variations
from tests.e2e.pgserver import PostgresServer

LONG_EMAIL = "m" * 64 + "@" + "example" * 27 + "d.com"  # 259 characters: the column holds 255
TICKET = re.compile(r"T\d{6}")
TIMEOUT = 60  # one answer, however slow the machine (a bound, not a measure)


@pytest.fixture(scope="module")
def pg_stack(throwaway_postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack on a throwaway PostgreSQL: the app, the action server and Rasa's tracker store."""
    with running_stack(tmp_path_factory.mktemp("pg-stack"), database=throwaway_postgres.url()) as stack:
        yield stack


def _with_buttons(messages: list[dict]) -> dict:
    return next(m for m in reversed(messages) if (m.get("reply_markup") or {}).get("inline_keyboard"))


async def test_a_too_long_email_is_asked_again_and_the_complaint_completes_on_postgresql(pg_stack: Stack) -> None:
    assert pg_stack.database_url.startswith("postgresql")
    async with EmulatorClient(pg_stack.emulator_url) as emulator:
        user = (await emulator.add_user("Maya", user_id=760_001, username="maya_l"))["id"]
        after = (await emulator.sent(user)).last
        await emulator.send_text(user, "my order A12345 arrived two weeks late and I want a refund")
        await replies_after(emulator, user, after, until="email", timeout=TIMEOUT)

        after = (await emulator.sent(user)).last
        await emulator.send_text(user, LONG_EMAIL)
        again = await replies_after(emulator, user, after, timeout=TIMEOUT)
        assert again[0]["text"] in variations("utter_invalid_contact"), again

        after = (await emulator.sent(user)).last
        await emulator.send_text(user, "maya@example.com")
        summary = await replies_after(emulator, user, after, until="A12345", timeout=TIMEOUT)
        assert "maya@example.com" in summary[-1]["text"]
        done = await press(emulator, user, _with_buttons(summary), "Yes, that's right", until="T0", timeout=TIMEOUT)
        reference = TICKET.search(" ".join(m["text"] for m in done))[0]

    engine = create_engine(pg_stack.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            conversation = await session.run_sync(transcript.find_conversation, user)
            [ticket] = await session.run_sync(tickets.for_customer, conversation.customer_id)
    finally:
        await engine.dispose()
    assert (ticket.reference, ticket.contact, ticket.order_number) == (reference, "maya@example.com", "A12345")
