"""bench/customers.py's wait for an answer, against a real in-process emulator: an acknowledgement or the follow-up
never ends a step's latency, the expected answer does, and a bot-down handoff stops the customer."""

from __future__ import annotations

from telegram import Bot

from bench.answers import Step, domain_responses
from bench.customers import await_answer
from bot.emulator.client import EmulatorClient
from bot.replies import HANDOFF_BOT_DOWN

QUESTION = Step("how long does shipping take", "faq/delivery_time")


def faq_answer() -> str:
    return domain_responses()["utter_faq/delivery_time"][0]["text"]


async def test_the_step_ends_at_the_answer_not_at_the_first_message(client: EmulatorClient, bot: Bot) -> None:
    user = int((await client.add_user("Bench", user_id=910_901))["id"])
    after = (await client.sent(user)).last
    await bot.send_message(user, "Thanks, one moment while I look that up…")
    await bot.send_message(user, domain_responses()["utter_anything_else"][0]["text"])
    await bot.send_message(user, faq_answer())
    seen = await await_answer(client, user, after, QUESTION, timeout=10)
    assert seen.first is not None and seen.first["text"].startswith("Thanks, one moment")
    assert seen.answer is not None and seen.answer["text"] == faq_answer()
    assert seen.answer["time"] >= seen.first["time"]
    assert not seen.handed_off


async def test_a_bot_down_handoff_ends_the_wait_as_a_failure(client: EmulatorClient, bot: Bot) -> None:
    user = int((await client.add_user("Bench", user_id=910_902))["id"])
    after = (await client.sent(user)).last
    await bot.send_message(user, HANDOFF_BOT_DOWN + "You're number 1 in line.")
    seen = await await_answer(client, user, after, QUESTION, timeout=10)
    assert seen.handed_off
    assert seen.answer is None


async def test_without_the_expected_answer_there_is_none(client: EmulatorClient, bot: Bot) -> None:
    user = int((await client.add_user("Bench", user_id=910_903))["id"])
    after = (await client.sent(user)).last
    await bot.send_message(user, domain_responses()["utter_faq/returns_policy"][0]["text"])
    seen = await await_answer(client, user, after, QUESTION, timeout=0.5)
    assert seen.first is not None, "a message came"
    assert seen.answer is None, "but another topic's answer is not this question's"
    assert not seen.handed_off
