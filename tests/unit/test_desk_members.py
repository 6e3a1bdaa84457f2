"""Who is an agent, run whole: membership of the agents' group as Telegram tells it (chat_member updates, the
sweep, getChatMember failing), kept in the database and shared by the app's workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, update
from telegram import Update

from bot import replies
from bot.app import serve
from bot.config import load_settings
from bot.desk import members as desk_members
from bot.desk import texts as desk_texts
from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import Agent, Handoff, HandoffStatus
from devstack.stack import free_port
from tests.unit import test_desk
from tests.unit.chat_harness import TOKEN, WEBHOOK_SECRET, Harness, ScriptedRasa
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database
from tests.unit.test_desk import ALEX, BO, _agent_ready, _claimed, _last, _new, _press, _queued

desk = test_desk.desk  # the app with an agents' group (Alex and Bo), and a Rasa that hands over on "I want a person"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
USERS = {ALEX: "Alex", BO: "Bo"}


def _user(user_id: int) -> dict:
    return {"id": user_id, "is_bot": False, "first_name": USERS[user_id]}


async def _removed(harness: Harness, user_id: int, status: str = "left") -> None:
    """Telegram takes `user_id` out of the agents' group and tells the bot with a chat_member update.

    The emulator's set_member does not send that update (yet): the test sends the one Telegram sends.
    """
    await harness.emulator.set_member(harness.group_id, user_id, member=False)
    new = {"status": status, "user": _user(user_id)} | ({"until_date": 0} if status == "kicked" else {})
    await harness.emulator.inject_update(
        "chat_member",
        {
            "chat": {"id": harness.group_id, "type": "supergroup", "title": "Agents", "is_forum": True},
            "from": _user(BO) if status == "kicked" else _user(user_id),
            "date": 1_700_000_000,
            "old_chat_member": {"status": "member", "user": _user(user_id)},
            "new_chat_member": new,
        },
    )


async def _agent(harness: Harness, user_id: int = ALEX) -> Agent:
    async with harness.sessions() as session:
        return await session.scalar(select(Agent).where(Agent.telegram_user_id == user_id))


async def _handoff(harness: Harness) -> Handoff:
    async with harness.sessions() as session:
        return await session.scalar(select(Handoff).order_by(Handoff.id.desc()))


async def _sweep_due(sessions, user_id: int = ALEX) -> None:
    """The agent's membership was last checked long ago: the next sweep asks Telegram."""
    async with sessions.begin() as session:
        await session.execute(
            update(Agent).where(Agent.telegram_user_id == user_id).values(membership_checked_at=LONG_AGO)
        )


@pytest.mark.parametrize(
    ("status", "is_member", "member"),
    [
        ("creator", None, True),
        ("administrator", None, True),
        ("member", None, True),
        ("restricted", True, True),
        ("restricted", False, False),
        ("left", None, False),
        ("kicked", None, False),
        ("something new", None, None),
    ],
)
def test_who_telegram_says_is_in_the_group(status: str, is_member: bool | None, member: bool | None) -> None:
    assert desk_members.member_of(SimpleNamespace(status=status, is_member=is_member)) is member


async def test_an_agent_removed_from_the_group_stops_at_once_and_their_customer_is_requeued(desk: Harness) -> None:
    intro = await _claimed(desk)
    customer_start, group_start, agent_start = (
        await _last(desk, 4242),
        await _last(desk, desk.group_id),
        await _last(desk, ALEX),
    )
    await _removed(desk, ALEX, "kicked")
    [told] = await _new(desk, 4242, customer_start, "next person available", timeout=60)
    assert told["text"] == replies.BACK_IN_QUEUE
    await _new(desk, desk.group_id, group_start, "released T000001 from Alex")
    await _new(desk, ALEX, agent_start, desk_texts.LEFT_THE_GROUP)
    agent = await _agent(desk)
    assert (agent.in_group, agent.private_chat_id) == (False, None)
    handoff = await _handoff(desk)
    assert (handoff.status, handoff.agent_id) == (HandoffStatus.QUEUED, None)
    # Their buttons and their messages do nothing for the customer any more: their chat is a customer's chat.
    answer = await _press(desk, ALEX, intro, "Close")
    assert answer["answer"]["text"] == desk_texts.NOT_AN_AGENT
    assert (await _handoff(desk)).status is HandoffStatus.QUEUED
    customer_seen, after = await _last(desk, 4242), await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "still here?")
    await _new(desk, ALEX, after, "echo: still here?")
    assert not [
        m for m in (await desk.emulator.sent(4242, customer_seen)).messages if "still here" in (m.get("text") or "")
    ]


async def test_no_transfer_to_someone_who_left_the_group(desk: Harness) -> None:
    card = await _queued(desk)
    await _agent_ready(desk, ALEX)
    await _agent_ready(desk, BO)
    bo_start = await _last(desk, BO)
    await _press(desk, BO, card, "Claim")
    [intro] = await _new(desk, BO, bo_start, "You're now talking with Maya")
    await _press(desk, BO, intro, "Transfer")
    [menu] = await _new(desk, BO, intro["seq"], "Pass Maya")
    alex_start = await _last(desk, ALEX)
    await _removed(desk, ALEX)
    await _new(desk, ALEX, alex_start, desk_texts.LEFT_THE_GROUP)
    answer = await _press(desk, BO, menu, "Alex")
    assert answer["answer"]["text"] == "That agent can't take conversations right now."
    handoff, bo = await _handoff(desk), await _agent(desk, BO)
    assert (handoff.status, handoff.agent_id) == (HandoffStatus.CLAIMED, bo.id), "Bo keeps the conversation"


async def test_a_closed_conversation_reopens_in_the_queue_when_its_agent_left(desk: Harness) -> None:
    await _claimed(desk)
    await desk.emulator.send_text(ALEX, "/close replacement sent")
    closing = await _new(desk, 4242, 0, "How did we do?")
    alex_start = await _last(desk, ALEX)
    await _removed(desk, ALEX)
    await _new(desk, ALEX, alex_start, desk_texts.LEFT_THE_GROUP)
    await desk.emulator.send_text(4242, "sorry, one more thing: the box was wet too")
    [back] = await _new(desk, 4242, closing[-1]["seq"], "in line")
    assert back["text"] == replies.HANDOFF_QUEUED.format(position=1, wait=test_desk.FIRST_WAIT)
    assert not [
        m for m in (await desk.emulator.sent(ALEX, alex_start)).messages if "box was wet" in (m.get("text") or "")
    ]
    handoff = await _handoff(desk)
    assert (handoff.reason, handoff.status, handoff.agent_id) == ("reopened", HandoffStatus.QUEUED, None)


async def test_the_sweep_finds_a_removal_telegram_did_not_tell(desk: Harness) -> None:
    await _claimed(desk)
    customer_start, agent_start = await _last(desk, 4242), await _last(desk, ALEX)
    await desk.emulator.set_member(desk.group_id, ALEX, member=False)  # and no chat_member update comes
    await _sweep_due(desk.sessions)
    await _new(desk, 4242, customer_start, "next person available", timeout=60)
    await _new(desk, ALEX, agent_start, desk_texts.LEFT_THE_GROUP)
    assert (await _handoff(desk)).status is HandoffStatus.QUEUED


@pytest.mark.parametrize("fault", ["429", "502", "drop", "slow"])
async def test_telegram_failing_to_say_is_not_leaving(
    desk: Harness, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=desk_members.__name__)
    await _claimed(desk)
    await desk.emulator.set_fault(fault, method="getChatMember", count=-1, delay=7 if fault == "slow" else None)
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(ALEX, "are you still there?")
    await _new(desk, 4242, customer_start, "Alex: are you still there?")
    await _sweep_due(desk.sessions)  # the sweep asks Telegram, which fails
    failed = f"could not check user {ALEX}'s membership"
    assert await _eventually(lambda: any(failed in r.getMessage() for r in caplog.records), timeout=20)
    await desk.emulator.send_text(ALEX, "one more thing")
    relayed = await _new(desk, 4242, customer_start, "Alex: one more thing")
    assert not [m for m in relayed if m.get("text") == replies.BACK_IN_QUEUE]
    agent = await _agent(desk)
    assert (agent.in_group, agent.private_chat_id) == (True, ALEX)
    assert (await _handoff(desk)).status is HandoffStatus.CLAIMED


async def test_a_known_agent_is_set_up_while_telegram_cannot_say(desk: Harness) -> None:
    card = await _queued(desk)
    answer = await _press(desk, ALEX, card, "Claim")  # on record as a member of the group, without a desk yet
    assert answer["answer"]["text"] == desk_texts.START_PRIVATE_FIRST
    await desk.emulator.set_fault("502", method="getChatMember", count=-1)
    await _agent_ready(desk, ALEX)
    assert (await _agent(desk)).private_chat_id == ALEX


async def _eventually(probe, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    return bool(probe())


# --- two workers ---------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _two_workers(tmp_path: Path) -> AsyncIterator[tuple[Harness, str, list[str]]]:
    """Two app workers (APP_WORKERS=2, webhook mode, one PostgreSQL database), each on its own port, so that the test
    says which one Telegram delivers to; yields the harness, the emulator's address and the workers' webhooks."""
    database = await _fresh_postgres_database()
    emulator = EmulatorServer()
    emulator_url = await emulator.start("127.0.0.1", 0)
    rasa = ScriptedRasa()
    rasa_app = web.Application()
    rasa_app.router.add_post("/webhooks/rest/webhook", rasa.webhook)
    rasa_app.router.add_get("/conversations/{sender}/tracker", rasa.tracker)
    rasa_app.router.add_post("/conversations/{sender}/tracker/events", rasa.append_events)
    runner = web.AppRunner(rasa_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rasa_port = site._server.sockets[0].getsockname()[1]
    engine = create_engine(database)
    stops, apps, hooks = [], [], []
    try:
        async with EmulatorClient(emulator_url) as control:
            await control.add_user("Alex", user_id=ALEX)
            group = await control.add_group(
                "Agents",
                is_forum=True,
                members=[ALEX],
                bot_rights={"can_manage_topics": True, "can_delete_messages": True},
            )
            for number in range(2):
                port = free_port()
                hooks.append(f"http://127.0.0.1:{port}/telegram")
                settings = load_settings(
                    {
                        "FRONTLINE_VAR": str(tmp_path / f"worker{number}"),
                        "TELEGRAM_BOT_TOKEN": TOKEN,
                        "TELEGRAM_API_URL": f"{emulator_url}/bot",
                        "RASA_URL": f"http://127.0.0.1:{rasa_port}",
                        "DATABASE_URL": database,
                        "APP_WORKERS": "2",
                        "APP_PORT": str(port),
                        "WEBHOOK_URL": hooks[-1],
                        "WEBHOOK_SECRET": WEBHOOK_SECRET,
                        "AGENT_CHAT_ID": str(group["id"]),
                    }
                )
                stops.append(asyncio.Event())
                apps.append(asyncio.create_task(serve(settings, stops[-1])))
                for _ in range(400):  # one after the other: each sets the webhook to itself once ready
                    if len(await control.calls("setWebhook")) > number:
                        break
                    await asyncio.sleep(0.05)
            yield (
                Harness(control, rasa, create_sessionmaker(engine), user_id=ALEX, group_id=group["id"]),
                emulator_url,
                hooks,
            )
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*(asyncio.wait_for(app, 30) for app in apps), return_exceptions=True)
        await engine.dispose()
        await runner.cleanup()
        await emulator.stop()
        await _drop_postgres_database(database)


async def _deliver_to(emulator_url: str, hook: str) -> None:
    """Telegram delivers the next updates to this worker."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emulator_url}/bot{TOKEN}/setWebhook",
            json={"url": hook, "secret_token": WEBHOOK_SECRET, "allowed_updates": list(Update.ALL_TYPES)},
        ) as response,
    ):
        assert response.status == 200


async def test_two_workers_agree_on_who_is_an_agent(tmp_path: Path) -> None:
    async with _two_workers(tmp_path) as (harness, url, (first, second)):
        await _deliver_to(url, first)
        await _agent_ready(harness, ALEX)  # /start through the first worker
        await _deliver_to(url, second)
        await asyncio.sleep(3 * desk_members.REFRESH_SECONDS)  # the second worker reads the desks again meanwhile
        after = await _last(harness, ALEX)
        await harness.emulator.send_text(ALEX, "hello")
        await _new(harness, ALEX, after, desk_texts.NO_CUSTOMER)
        assert not harness.rasa.received, "an agent's message never reaches the bot"
        # Telegram says Alex left (to whichever worker sweeps): neither worker takes him for an agent any more.
        await harness.emulator.set_member(harness.group_id, ALEX, member=False)
        await _sweep_due(harness.sessions)
        await _new(harness, ALEX, after, desk_texts.LEFT_THE_GROUP, timeout=20)
        await asyncio.sleep(3 * desk_members.REFRESH_SECONDS)
        for hook in (first, second):
            await _deliver_to(url, hook)
            after = await _last(harness, ALEX)
            await harness.emulator.send_text(ALEX, f"hello via {hook}")
            await _new(harness, ALEX, after, f"echo: hello via {hook}")


async def test_a_desk_closed_elsewhere_relays_nothing_before_this_worker_reads_it_again(desk: Harness) -> None:
    await _claimed(desk)
    async with desk.sessions.begin() as session:  # as another worker retires Alex: this one's chat list still has him
        await session.execute(
            update(Agent).where(Agent.telegram_user_id == ALEX).values(in_group=False, private_chat_id=None)
        )
    customer_seen, after = await _last(desk, 4242), await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "still here?")
    [answer] = await _new(desk, ALEX, after, "")
    assert answer["text"] in (desk_texts.NOT_AN_AGENT, "echo: still here?")  # whether or not it read the list again
    assert not [
        m for m in (await desk.emulator.sent(4242, customer_seen)).messages if "still here" in (m.get("text") or "")
    ]


async def test_a_customers_button_pressed_at_what_is_now_a_desk_is_answered_not_an_error(desk: Harness) -> None:
    """Alex wrote to the bot as a customer before becoming an agent: a button of those days, pressed at the desk, is
    no customer's message (nothing reaches Rasa or the transcript) and gets a polite answer."""
    desk.rasa.answer = lambda body: [{"text": "Anything else?", "buttons": [{"title": "Yes", "payload": "/affirm"}]}]
    start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "hello")
    [offered] = await _new(desk, ALEX, start, "Anything else?")
    await _agent_ready(desk, ALEX)
    asked, desk_start = len(desk.rasa.received), await _last(desk, ALEX)
    answer = await _press(desk, ALEX, offered, "Yes")
    assert answer["answer"]["text"] == replies.EXPIRED_BUTTON
    await asyncio.sleep(0.5)  # anything the press set off has happened
    assert len(desk.rasa.received) == asked
    assert (await desk.emulator.sent(ALEX, desk_start)).messages == [], "no error message at the desk"
