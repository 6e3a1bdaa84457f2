"""Saved replies at the desk, run whole against the emulator: /r lists, sends by name, offers the best three, asks
which customer, and a button sends only to the handoff it was offered for."""

from __future__ import annotations

from sqlalchemy import select

from bot import replies
from bot.desk import texts as desk_texts
from bot.storage import saved_replies, transcript
from bot.storage.desk_models import SavedReply
from bot.storage.models import Direction
from tests.unit.chat_harness import Harness, callback_answer, eventually
from tests.unit.test_desk import ALEX, _claimed, _last, _new, _press, desk  # noqa: F401 (desk: the fixture)

REPLIES = [
    ("Refund sent", "Hi {first_name}, the refund for {ticket} is on its way. {agent}", "Billing"),
    ("Invoice copy", "Here is a copy of your invoice.", "Billing"),
    ("Parcel late", "Sorry {first_name}, your parcel is late.", "Delivery"),
    ("Greeting", "Hello {first_name}!", ""),
]


async def _saved(harness: Harness) -> None:
    async with harness.sessions.begin() as session:
        for name, text, category in REPLIES:
            await session.run_sync(saved_replies.save, "alice", None, name, text, category)


def _titles(message: dict) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


async def _agent_lines(harness: Harness, chat_id: int) -> list[str]:
    async with harness.sessions() as session:
        messages = await session.run_sync(transcript.messages, chat_id)
    return [m.text for m in messages if m.direction is Direction.OUT and m.kind == "agent"]


async def _uses(harness: Harness) -> dict[str, int]:
    async with harness.sessions() as session:
        return {r.name: r.uses for r in (await session.scalars(select(SavedReply))).all()}


async def test_r_lists_by_category_and_a_press_sends_to_the_customer_as_the_agents_message(desk: Harness) -> None:  # noqa: F811
    await _saved(desk)
    async with desk.sessions.begin() as session:
        (await session.scalar(select(SavedReply).where(SavedReply.name == "Invoice copy"))).uses = 3
    await _claimed(desk)
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/r")
    [offer] = await _new(desk, ALEX, agent_start, "Saved replies")
    assert _titles(offer) == [
        "Billing · Invoice copy",
        "Billing · Refund sent",
        "Delivery · Parcel late",
        "Greeting",
    ]
    customer_start = await _last(desk, 4242)
    answer = await _press(desk, ALEX, offer, "Billing · Refund sent")
    assert answer["answer"]["text"] == desk_texts.SAVED_SENT.format(
        name="Refund sent", customer="Maya", ticket="T000001"
    )
    [sent] = await _new(desk, 4242, customer_start, "refund")
    assert sent["text"] == "Alex: Hi Maya, the refund for T000001 is on its way. Alex"
    assert "Alex: Hi Maya, the refund for T000001 is on its way. Alex" in await _agent_lines(desk, 4242)
    assert (await _uses(desk))["Refund sent"] == 1


async def test_r_with_a_name_sends_it_and_with_words_offers_the_best_three_sending_nothing(desk: Harness) -> None:  # noqa: F811
    await _saved(desk)
    await _claimed(desk)
    customer_start, agent_start = await _last(desk, 4242), await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/r greeting")
    [hello] = await _new(desk, 4242, customer_start, "Hello")
    assert hello["text"] == "Alex: Hello Maya!"
    await _new(desk, ALEX, agent_start, "Sent “Greeting” to Maya")
    agent_start, customer_start = await _last(desk, ALEX), await _last(desk, 4242)
    await desk.emulator.send_text(ALEX, "/r billing refund")
    [offer] = await _new(desk, ALEX, agent_start, "best matches")
    assert _titles(offer)[0] == "Billing · Refund sent" and len(_titles(offer)) <= 3
    assert await eventually(lambda: _customer_got(desk, customer_start), [], timeout=1)
    await _press(desk, ALEX, offer, "Billing · Refund sent")
    await _new(desk, 4242, customer_start, "refund for T000001")
    await desk.emulator.send_text(ALEX, "/r zebra")
    await _new(desk, ALEX, offer["seq"], desk_texts.SAVED_NO_MATCH.format(words="zebra"))


async def _customer_got(harness: Harness, after: int) -> list[dict]:
    return (await harness.emulator.sent(4242, after)).messages


async def test_with_two_customers_a_reply_goes_to_the_one_answered_or_the_bot_asks_whom(desk: Harness) -> None:  # noqa: F811
    await _saved(desk)
    await _claimed(desk)
    await desk.emulator.add_user("Noor", user_id=4343)
    group_start = await _last(desk, desk.group_id)
    await desk.emulator.send_text(4343, "I want a person")
    card = next(m for m in await _new(desk, desk.group_id, group_start, "Noor") if "🎫" in m["text"])
    await _press(desk, ALEX, card, "Claim")
    await _new(desk, 4343, 0, "this is Alex")
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/r Greeting")
    [which] = await _new(desk, ALEX, agent_start, "whom is “Greeting” for")
    assert sorted(_titles(which)) == ["Maya · T000001", "Noor · T000002"]
    noor_start, maya_start = await _last(desk, 4343), await _last(desk, 4242)
    await _press(desk, ALEX, which, "Noor · T000002")
    await _new(desk, 4343, noor_start, "Hello Noor!")
    await desk.emulator.send_text(4242, "are you there?")
    [relayed] = await _new(desk, ALEX, which["seq"], "are you there?")
    await desk.emulator.send_text(ALEX, "/r parcel late", reply_to_message_id=relayed["message_id"])
    await _new(desk, 4242, maya_start, "Sorry Maya, your parcel is late.")
    assert not [t for t in await _agent_lines(desk, 4343) if "parcel" in t]
    assert not [t for t in await _agent_lines(desk, 4242) if "Noor" in t]


async def test_a_late_press_after_the_close_sends_nothing(desk: Harness) -> None:  # noqa: F811
    await _saved(desk)
    await _claimed(desk)
    agent_start = await _last(desk, ALEX)
    await desk.emulator.send_text(ALEX, "/r")
    [offer] = await _new(desk, ALEX, agent_start, "Saved replies")
    customer_start = await _last(desk, 4242)
    await desk.emulator.send_text(ALEX, "/close done")
    await _new(desk, 4242, customer_start, "How did we do?")
    await desk.say("I want a person")  # a new handoff for the same customer: the old button must not reach it
    customer_start = await _last(desk, 4242)
    answer = await _press(desk, ALEX, offer, "Greeting")
    assert answer["answer"]["text"] == desk_texts.SAVED_LATE
    assert not [m for m in await _customer_got(desk, customer_start) if "Hello" in (m.get("text") or "")]
    assert (await _uses(desk))["Greeting"] == 0
    forged = await desk.emulator.press(ALEX, offer["message_id"], "b:forged-saved-reply", chat_id=ALEX, forged=True)
    assert (await callback_answer(desk, forged["callback_query_id"]))["answer"]["text"] == replies.EXPIRED_BUTTON
    assert (await _uses(desk))["Greeting"] == 0
