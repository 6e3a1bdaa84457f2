"""Processes failing under the customer: they are told the truth, and nothing is lost."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot import replies
from bot.emulator.client import EmulatorClient
from bot.storage import transcript
from bot.storage.models import DeliveryStatus, Direction
from devstack.stack import Stack, get_json
from tests.e2e.helpers import last_text, replies_after, say, variations


@pytest.mark.parametrize(
    ("process", "question", "answer"),
    [
        ("actions", "hello", "utter_greet_name"),  # the greeting needs the action server; Rasa then answers []
        ("rasa", "what are your opening hours", "utter_faq/opening_hours"),
    ],
)
async def test_a_process_down_hands_the_customer_to_a_person_and_the_bot_is_back_after(
    emulator: EmulatorClient, customer: dict, stack: Stack, process: str, question: str, answer: str
) -> None:
    group_start = (await emulator.sent(stack.agent_chat_id)).last
    stack.kill(process)
    try:
        started = time.monotonic()
        messages = await say(emulator, customer["id"], question, timeout=20)
        # (Other tests' customers may be waiting too: the place in line is not fixed here.)
        told = last_text(messages)
        assert told.startswith(replies.HANDOFF_BOT_DOWN + replies.HANDOFF_QUEUED.split("{position}")[0]), told
        assert time.monotonic() - started < 10
    finally:
        getattr(stack, f"start_{process}")()
    cards = await emulator.wait_for_text(
        stack.agent_chat_id,
        group_start,
        timeout=15,
        predicate=lambda t: f"Maya: {question}" in t and "the bot was unavailable" in t,
    )
    assert "🎫 T" in cards[-1]["text"], "the customer's card is in the agents' group"
    messages = await say(emulator, customer["id"], "/cancel")
    assert last_text(messages).startswith("Okay, you've left the queue")
    expected = variations(answer, first_name="Maya")
    messages = await say(emulator, customer["id"], question, expect=expected)
    assert last_text(messages) in expected


@pytest.mark.parametrize(
    ("failpoint", "duplicates"),
    [
        ("after-inbox", 0),  # the message stored, Rasa not asked yet
        (
            "before-record-reply",
            0,
        ),  # Rasa answered, its reply not stored yet: recovered from Rasa's tracker, not asked twice
        ("before-send", 0),  # the reply stored, not sent yet
        ("after-send", 1),  # Telegram has the reply, not yet marked sent: the one place a restart sends it again
    ],
)
async def test_app_killed_mid_message_answers_every_message_after_restart(
    emulator: EmulatorClient, customer: dict, stack: Stack, db, failpoint: str, duplicates: int
) -> None:
    """The app dies (SIGKILL) at each point of a message's way; once restarted, the message is answered, and sent
    twice only when the kill came between sending the reply and recording that it was sent."""
    # Armed for this customer's chat where the point allows it, so no other test's chat sets it off.
    scoped = failpoint in ("before-record-reply", "after-send")
    await _restart_app_with(stack, f"{failpoint}@{customer['id']}" if scoped else failpoint)
    after = (await emulator.sent(customer["id"])).last
    await emulator.send_text(customer["id"], "how long does delivery take")
    stack.processes["app"].wait(timeout=30)
    assert f"failpoint {failpoint} reached" in stack.log("app"), "the app died at the point, not elsewhere"
    stack.start_app()
    expected = variations("utter_faq/delivery_time")
    await replies_after(emulator, customer["id"], after, count=1 + duplicates, timeout=30)
    await _assert_answered_once(db, customer["id"])
    await asyncio.sleep(1)  # room for another copy to show up, if there were one
    sent = [m for m in (await emulator.sent(customer["id"], after)).messages if m["method"] == "sendMessage"]
    assert [m["text"] for m in sent] == [sent[0]["text"]] * (1 + duplicates), "the answer, and a copy only after-send"
    assert sent[0]["text"] in expected


async def _restart_app_with(stack: Stack, failpoint: str) -> None:
    stack.kill("app")
    stack.start_app(FRONTLINE_FAILPOINTS=failpoint)


async def _assert_answered_once(db, chat_id: int) -> None:
    for _ in range(40):  # the reply is marked sent just after Telegram took it
        async with db() as session:
            stored = await session.run_sync(transcript.messages, chat_id)
        if stored[-1].status is not DeliveryStatus.PENDING:
            break
        await asyncio.sleep(0.25)
    assert [m.direction for m in stored] == [Direction.IN, Direction.OUT]
    assert stored[-1].status is DeliveryStatus.SENT


async def test_readiness_reports_each_part(stack: Stack) -> None:
    body = await asyncio.to_thread(get_json, f"http://127.0.0.1:{stack.app_port}/ready")
    assert body == {"ready": True, "checks": {"database": "ok", "rasa": "ok", "telegram": "ok"}}


async def test_the_action_server_is_ready_with_its_database(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.actions_port}/ready"
    body = await asyncio.to_thread(get_json, url, 10, stack.actions_headers)
    help_center = body.pop("help_center")
    assert body == {"ready": True, "checks": {"database": "ok"}, "pending_complaints": 0}
    assert help_center == "loading" or help_center.startswith("ready: ")
