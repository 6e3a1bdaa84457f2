"""Handoff storage on SQLite and PostgreSQL: one at a time per conversation, one winner per claim (the wait
estimate is tested in test_waits.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage import handoffs, tickets, transcript
from bot.storage.models import ConversationState, HandoffStatus, TicketPriority, utcnow


async def _customer(session: AsyncSession, chat_id: int):
    customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=chat_id, first_name=f"C{chat_id}")
    conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=chat_id, customer=customer)
    ticket, _ = await session.run_sync(
        tickets.create,
        idempotency_key=f"k{chat_id}",
        conversation=conversation,
        category="other",
        description="help",
        desired_resolution="talk_to_person",
        priority=TicketPriority.NORMAL,
    )
    return conversation, ticket


async def test_a_conversation_is_queued_once_and_claimed_by_one_agent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        first, ticket1 = await _customer(session, 1)
        second, ticket2 = await _customer(session, 2)
        h1, new1 = await session.run_sync(
            handoffs.open_handoff, conversation=first, ticket=ticket1, reason="customer_request", context={}
        )
        again, new_again = await session.run_sync(
            handoffs.open_handoff, conversation=first, ticket=ticket1, reason="frustration", context={}
        )
        h2, _ = await session.run_sync(
            handoffs.open_handoff, conversation=second, ticket=ticket2, reason="fallbacks", context={}
        )
        h2.queued_at = h1.queued_at + timedelta(seconds=1)
        alex = await session.run_sync(handoffs.agent, telegram_user_id=51, first_name="Alex", username=None)
        bo = await session.run_sync(handoffs.agent, telegram_user_id=52, first_name="Bo", username=None)
    assert (new1, new_again, again.id) == (True, False, h1.id)
    async with sessions.begin() as session:
        assert [await session.run_sync(handoffs.place_in_line, h) for h in (h1, h2)] == [1, 2]
        assert await session.run_sync(handoffs.claim, h1.id, alex)
    async with sessions.begin() as session:
        assert not await session.run_sync(handoffs.claim, h1.id, bo), "the second claim loses"
        assert [h.id for h in await session.run_sync(handoffs.claimed_by, alex.id)] == [h1.id]
        assert await session.run_sync(handoffs.place_in_line, h2) == 1
        conversation = await session.run_sync(transcript.find_conversation, 1)
        assert conversation.state is ConversationState.HUMAN
        handoff = await session.run_sync(handoffs.active_for, conversation.id)
        assert await session.run_sync(
            handoffs.finish, handoff, HandoffStatus.CLOSED, resolution="done", followup_after=timedelta(hours=24)
        )
        assert not await session.run_sync(handoffs.finish, handoff, HandoffStatus.CLOSED)
    async with sessions() as session:
        conversation = await session.run_sync(transcript.find_conversation, 1)
        assert conversation.state is ConversationState.BOT
        assert await session.run_sync(handoffs.due_followups) == []
        assert [h.id for h in await session.run_sync(handoffs.due_followups, utcnow() + timedelta(hours=25))] == [h1.id]


async def test_the_desks_round_learns_in_one_read_what_is_due(sessions) -> None:
    now = utcnow()
    assert await sessions.read(handoffs.due_work, now) == handoffs.DueWork(False, False, False, False)
    async with sessions.begin() as session:
        conversation, ticket = await _customer(session, 1)
    assert await sessions.read(handoffs.due_work, now) == handoffs.DueWork(True, False, False, False)
    async with sessions.begin() as session:
        ticket = await session.merge(ticket)
        ticket.topic_id = 77
        handoff, _ = await session.run_sync(
            handoffs.open_handoff, conversation=conversation, ticket=ticket, reason="x", context={}
        )
        agent = await session.run_sync(handoffs.agent, telegram_user_id=51, first_name="Alex", username=None)
    # A new request opens the customer's unanswered stretch: a holding message may fall due (bot/desk/alerts.py).
    assert await sessions.read(handoffs.due_work, now) == handoffs.DueWork(False, True, False, False, alerts=True)
    async with sessions.begin() as session:
        assert await session.run_sync(handoffs.claim, handoff.id, agent)
        await session.run_sync(
            handoffs.promise,
            ticket=ticket,
            conversation=conversation,
            agent=agent,
            what="call back",
            due_at=now + timedelta(hours=1),
        )
    assert await sessions.read(handoffs.due_work, now) == handoffs.DueWork(False, False, False, False, alerts=True)
    assert await sessions.read(handoffs.due_work, now + timedelta(hours=2)) == handoffs.DueWork(
        False, False, True, False, alerts=True
    )
    async with sessions.begin() as session:
        handoff = await session.run_sync(handoffs.active_for, conversation.id)
        assert await session.run_sync(
            handoffs.finish, handoff, HandoffStatus.CLOSED, followup_after=timedelta(hours=24)
        )
    assert await sessions.read(handoffs.due_work, now + timedelta(hours=25)) == handoffs.DueWork(
        False, False, True, True
    )
