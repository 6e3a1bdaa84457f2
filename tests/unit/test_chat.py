"""The app's customer chat, run whole (intake, handlers, outbox) against the emulator and a scripted Rasa."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import Connection, Engine, event

from bot import logs, replies
from bot.storage import inbox, transcript
from bot.storage.models import DeliveryStatus, Direction
from bot.telegram import typing_action
from tests.unit.chat_harness import Harness, callback_answer, eventually


async def test_text_reaches_rasa_with_the_customer_profile(harness: Harness) -> None:
    messages = await harness.say("where is my parcel")
    assert messages[-1]["text"] == "echo: where is my parcel"
    sent = harness.rasa.received[-1]
    assert sent["sender"] == "tg-4242"
    assert sent["metadata"]["telegram"]["first_name"] == "Maya"
    assert sent["metadata"]["telegram"]["username"] == "maya"
    assert isinstance(sent["metadata"]["update_id"], int)


async def test_start_asks_rasa_to_greet(harness: Harness) -> None:
    await harness.say("/start")
    assert harness.rasa.received[-1]["message"] == "/greet"


async def test_intent_syntax_in_text_is_escaped(harness: Harness) -> None:
    await harness.say('  / /request_human{"x": 1} please')
    assert not harness.rasa.received[-1]["message"].startswith("/")


async def test_empty_rasa_answer_becomes_the_trouble_message(harness: Harness) -> None:
    harness.rasa.answer = lambda body: []
    assert (await harness.say("hello"))[-1]["text"] == replies.TROUBLE


async def test_rasa_error_becomes_the_trouble_message(harness: Harness) -> None:
    harness.rasa.answer = lambda body: web.Response(status=500)
    assert (await harness.say("hello"))[-1]["text"] == replies.TROUBLE


async def test_slow_rasa_is_cut_off_with_the_trouble_message(harness: Harness) -> None:
    async def slow(body: dict) -> list:
        await asyncio.sleep(5)
        return [{"text": "too late"}]

    harness.rasa.answer = slow
    assert (await harness.say("hello", timeout=5))[-1]["text"] == replies.TROUBLE


async def test_typing_is_shown_while_rasa_thinks(harness: Harness, monkeypatch) -> None:
    monkeypatch.setattr(typing_action, "TYPING_AFTER", 0.05)

    async def slow(body: dict) -> list:  # Rasa answers only once "typing…" has been shown (or gives up after 10 s)
        for _ in range(200):
            if await harness.emulator.calls("sendChatAction"):
                break
            await asyncio.sleep(0.05)
        return [{"text": "done"}]

    harness.rasa.answer = slow
    await harness.say("hello")
    actions = await harness.emulator.calls("sendChatAction")
    assert any(str(call["params"].get("action")) == "typing" for call in actions)


async def test_a_quick_answer_comes_without_typing(harness: Harness, monkeypatch) -> None:
    # The threshold is set far beyond any answer's time, so a slow machine cannot make "quick" slow.
    monkeypatch.setattr(typing_action, "TYPING_AFTER", 600.0)
    harness.rasa.answer = lambda body: [{"text": "at once"}]
    assert (await harness.say("hello"))[-1]["text"] == "at once"
    assert await harness.emulator.calls("sendChatAction") == []


async def test_long_reply_is_split_for_telegram(harness: Harness) -> None:
    harness.rasa.answer = lambda body: [{"text": "word " * 1500}]
    after = (await harness.emulator.sent(4242)).last
    await harness.emulator.send_text(4242, "tell me everything")
    await harness.emulator.wait_for_text(4242, after, timeout=5)
    await asyncio.sleep(0.3)
    parts = (await harness.emulator.sent(4242, after)).messages
    assert len(parts) == 2 and all(len(p["text"]) <= 4096 for p in parts)


async def test_buttons_carry_server_side_ids_and_pressing_sends_the_payload(harness: Harness) -> None:
    harness.rasa.answer = lambda body: [
        {"text": "Pick one", "buttons": [{"title": "Talk to a person", "payload": "/request_human"}]}
    ]
    messages = await harness.say("hmm")
    button = messages[-1]["reply_markup"]["inline_keyboard"][0][0]
    assert button["text"] == "Talk to a person"
    assert "request_human" not in button["callback_data"]
    harness.rasa.answer = lambda body: [{"text": "A person will help"}]
    after = (await harness.emulator.sent(4242)).last
    await harness.emulator.press(4242, messages[-1]["message_id"], button["callback_data"])
    await harness.emulator.wait_for_text(4242, after, predicate=lambda t: t == "A person will help", timeout=5)
    assert harness.rasa.received[-1]["message"] == "/request_human"


async def test_forged_button_is_refused_without_asking_rasa(harness: Harness) -> None:
    messages = await harness.say("hello")
    asked = len(harness.rasa.received)
    pressed = await harness.emulator.press(4242, messages[-1]["message_id"], "b:not-issued", forged=True)
    answer = await callback_answer(harness, pressed["callback_query_id"])
    assert replies.EXPIRED_BUTTON in str(answer)
    assert len(harness.rasa.received) == asked


async def test_group_messages_are_ignored(harness: Harness) -> None:
    group = await harness.emulator.add_group("Some group", members=[4242])
    await harness.emulator.send_text(4242, "hello bot", chat_id=group["id"])
    await asyncio.sleep(0.5)
    assert harness.rasa.received == []
    assert (await harness.emulator.sent(group["id"])).messages == []


async def test_reply_survives_a_telegram_outage(harness: Harness) -> None:
    await harness.emulator.set_fault("502", method="sendMessage", count=3)
    messages = await harness.say("hello", timeout=15)
    assert messages[-1]["text"] == "echo: hello"

    async def statuses() -> list[DeliveryStatus]:
        async with harness.sessions() as session:
            return [m.status for m in await session.run_sync(transcript.messages, 4242) if m.direction is Direction.OUT]

    assert await eventually(statuses, [DeliveryStatus.SENT])


async def test_a_handled_update_is_marked_done_and_recorded_once(harness: Harness) -> None:
    await harness.say("hello")

    async def pending() -> list:
        async with harness.sessions() as session:
            return await session.run_sync(inbox.pending)

    assert await eventually(pending, [])
    async with harness.sessions() as session:
        stored = await session.run_sync(transcript.messages, 4242)
    assert [m.direction for m in stored] == [Direction.IN, Direction.OUT]
    assert len(harness.rasa.received) == 1


async def test_a_handoff_payload_is_stored_not_sent(harness: Harness) -> None:
    handoff = {"handoff": {"reason": "customer_request", "ticket_id": None, "collected": {"order_number": "A12345"}}}
    harness.rasa.answer = lambda body: [{"text": "A person will pick this up."}, {"custom": handoff}]
    messages = await harness.say("I want a person")
    assert messages[-1]["text"] == "A person will pick this up."
    async with harness.sessions() as session:
        stored = await session.run_sync(transcript.messages, 4242)
    assert [(m.kind, m.payload) for m in stored if m.kind == "handoff"] == [("handoff", handoff)]
    # No agents' group is configured here: the customer is told so honestly, and the request is kept as a ticket.
    no_desk = replies.HANDOFF_NO_DESK.format(ticket="T000001")
    sent = await harness.emulator.wait_for_text(4242, predicate=lambda text: text == no_desk)
    assert [m["text"] for m in sent] == ["A person will pick this up.", no_desk]
    assert await eventually(lambda: _appended(harness), [("tg-4242", [{"event": "resume"}])]), "Rasa listens again"


async def _send_media(harness: Harness, kind: str, **options) -> list[dict]:
    after = (await harness.emulator.sent(harness.user_id)).last
    await harness.emulator.send_media(harness.user_id, kind, **options)
    return await harness.emulator.wait_for_text(harness.user_id, after)


async def test_a_photo_reaches_rasa_with_its_file_id(harness: Harness) -> None:
    await _send_media(harness, "photo")
    sent = harness.rasa.received[-1]
    assert sent["message"] == "/attach_photo"
    [attachment] = sent["metadata"]["attachments"]
    assert attachment["kind"] == "photo" and attachment["file_id"]


async def test_a_photo_caption_is_the_message_and_the_photo_travels_with_it(harness: Harness) -> None:
    await _send_media(harness, "photo", caption="/greet it arrived smashed")
    sent = harness.rasa.received[-1]
    assert sent["message"] == "greet it arrived smashed"
    assert sent["metadata"]["attachments"][0]["kind"] == "photo"


async def test_an_image_sent_as_a_file_counts_as_a_photo(harness: Harness) -> None:
    await _send_media(harness, "document", file_name="damage.jpg", mime_type="image/jpeg")
    assert harness.rasa.received[-1]["message"] == "/attach_photo"
    asked = len(harness.rasa.received)
    messages = await _send_media(harness, "document", file_name="invoice.pdf", mime_type="application/pdf")
    assert messages[-1]["text"] == replies.MEDIA["document"]
    assert len(harness.rasa.received) == asked, "a PDF is answered by the app, not sent to Rasa"


async def test_other_media_are_answered_by_the_app(harness: Harness) -> None:
    messages = await _send_media(harness, "sticker")
    assert messages[-1]["text"] == replies.MEDIA["sticker"]
    assert harness.rasa.received == []


async def test_a_flooded_chat_does_not_hold_up_the_others(harness: Harness) -> None:
    """Telegram's "retry after" concerns one chat (the busy agents' group, say): other customers are answered meanwhile."""
    await harness.emulator.add_user("Noor", user_id=4343)
    await harness.emulator.set_fault("429", method="sendMessage", chat_id=4242, retry_after=30)
    await harness.emulator.send_text(4242, "hello from a flooded chat")
    await eventually(lambda: _faulted(harness), True)
    await asyncio.sleep(0.5)  # the app has taken in the 429 by now
    await harness.emulator.send_text(4343, "hello")
    replies = await harness.emulator.wait_for_text(4343, timeout=5)
    assert replies[-1]["text"] == "echo: hello"
    async with harness.sessions() as session:
        waiting = [m.text for m in await session.run_sync(transcript.outbox, 4242)]
    assert waiting == ["echo: hello from a flooded chat"], "kept for when the chat may be written to again"


async def _faulted(harness: Harness) -> bool:
    return any(c["status"] == 429 for c in await harness.emulator.calls("sendMessage"))


async def _appended(harness: Harness) -> list:
    return harness.rasa.appended


async def test_a_message_answered_by_rasa_takes_four_transactions(harness: Harness) -> None:
    """Store the update; record it and claim the trip to Rasa; record the reply, mark the update done and read what
    the chat has waiting; mark the reply sent. Each is a round of the app's costliest work per message (make
    bench-profile): one more fails this, a read-only one too."""
    await harness.say("warm up")
    assert await eventually(lambda: _settled(harness), True)
    mine = f"tg-{harness.user_id}"
    begun: list[str] = []
    commits: list[str] = []

    def began(connection: Connection) -> None:
        if logs.conversation_id.get() == mine:  # the chat's own work, not the rounds' nor this test's reads
            begun.append(str(connection.engine.url))

    def committed(connection: Connection) -> None:
        commits.append(str(connection.engine.url))

    event.listen(Engine, "begin", began)
    event.listen(Engine, "commit", committed)
    try:
        await harness.say("where is my parcel")
        assert await eventually(lambda: _settled(harness), True)
    finally:
        event.remove(Engine, "begin", began)
        event.remove(Engine, "commit", committed)
    assert len(commits) == 4, commits
    assert len(begun) == 3, begun  # storing the update is the intake's, before the chat's task has it


async def _settled(harness: Harness) -> bool:
    """Every update handled and every reply delivered."""
    async with harness.sessions() as session:
        return not await session.run_sync(inbox.pending) and not await session.run_sync(transcript.outbox)
