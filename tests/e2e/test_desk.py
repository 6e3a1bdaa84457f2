"""A person through the real stack: Rasa decides a person is needed, the desk queues, an agent claims, talks, closes."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot import replies
from bot.emulator.client import EmulatorClient
from bot.storage import transcript
from bot.storage.models import ConversationState, Handoff, HandoffStatus
from devstack.stack import AGENT_ID, Stack, get_json
from tests.e2e.helpers import replies_after, say, variations


async def _texts_until(
    emulator: EmulatorClient, chat_id: int, after: int, needle: str, timeout: float = 20
) -> list[dict]:
    return await emulator.wait_for_text(chat_id, after, predicate=lambda t: needle in t, timeout=timeout)


def _button(message: dict, title: str) -> str:
    return next(
        b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row if b["text"] == title
    )


async def test_a_customer_reaches_a_person_and_back_without_repeating_themselves(
    stack: Stack, emulator: EmulatorClient, customer: dict, db
) -> None:
    user = customer["id"]
    group_start = (await emulator.sent(stack.agent_chat_id)).last
    await say(emulator, user, "where is my parcel, order A12345?")
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "I want to talk to a real person please")
    queued = await replies_after(emulator, user, after, until="in line")
    assert queued[-1]["text"].startswith("I've asked a person from our team")

    # The card in the ticket's topic carries the reason, what the customer said and what Rasa understood.
    # (The card that quotes this customer's words: other tests' tickets may be announced meanwhile.)
    card = (
        await emulator.wait_for_text(
            stack.agent_chat_id,
            group_start,
            timeout=20,
            predicate=lambda t: "🎫" in t and "where is my parcel, order A12345?" in t,
        )
    )[-1]
    assert "asked for a person" in card["text"] and "order A12345" in card["text"]
    assert "request_human" in card["text"], "the intents Rasa detected are on the card"

    # While waiting, the bot is silent and the customer's words reach the topic.
    await emulator.send_text(user, "it was due last Monday")
    await _texts_until(emulator, stack.agent_chat_id, card["seq"], "it was due last Monday")

    # The agent starts their private chat, claims, and the conversation runs there.
    await emulator.send_text(AGENT_ID, "/start")
    await _texts_until(emulator, AGENT_ID, 0, "You're set up as an agent")
    customer_start = (await emulator.sent(user)).last
    agent_start = (await emulator.sent(AGENT_ID)).last
    await emulator.press(AGENT_ID, card["message_id"], _button(card, "Claim"), chat_id=stack.agent_chat_id)
    await _texts_until(emulator, user, customer_start, "this is Alex")
    await _texts_until(emulator, AGENT_ID, agent_start, "You're now talking with Maya")
    await emulator.send_text(user, "thanks for picking this up")
    relayed = await _texts_until(emulator, AGENT_ID, agent_start, "thanks for picking this up")
    customer_start = (await emulator.sent(user)).last
    await emulator.send_text(
        AGENT_ID, "Your parcel is at the depot; it arrives tomorrow.", reply_to_message_id=relayed[-1]["message_id"]
    )
    await _texts_until(emulator, user, customer_start, "Alex: Your parcel is at the depot")

    # Close: rating, the bot back in charge with a fresh tracker.
    await emulator.send_text(AGENT_ID, "/close parcel located")
    survey = await _texts_until(emulator, user, customer_start, "How did we do?")
    await emulator.press(user, survey[-1]["message_id"], _button(survey[-1], "4"))
    await _texts_until(emulator, user, survey[-1]["seq"], "rating us 4 out of 5")
    tracker = await asyncio.to_thread(get_json, stack.rasa_api(f"/conversations/tg-{user}/tracker"))
    assert not tracker.get("paused"), "Rasa listens again"
    async with db() as session:
        conversation = await session.run_sync(transcript.find_conversation, user)
        [handoff] = (await session.scalars(select(Handoff).where(Handoff.conversation_id == conversation.id))).all()
    assert handoff.status is HandoffStatus.CLOSED
    assert (handoff.reason, handoff.csat, handoff.resolution) == ("customer_request", 4, "parcel located")
    assert handoff.claimed_at and handoff.first_reply_at and handoff.closed_at
    assert conversation.state is ConversationState.CLOSED, "the next text is the rating's comment"
    messages = await say(emulator, user, "great service")
    assert messages[-1]["text"] == replies.CSAT_COMMENT_THANKS
    expected = variations("utter_faq/opening_hours")
    messages = await say(emulator, user, "what are your opening hours", expect=expected)
    assert messages[-1]["text"] in expected


async def test_a_long_complaint_and_a_voice_note_reach_the_agent_whole(
    stack: Stack, emulator: EmulatorClient, customer: dict
) -> None:
    user = customer["id"]
    group_start = (await emulator.sent(stack.agent_chat_id)).last
    story = " ".join(f"Day {n}: the courier said the parcel was on its way, and it was not." for n in range(1, 60))[
        :3000
    ]
    await say(emulator, user, story)
    after = (await emulator.sent(user)).last
    voice = (await emulator.send_media(user, "voice", content=b"OggS a voice note about the parcel"))["message"][
        "voice"
    ]
    await replies_after(emulator, user, after)
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "I want to talk to a real person please")
    await replies_after(emulator, user, after, until="in line")

    card = (
        await emulator.wait_for_text(
            stack.agent_chat_id, group_start, timeout=30, predicate=lambda t: "🎫" in t and "Day 1:" in t
        )
    )[-1]
    topic = card["message_thread_id"]

    async def in_topic() -> list[dict]:
        return [
            m
            for m in (await emulator.sent(stack.agent_chat_id, card["seq"] - 1)).messages
            if m.get("message_thread_id") == topic
        ]

    # The voice note is copied after the card; the group's pace keeps part of each minute for cards, so in a group
    # busy with the other tests' tickets the copy may wait up to a minute.
    for _ in range(1200):
        copies = [m["message"] for m in await in_topic() if "voice" in m.get("message", {})]
        if copies:
            break
        await asyncio.sleep(0.1)
    assert [m["voice"]["file_unique_id"] for m in copies] == [voice["file_unique_id"]]
    # A card that could not hold everything says so, and the complete transcript follows the copies, at the same pace.
    documents: list[dict] = []
    for _ in range(1200 if "Shortened to fit one message" in card["text"] else 0):
        documents = [m["message"]["document"] for m in await in_topic() if "document" in m.get("message", {})]
        if documents:
            break
        await asyncio.sleep(0.1)
    attached = "".join([(await emulator.file_content(d["file_id"])).decode() for d in documents])
    assert story in card["text"] + attached, "the customer's 3,000 characters reach the agent, not a clipped line"


async def test_an_online_agent_is_offered_the_card_in_private_and_claims_it_there(
    stack: Stack, emulator: EmulatorClient, customer: dict
) -> None:
    """/online: a request Rasa hands over comes to the agent's private chat at once, with Claim, not only to the
    group's topic; the claim there introduces the customer, once."""
    user = customer["id"]
    await emulator.send_text(AGENT_ID, "/start")
    await _texts_until(emulator, AGENT_ID, 0, "You're set up as an agent")
    agent_start = (await emulator.sent(AGENT_ID)).last
    await emulator.send_text(AGENT_ID, "/online")
    await _texts_until(emulator, AGENT_ID, agent_start, "You're online")
    try:
        await say(emulator, user, "my order B77001 has not arrived")
        agent_start, customer_start = (await emulator.sent(AGENT_ID)).last, (await emulator.sent(user)).last
        await emulator.send_text(user, "I want to talk to a real person please")
        offered = (
            await emulator.wait_for_text(
                AGENT_ID, agent_start, timeout=20, predicate=lambda t: "🎫" in t and "B77001" in t and "Claim" in t
            )
        )[-1]
        pressed = await emulator.press(AGENT_ID, offered["message_id"], _button(offered, "Claim"), chat_id=AGENT_ID)
        await _texts_until(emulator, user, customer_start, "this is Alex")
        await _texts_until(emulator, AGENT_ID, offered["seq"], "You're now talking with")
        for _ in range(50):  # the press is answered once the claim's step has run
            if (await emulator.callback_answer(pressed["callback_query_id"]))["answered"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the Claim press was never answered")
        told = [m["text"] for m in (await emulator.sent(user, customer_start)).messages if m.get("text")]
        assert sum("this is Alex" in t for t in told) == 1, "introduced once"
        await emulator.send_text(AGENT_ID, "/close sorted")
        await _texts_until(emulator, user, customer_start, "How did we do?")
    finally:
        await emulator.send_text(AGENT_ID, "/away")
        await _texts_until(emulator, AGENT_ID, agent_start, "You're away")
