"""Two app instances ("machines") over one database behind one webhook address: nothing a second machine needs lives
in one process. An agent who started with instance A works through instance B; a customer handed to an agent through
one instance is relayed by the other; with A gone, B carries on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import replies
from bot.app import shares_the_webhook
from bot.config import load_settings
from bot.desk import members, texts
from bot.desk.round import ROUND_SECONDS
from bot.storage.models import Handoff, HandoffStatus
from bot.telegram.drain import SWEEP_SECONDS
from bot.telegram.send_share import BEAT
from tests.unit.chat_harness import eventually
from tests.unit.test_desk import ALEX, _handing_over, _last, _new, _press, _queued
from tests.unit.two_apps import PROXY_TIMEOUT, TwoApps, two_apps

A, B = 0, 1
# What B is given after A went: the proxy's wait for A (PROXY_TIMEOUT, should a connection to A hang rather than be
# refused), the inbox's sweep (should B find a chat's lock still held by A's closing connection) and the usual 8 s.
AFTER_FAILOVER = PROXY_TIMEOUT + SWEEP_SECONDS + 8


@pytest.fixture
async def machines(tmp_path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TwoApps]:
    # Neither instance reads the list of desks again after its start: what one learns, the other must find in the
    # database, at once (the periodic refresh would hide a lag of up to REFRESH_SECONDS).
    monkeypatch.setattr(members, "REFRESH_SECONDS", 3600.0)
    async with two_apps(tmp_path) as running:
        running.rasa.answer = _handing_over
        yield running


async def _agent_ready_through(machines: TwoApps, instance: int) -> None:
    machines.pin(instance)
    after = await _last(machines, ALEX)
    await machines.emulator.send_text(ALEX, "/start")
    await _new(machines, ALEX, after, "You're set up as an agent")


async def test_an_agent_who_started_with_a_works_through_b(machines: TwoApps) -> None:
    machines.pin(A)
    card = await _queued(machines)
    await _agent_ready_through(machines, A)
    machines.pin(B)
    customer_start = await _last(machines, 4242)
    await _press(machines, ALEX, card, "Claim")
    await _new(machines, 4242, customer_start, "this is Alex")
    asked = len(machines.rasa.received)
    await machines.emulator.send_text(ALEX, "Hello Maya, I'm on it.")
    reply = (await _new(machines, 4242, customer_start, "I'm on it"))[-1]
    assert reply["text"] == "Alex: Hello Maya, I'm on it."
    assert len(machines.rasa.received) == asked, "the agent's message never went to Rasa as a customer's"
    # The customer's answer, taken by A, reaches the agent's desk; the agent's reply through B reaches the customer.
    machines.pin(A)
    agent_start = await _last(machines, ALEX)
    await machines.emulator.send_text(4242, "thank you!")
    [relayed] = await _new(machines, ALEX, agent_start, "thank you!")
    machines.pin(B)
    customer_seen = await _last(machines, 4242)
    await machines.emulator.send_text(ALEX, "You're welcome.", reply_to_message_id=relayed["message_id"])
    await _new(machines, 4242, customer_seen, "You're welcome.")
    assert machines.proxy.taken[A] and machines.proxy.taken[B]


async def test_with_a_gone_b_finishes_the_conversation_a_started(machines: TwoApps) -> None:
    machines.pin(A)
    card = await _queued(machines)
    await _agent_ready_through(machines, A)
    customer_start = await _last(machines, 4242)
    await _press(machines, ALEX, card, "Claim")
    await _new(machines, 4242, customer_start, "this is Alex")
    await machines.stop(A)  # pinned to A still: the proxy fails over to B
    await machines.emulator.send_text(ALEX, "Your refund is on its way.")
    await machines.new_text(4242, customer_start, "refund is on its way", AFTER_FAILOVER)
    await machines.emulator.send_text(ALEX, "/close")
    await machines.new_text(4242, customer_start, replies.CSAT_QUESTION, AFTER_FAILOVER)
    async with machines.sessions() as session:
        handoff = await session.scalar(select(Handoff))
    assert handoff.status is HandoffStatus.CLOSED


async def test_the_groups_summary_comes_once_a_period_whichever_instance_runs_the_round(
    machines: TwoApps, clock
) -> None:
    """Both instances take turns at the desk's round: an hour on, the group gets one summary, not one from each."""
    clock.freeze()
    machines.pin(None)
    await _queued(machines)  # something open, so the summary is due
    await asyncio.sleep(2 * ROUND_SECONDS)  # each instance has had a round: the summary's period has begun
    group_start = await _last(machines, machines.group_id)
    clock.advance(timedelta(minutes=61))  # SUMMARY_MINUTES (60) have passed
    head = texts.SUMMARY.split("{")[0]
    await _new(machines, machines.group_id, group_start, head)
    await asyncio.sleep(3 * ROUND_SECONDS)  # each instance has had its turns at the round since
    sent = (await machines.emulator.sent(machines.group_id, group_start)).messages
    assert len([m for m in sent if (m.get("text") or "").startswith(head)]) == 1


async def test_a_burst_through_both_machines_keeps_within_the_bots_allowance(tmp_path) -> None:
    """Telegram's 30 messages a second are the bot's, not each machine's: with both sending, each paces itself to
    its share, and Telegram (the emulator, its limits on) refuses none of a burst of answers through both."""
    customers = range(7001, 7046)  # 45 customers, two answers each: 90 messages, three seconds' worth
    async with two_apps(tmp_path) as machines:
        machines.pin(None)  # round robin: each machine takes half the customers' messages
        machines.rasa.answer = lambda body: [{"text": f"1: {body['message']}"}, {"text": f"2: {body['message']}"}]
        for user_id in customers:
            await machines.emulator.add_user(f"Customer {user_id}", user_id=user_id)
        await asyncio.sleep(BEAT * 1.5)  # A, up first, has since learnt of B at a beat of its own
        await asyncio.gather(*(machines.emulator.send_text(user_id, f"hello {user_id}") for user_id in customers))

        async def all_answered() -> bool:
            return len((await machines.emulator.sent()).messages) >= 2 * len(customers)

        assert await eventually(all_answered, True, timeout=60)
        assert machines.proxy.taken[A] and machines.proxy.taken[B]
        for user_id in customers:
            answered = [m["text"] for m in (await machines.emulator.sent(user_id)).messages]
            assert answered == [f"1: hello {user_id}", f"2: hello {user_id}"]
        refused = [call for call in await machines.emulator.calls() if call["status"] == 429]
        assert refused == [], "Telegram (the emulator) refused none of them"


@pytest.mark.parametrize(
    ("env", "shared"),
    [
        ({}, False),  # polling: one poller per bot and database (the lease)
        ({"WEBHOOK_URL": "https://bot.example.com/telegram"}, False),  # SQLite: one machine
        ({"WEBHOOK_URL": "https://bot.example.com/telegram", "DATABASE_URL": "postgresql+asyncpg://db/f"}, True),
        ({"DATABASE_URL": "postgresql+asyncpg://db/f"}, False),
    ],
)
def test_webhook_mode_on_postgresql_takes_the_cross_process_locks(env: dict[str, str], shared: bool) -> None:
    """More machines may stand behind one webhook on one PostgreSQL: each chat's order and single sending must hold
    across them, as across one machine's workers."""
    base = {"FRONTLINE_VAR": "/tmp/unused", "WEBHOOK_SECRET": "a-webhook-secret-0123"}
    assert shares_the_webhook(load_settings(base | env)) is shared
