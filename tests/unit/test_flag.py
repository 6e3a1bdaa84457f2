"""Agents flag a wrong answer of the bot (/flag), run whole: the app against the emulator's agents' group."""

from __future__ import annotations

from sqlalchemy import select

from bot.desk import insights as desk_insights
from bot.storage.desk_models import Flag
from bot.storage.models import Agent, Message
from tests.unit import test_desk
from tests.unit.chat_harness import Harness
from tests.unit.test_desk import ALEX, BO, _agent_ready, _claimed, _last, _new, _press, _queued

desk = test_desk.desk  # the app with an agents' group, and a Rasa that hands over on "I want a person"
ANSWER = "echo: how long does delivery take"
FLAGGED = desk_insights.FLAGGED.format(ticket="T000001", question="how long does delivery take", answer=ANSWER)


async def _asked_then_handed_over(harness: Harness) -> None:
    """Maya asked a question the bot answered wrongly, then asked for a person."""
    [answer] = await harness.say("how long does delivery take")
    assert answer["text"] == ANSWER


async def _flags(harness: Harness) -> list[tuple[str, str, str]]:
    async with harness.sessions() as session:
        flags = (await session.scalars(select(Flag).order_by(Flag.id))).all()
        return [
            ((await session.get(Agent, f.agent_id)).first_name, (await session.get(Message, f.message_id)).text, f.note)
            for f in flags
        ]


async def test_the_agent_flags_the_answer_of_the_customer_they_help(desk: Harness) -> None:
    await _asked_then_handed_over(desk)
    await _claimed(desk)
    agent_start, customer_start = await _last(desk, ALEX), await _last(desk, 4242)
    await desk.emulator.send_text(ALEX, "/flag she asked about delivery, it answered about returns")
    [told] = await _new(desk, ALEX, agent_start, "Flagged")
    assert told["text"] == FLAGGED
    assert await _flags(desk) == [("Alex", ANSWER, "she asked about delivery, it answered about returns")]
    assert not (await desk.emulator.sent(4242, customer_start)).messages, "the customer sees nothing of it"


async def test_a_flag_by_number_in_the_ticket_topic_or_as_a_reply(desk: Harness) -> None:
    await _asked_then_handed_over(desk)
    card = await _queued(desk)
    group_start = await _last(desk, desk.group_id)
    await desk.emulator.send_text(
        BO, "/flag wrong answer", chat_id=desk.group_id, message_thread_id=card["message_thread_id"]
    )
    [told] = await _new(desk, desk.group_id, group_start, "Flagged")
    assert told["text"] == FLAGGED and told["message_thread_id"] == card["message_thread_id"], "answered in the topic"
    await desk.emulator.send_text(BO, "/flag T000001 quoted returns", chat_id=desk.group_id)
    [again] = await _new(desk, desk.group_id, told["seq"], "Flagged on T000001")
    await desk.emulator.send_text(BO, "/flag T000042 no such ticket", chat_id=desk.group_id)
    [usage] = await _new(desk, desk.group_id, again["seq"], "Usage")
    assert usage["text"] == desk_insights.FLAG_USAGE
    await _agent_ready(desk)
    await desk.emulator.send_text(ALEX, "/flag nobody is mine")
    await _new(desk, ALEX, 0, desk_insights.FLAG_USAGE)
    assert await _flags(desk) == [("Bo", ANSWER, "wrong answer"), ("Bo", ANSWER, "quoted returns")]


async def test_a_flag_in_reply_to_a_relayed_message_is_for_that_customer(desk: Harness) -> None:
    await _asked_then_handed_over(desk)
    await _claimed(desk)
    await desk.emulator.add_user("Noor", user_id=4343)
    group_start = await _last(desk, desk.group_id)
    await desk.emulator.send_text(4343, "I want a person")
    card = next(m for m in await _new(desk, desk.group_id, group_start, "Noor") if "🎫" in m["text"])
    await _press(desk, ALEX, card, "Claim")
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(4242, "are you there?")
    [relayed] = await _new(desk, ALEX, agent_start, "are you there?")
    await desk.emulator.send_text(ALEX, "/flag it got delivery wrong")
    [which] = await _new(desk, ALEX, relayed["seq"], "Usage")
    await desk.emulator.send_text(ALEX, "/flag it got delivery wrong", reply_to_message_id=relayed["message_id"])
    [told] = await _new(desk, ALEX, which["seq"], "Flagged")
    assert told["text"] == FLAGGED
    assert await _flags(desk) == [("Alex", ANSWER, "it got delivery wrong")]


async def test_nothing_to_flag_when_the_bot_said_nothing_first(desk: Harness) -> None:
    await _claimed(desk)
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/flag T000001 hm")
    [told] = await _new(desk, ALEX, agent_start, "nothing to flag")
    assert told["text"] == desk_insights.NOTHING_TO_FLAG.format(ticket="T000001")
    assert await _flags(desk) == []


async def test_the_agents_help_tells_of_flag(desk: Harness) -> None:
    await _agent_ready(desk)
    welcome = [m["text"] for m in (await desk.emulator.sent(ALEX)).messages if "You're set up" in (m.get("text") or "")]
    assert welcome and "/flag <what was wrong>" in welcome[0]
