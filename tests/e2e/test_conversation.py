"""A customer talks to the real stack through the Bot API emulator."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import yaml
from sqlalchemy import select

from bot import replies
from bot.emulator.client import EmulatorClient
from bot.storage import transcript
from bot.storage.models import DeliveryStatus, Direction, InboxStatus, InboxUpdate
from devstack.stack import ROOT, Stack, get_json
from tests.e2e.helpers import last_text, say, variations


def _heldout() -> dict[str, list[str]]:
    data = yaml.safe_load((ROOT / "tests" / "data" / "heldout.yml").read_text())
    return {
        block["intent"]: [line[2:].strip() for line in block["examples"].splitlines() if line.startswith("- ")]
        for block in data["nlu"]
    }


async def test_greeted_by_first_name(emulator: EmulatorClient, customer: dict) -> None:
    expected = variations("utter_greet_name", first_name="Maya")
    messages = await say(emulator, customer["id"], "/start", expect=expected)
    assert last_text(messages) in expected
    messages = await say(emulator, customer["id"], "hey there", expect=expected)
    assert last_text(messages) in expected


async def test_heldout_faq_questions_are_answered(emulator: EmulatorClient, customer: dict) -> None:
    questions = {intent: texts[0] for intent, texts in _heldout().items() if intent.startswith("faq/")}
    assert len(questions) >= 15
    right = 0
    for intent, question in questions.items():
        expected = variations(f"utter_{intent}")
        messages = await say(emulator, customer["id"], question)
        right += last_text(messages) in expected
    assert right / len(questions) >= 0.9, f"{right} of {len(questions)} FAQ questions got the right answer"


def test_heldout_phrasings_are_understood(stack: Stack) -> None:
    total = right = 0
    misses = []
    for intent, texts in _heldout().items():
        for text in texts:
            request = urllib.request.Request(
                stack.rasa_api("/model/parse"), data=json.dumps({"text": text}).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                parsed = json.loads(response.read())
            predicted = parsed["intent"]["name"]
            if predicted == "faq":
                predicted = parsed["response_selector"]["faq"]["response"]["intent_response_key"]
            total += 1
            right += predicted == intent
            if predicted != intent:
                misses.append((text, intent, predicted))
    assert total >= 5 * len(_heldout())
    assert right / total >= 0.9, f"held-out accuracy {right / total:.1%}; misses: {misses}"


async def test_gibberish_gets_a_clarifying_fallback(emulator: EmulatorClient, customer: dict) -> None:
    messages = await say(emulator, customer["id"], "xkq zzvw plonk grtt")
    assert last_text(messages) in variations("utter_default")
    assert messages[-1]["reply_markup"]["inline_keyboard"], "the fallback offers buttons"


async def test_a_button_press_is_understood(emulator: EmulatorClient, customer: dict) -> None:
    messages = await say(emulator, customer["id"], "xkq zzvw plonk grtt")
    button = messages[-1]["reply_markup"]["inline_keyboard"][0][0]
    after = (await emulator.sent(customer["id"])).last
    pressed = await emulator.press(customer["id"], messages[-1]["message_id"], button["callback_data"])
    fallback = variations("utter_default")
    reply = await emulator.wait_for_text(
        customer["id"], after, predicate=lambda t: t.strip() not in fallback, timeout=15
    )
    assert (await emulator.callback_answer(pressed["callback_query_id"]))["answered"]
    assert reply[-1]["method"] == "sendMessage"
    assert last_text(reply) in variations("utter_request_human")
    assert not any(m["method"] == "editMessageReplyMarkup" and m["reply_markup"] for m in reply), (
        "the pressed keyboard is removed"
    )


async def test_a_forged_button_is_refused_and_nothing_reaches_rasa(
    emulator: EmulatorClient, customer: dict, stack: Stack
) -> None:
    messages = await say(emulator, customer["id"], "hello")
    pressed = await emulator.press(customer["id"], messages[-1]["message_id"], '/request_human{"x":1}', forged=True)
    answer = {}
    for _ in range(40):
        answer = await emulator.callback_answer(pressed["callback_query_id"])
        if answer.get("answered"):
            break
        await asyncio.sleep(0.25)
    assert replies.EXPIRED_BUTTON in json.dumps(answer)
    tracker = await asyncio.to_thread(get_json, stack.rasa_api(f"/conversations/tg-{customer['id']}/tracker"))
    user_texts = [e.get("text") for e in tracker["events"] if e["event"] == "user"]
    assert user_texts == ["hello"]


async def test_media_get_polite_answers(emulator: EmulatorClient, customer: dict) -> None:
    # (A photo goes to Rasa, which keeps it for a complaint: see test_complaints.)
    for kind in ("sticker", "voice", "document"):
        after = (await emulator.sent(customer["id"])).last
        await emulator.send_media(customer["id"], kind)
        messages = await emulator.wait_for_text(customer["id"], after, timeout=10)
        assert last_text(messages) == replies.MEDIA[kind]


async def test_a_5000_character_message_is_kept_and_answered(emulator: EmulatorClient, customer: dict, db) -> None:
    text = ("My parcel never arrived and nobody answers. " * 120)[:5000]
    messages = await say(emulator, customer["id"], text)
    assert last_text(messages) == replies.LONG_MESSAGE
    async with db() as session:
        stored = [
            m.text for m in await session.run_sync(transcript.messages, customer["id"]) if m.direction is Direction.IN
        ]
    assert text in stored


async def test_commands_and_intent_syntax_are_not_injected(emulator: EmulatorClient, customer: dict) -> None:
    for text in ('/inform{"x":1}', "/refund", "/greet"):
        messages = await say(emulator, customer["id"], text)
        assert last_text(messages) == replies.UNKNOWN_COMMAND.format(command=text.split("{")[0])
    messages = await say(emulator, customer["id"], "/help")
    assert last_text(messages) == replies.HELP


async def test_an_edited_message_is_answered_anew(emulator: EmulatorClient, customer: dict) -> None:
    sent = await emulator.send_text(customer["id"], "xkq zzvw plonk grtt")
    first = await emulator.wait_for_text(customer["id"], 0, timeout=15)
    after = first[-1]["seq"]
    await emulator.edit(customer["id"], sent["message"]["message_id"], "hi")
    messages = await emulator.wait_for_text(customer["id"], after, timeout=15)
    assert last_text(messages) in variations("utter_greet_name", first_name="Maya")


async def test_every_message_in_and_out_is_stored(emulator: EmulatorClient, customer: dict, db) -> None:
    await say(emulator, customer["id"], "hello")
    messages = await say(emulator, customer["id"], "how much is shipping")
    for _ in range(50):  # the reply reaches Telegram a moment before it is marked sent
        async with db() as session:
            stored = await session.run_sync(transcript.messages, customer["id"])
            updates = list(await session.scalars(select(InboxUpdate).where(InboxUpdate.chat_id == customer["id"])))
        if all(m.status is DeliveryStatus.SENT for m in stored if m.direction is Direction.OUT) and all(
            u.status is InboxStatus.DONE for u in updates
        ):
            break
        await asyncio.sleep(0.1)
    assert [m.text for m in stored if m.direction is Direction.IN] == ["hello", "how much is shipping"]
    outgoing = [m for m in stored if m.direction is Direction.OUT]
    assert outgoing and all(m.status is DeliveryStatus.SENT and m.telegram_message_id for m in outgoing)
    assert outgoing[-1].text == last_text(messages)
    assert len(updates) == 2 and all(u.status is InboxStatus.DONE and u.rasa_sent_at for u in updates)


def test_order_numbers_emails_and_phones_are_extracted(stack: Stack) -> None:
    text = "my order A12345 never came, mail me at dana@example.org or call +44 20 7946 0958"
    request = urllib.request.Request(
        stack.rasa_api("/model/parse"), data=json.dumps({"text": text}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        entities = {(e["entity"], e["value"]) for e in json.loads(response.read())["entities"]}
    assert {("order_number", "A12345"), ("email", "dana@example.org"), ("phone", "+44 20 7946 0958")} <= entities
