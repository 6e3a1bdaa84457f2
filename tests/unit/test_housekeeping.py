"""The round's housekeeping: handled updates leave the inbox after INBOX_KEEP_DAYS, and with RETENTION_DAYS a
customer idle that long with nothing open is forgotten (transcript deleted, tickets anonymised); nothing else goes.

Through the app: a first run records the conversations, their rows are then dated back to 2020 (and the round's
housekeeping mark with them: the first run's housekeeping was long ago too), and the round of a second run on the
same database does the housekeeping. The boundaries, at a `now` of the test's choosing, are
in test_housekeeping_boundaries.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from bot.desk.round import HOUSEKEEPING
from bot.storage import privacy, round_marks, tickets, transcript
from bot.storage.models import (
    Conversation,
    Customer,
    InboxStatus,
    InboxUpdate,
    Message,
    Ticket,
    TicketPriority,
    TicketStatus,
)
from tests.unit.chat_harness import Harness, eventually, running_harness
from tests.unit.stored_rows import traces

LONG_AGO = datetime(2020, 1, 6, 12, 0, tzinfo=UTC)
MAYA, NOOR, SAM = 4242, 4343, 4444


async def _updates(harness: Harness) -> dict[int, tuple[InboxStatus, str]]:
    """Update id → (status, the text it brought), for every update the inbox holds."""
    async with harness.sessions() as session:
        rows = await session.scalars(select(InboxUpdate).order_by(InboxUpdate.update_id))
        return {r.update_id: (r.status, (r.payload.get("message") or {}).get("text", "")) for r in rows}


async def _date_back(harness: Harness, user: int) -> None:
    """Everything of one customer, as if it happened in 2020."""
    async with harness.sessions.begin() as session:
        conversation = await session.run_sync(transcript.find_conversation, user)
        for model, where in (
            (Message, Message.conversation_id == conversation.id),
            (Conversation, Conversation.id == conversation.id),
            (Customer, Customer.id == conversation.customer_id),
            (Ticket, Ticket.customer_id == conversation.customer_id),
        ):
            await session.execute(
                update(model).where(where).values(created_at=LONG_AGO, updated_at=LONG_AGO),
                execution_options={"synchronize_session": False},
            )


async def _housekeeping_due(harness: Harness) -> None:
    """The round's housekeeping is due again (marks are shared through the database: a restart alone is not)."""
    await harness.sessions.run(round_marks.clear, HOUSEKEEPING)


async def _ticket(harness: Harness, user: int, status: TicketStatus) -> None:
    async with harness.sessions.begin() as session:
        conversation = await session.run_sync(transcript.find_conversation, user)
        ticket, _ = await session.run_sync(
            tickets.create,
            idempotency_key=f"tg-{user}:1",
            conversation=conversation,
            category="delivery",
            description=f"parcel {user} never came, write to me at {user}@example.com",
            desired_resolution="refund",
            priority=TicketPriority.NORMAL,
            contact=f"{user}@example.com",
        )
        ticket.status = status


async def test_the_round_deletes_only_the_updates_handled_more_than_inbox_keep_days_ago(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as first:
        await first.say("hello from long ago")
        await first.say("hello from today")
        assert await eventually(lambda: _n_done(first), 2)
        by_text = {text: update_id for update_id, (_, text) in (await _updates(first)).items()}
        async with first.sessions.begin() as session:
            await session.execute(
                update(InboxUpdate)
                .where(InboxUpdate.update_id == by_text["hello from long ago"])
                .values(processed_at=LONG_AGO)
            )
        await _housekeeping_due(first)
    async with running_harness(tmp_path) as second:

        async def left() -> list[str]:
            return [text for _, text in (await _updates(second)).values()]

        assert await eventually(left, ["hello from today"]), await left()
        async with second.sessions() as session:
            said = [m.text for m in await session.run_sync(transcript.messages, MAYA)]
        assert "hello from long ago" in said, "the transcript stays: only the raw update goes"


async def _n_done(harness: Harness) -> int:
    return sum(status is InboxStatus.DONE for status, _ in (await _updates(harness)).values())


async def test_with_retention_days_the_round_forgets_only_customers_idle_longer_with_nothing_open(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path) as first:
        for user, name in ((NOOR, "Noor"), (SAM, "Sam")):
            await first.emulator.add_user(name, user_id=user)
        for user in (MAYA, NOOR, SAM):
            after = (await first.emulator.sent(user)).last
            await first.emulator.send_text(user, f"zebra question {user}")
            await first.emulator.wait_for_text(user, after)
        await _ticket(first, MAYA, TicketStatus.RESOLVED)  # closed long ago: goes
        await _ticket(first, NOOR, TicketStatus.OPEN)  # idle as long, but still open: stays
        await _date_back(first, MAYA)
        await _date_back(first, NOOR)  # Sam wrote today: stays
        await _housekeeping_due(first)
    async with running_harness(tmp_path, RETENTION_DAYS="30") as second:

        async def customers() -> list[int]:
            async with second.sessions() as session:
                return sorted(await session.scalars(select(Customer.telegram_user_id)))

        assert await eventually(customers, [NOOR, SAM]), await customers()
        async with second.sessions() as session:
            left = await session.run_sync(traces, (str(MAYA), "zebra question 4242"), (MAYA,))
            stored = list(await session.scalars(select(Ticket).order_by(Ticket.id)))
            noor = [m.text for m in await session.run_sync(transcript.messages, NOOR)]
        assert left == []
        assert [(t.description, t.contact, t.customer_id) for t in stored if t.status is TicketStatus.RESOLVED] == [
            (privacy.EXPIRED_DESCRIPTION, None, None)
        ]
        assert "zebra question 4343" in noor


async def test_without_retention_days_nothing_is_forgotten_however_old(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as first:
        await first.say("an old question")
        await _date_back(first, MAYA)
        async with first.sessions.begin() as session:  # (its update's going shows the round has run)
            await session.execute(update(InboxUpdate).values(processed_at=LONG_AGO))
        await _housekeeping_due(first)
    async with running_harness(tmp_path) as second:
        assert await eventually(lambda: _updates(second), {})
        async with second.sessions() as session:
            said = [m.text for m in await session.run_sync(transcript.messages, MAYA)]
        assert "an old question" in said
