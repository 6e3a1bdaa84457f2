"""Handoff storage on SQLite and PostgreSQL: one at a time per conversation, one winner per claim, honest waits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage import handoffs, tickets, transcript
from bot.storage.models import ConversationState, HandoffStatus, TicketPriority, utcnow


async def _customer(session: AsyncSession, chat_id: int):
    customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=chat_id, first_name=f"C{chat_id}")
    conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=chat_id, customer=customer)
    ticket, _ = await tickets.create(session, idempotency_key=f"k{chat_id}", conversation=conversation, category="other",
                                     description="help", desired_resolution="talk_to_person", priority=TicketPriority.NORMAL)
    return conversation, ticket


async def test_a_conversation_is_queued_once_and_claimed_by_one_agent(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        first, ticket1 = await _customer(session, 1)
        second, ticket2 = await _customer(session, 2)
        h1, new1 = await handoffs.open_handoff(session, conversation=first, ticket=ticket1, reason="customer_request", context={})
        again, new_again = await handoffs.open_handoff(session, conversation=first, ticket=ticket1, reason="frustration", context={})
        h2, _ = await handoffs.open_handoff(session, conversation=second, ticket=ticket2, reason="fallbacks", context={})
        h2.queued_at = h1.queued_at + timedelta(seconds=1)
        alex = await handoffs.agent(session, telegram_user_id=51, first_name="Alex", username=None)
        bo = await handoffs.agent(session, telegram_user_id=52, first_name="Bo", username=None)
    assert (new1, new_again, again.id) == (True, False, h1.id)
    async with sessions.begin() as session:
        assert [await handoffs.place_in_line(session, h) for h in (h1, h2)] == [1, 2]
        assert await handoffs.claim(session, h1.id, alex)
    async with sessions.begin() as session:
        assert not await handoffs.claim(session, h1.id, bo), "the second claim loses"
        assert [h.id for h in await handoffs.claimed_by(session, alex.id)] == [h1.id]
        assert await handoffs.place_in_line(session, h2) == 1
        conversation = await transcript.find_conversation(session, 1)
        assert conversation.state is ConversationState.HUMAN
        handoff = await handoffs.active_for(session, conversation.id)
        assert await handoffs.finish(session, handoff, HandoffStatus.CLOSED, resolution="done", followup_after=timedelta(hours=24))
        assert not await handoffs.finish(session, handoff, HandoffStatus.CLOSED)
    async with sessions() as session:
        conversation = await transcript.find_conversation(session, 1)
        assert conversation.state is ConversationState.BOT
        assert await handoffs.due_followups(session) == []
        assert [h.id for h in await handoffs.due_followups(session, utcnow() + timedelta(hours=25))] == [h1.id]


async def test_the_wait_estimate_needs_history_and_is_the_median(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        assert await handoffs.typical_wait(session) is None
        agent = await handoffs.agent(session, telegram_user_id=51, first_name="Alex", username=None)
        for chat_id, minutes in ((1, 2), (2, 4), (3, 30)):
            conversation, ticket = await _customer(session, chat_id)
            handoff, _ = await handoffs.open_handoff(session, conversation=conversation, ticket=ticket, reason="x", context={})
            handoff.queued_at = utcnow() - timedelta(minutes=minutes)
            await session.flush()
            assert await handoffs.claim(session, handoff.id, agent)
    async with sessions() as session:
        wait = await handoffs.typical_wait(session)
    assert timedelta(minutes=3.9) < wait < timedelta(minutes=4.1)


async def test_the_desks_round_learns_in_one_read_what_is_due(sessions) -> None:
    now = utcnow()
    assert await sessions.read(handoffs.due_work, now) == handoffs.DueWork(False, False, False, False)
    async with sessions.begin() as session:
        conversation, ticket = await _customer(session, 1)
    assert await sessions.read(handoffs.due_work, now) == handoffs.DueWork(True, False, False, False)
    async with sessions.begin() as session:
        ticket = await session.merge(ticket)
        ticket.topic_id = 77
        handoff, _ = await handoffs.open_handoff(session, conversation=conversation, ticket=ticket, reason="x", context={})
        agent = await handoffs.agent(session, telegram_user_id=51, first_name="Alex", username=None)
    assert await sessions.read(handoffs.due_work, now) == handoffs.DueWork(False, True, False, False)
    async with sessions.begin() as session:
        assert await handoffs.claim(session, handoff.id, agent)
        await handoffs.promise(session, ticket=ticket, conversation=conversation, agent=agent, what="call back",
                               due_at=now + timedelta(hours=1))
    assert await sessions.read(handoffs.due_work, now) == handoffs.DueWork(False, False, False, False)
    assert await sessions.read(handoffs.due_work, now + timedelta(hours=2)) == handoffs.DueWork(False, False, True, False)
    async with sessions.begin() as session:
        handoff = await handoffs.active_for(session, conversation.id)
        assert await handoffs.finish(session, handoff, HandoffStatus.CLOSED, followup_after=timedelta(hours=24))
    assert await sessions.read(handoffs.due_work, now + timedelta(hours=25)) == handoffs.DueWork(False, False, True, True)
