"""Finding 6: an email address the form accepted but the database's column could not hold made PostgreSQL refuse
the ticket (a DataError), which was taken for an outage: the complaint was set aside as failed. Now the form takes
no contact longer than its column (an email address is at most 254 characters), and a value the database refuses
is asked for again, with nothing lost. The storing is run on PostgreSQL (the full conversation, through Rasa, is
in tests/e2e/test_long_email.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import actions.tickets
from actions.complaints import is_contact
from actions.pending import PendingComplaints
from actions.tickets import ActionSubmitComplaint
from bot.storage import transcript
from bot.storage.db import create_engine, create_sessionmaker, migrate
from bot.storage.models import Ticket
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database
from tests.unit.test_complaint_actions import DOMAIN, _confirmed, tracker, validate

# 259 characters, every part within what the form's pattern allows (64 before the @, 190 before the last dot).
LONG_EMAIL = "m" * 64 + "@" + "example" * 27 + "d.com"
COLUMN = Ticket.__table__.c.contact.type.length


def test_the_long_email_is_one_the_old_pattern_took_and_the_column_cannot_hold() -> None:
    assert 256 <= len(LONG_EMAIL) <= 280 and COLUMN == 255


@pytest.fixture
async def postgres(monkeypatch: pytest.MonkeyPatch, tmp_path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A fresh PostgreSQL database as the action server's, customer 42 known; complaints set aside go to tmp_path."""
    database_url = await _fresh_postgres_database()
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as session:
            customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=42, first_name="Dana")
            await session.run_sync(transcript.conversation_for_chat, chat_id=42, customer=customer)
        monkeypatch.setattr(actions.tickets, "sessions", lambda: sessions)
        spool = PendingComplaints(tmp_path / "pending")
        monkeypatch.setattr(actions.tickets, "pending", lambda: spool)
        yield sessions
    finally:
        await engine.dispose()
        await _drop_postgres_database(database_url)


async def test_the_form_asks_again_for_an_email_longer_than_the_column() -> None:
    slots, responses = await validate(
        tracker(LONG_EMAIL, "inform", requested="contact", entities=[{"entity": "email", "value": LONG_EMAIL}])
    )
    assert (slots, responses) == ({"contact": None}, ["utter_invalid_contact"])


@given(
    local=st.integers(1, 64),
    domain=st.integers(1, 190),
    tld=st.integers(2, 24),
    letter=st.sampled_from("abcxyz019"),
)
@settings(deadline=None, max_examples=300)
def test_every_email_the_form_takes_fits_its_column_and_only_those_too_long_are_refused(
    local: int, domain: int, tld: int, letter: str
) -> None:
    email = f"{letter * local}@{letter * domain}.{'z' * tld}"
    assert is_contact(email) == (len(email) <= 254)
    assert not is_contact(email) or len(email) <= COLUMN


def _with_contact(update_id: int, contact: str):  # type: ignore[no-untyped-def]
    confirmed = _confirmed(update_id)
    confirmed.slots["contact"] = contact
    return confirmed


async def test_a_value_the_database_refuses_is_asked_again_and_the_complaint_then_completes(
    postgres: async_sessionmaker[AsyncSession], tmp_path
) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, _with_contact(1, LONG_EMAIL), DOMAIN)

    assert [m["response"] for m in dispatcher.messages] == ["utter_invalid_contact"]
    assert SlotSet("contact", None) in events and SlotSet("complaint_confirmed", None) in events
    assert FollowupAction("complaint_form") in events, "the form asks for the contact, then to confirm, again"
    assert SlotSet("complaint_description", None) not in events, "every other detail is kept"
    assert not (tmp_path / "pending").exists() or not list((tmp_path / "pending").iterdir()), "not an outage"

    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, _with_contact(2, "dana@example.org"), DOMAIN)
    # A late parcel made the customer wait: the confirmation keeps its apology for that (actions.tickets.final_apology).
    assert [m["response"] for m in dispatcher.messages] == ["utter_apology_wait", "utter_ticket_created"]
    async with postgres() as session:
        [ticket] = await session.scalars(select(Ticket))
    assert (ticket.contact, ticket.description) == ("dana@example.org", "My parcel is a week late")
