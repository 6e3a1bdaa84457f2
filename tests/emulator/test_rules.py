"""Telegram's rules as the emulator enforces them, seen through PTB and raw HTTP."""

import asyncio
import json
import time

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, EndPointNotFound, Forbidden, NetworkError, RetryAfter

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from tests.emulator.conftest import TOKEN

pytestmark = [
    pytest.mark.asyncio,
    # PTB itself reads RetryAfter.retry_after, which warns about its future type.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]


def retry_seconds(error: RetryAfter) -> float:
    """retry_after in seconds, whichever type this PTB version exposes."""
    value = error.retry_after
    return value if isinstance(value, int | float) else value.total_seconds()


def button(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data=data)]])


async def test_text_length_limits(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await bot.send_message(user["id"], "x" * 4096)
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(user["id"], "x" * 4097)
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(user["id"], "   ")
    # The limit applies after parsing: markup does not count.
    await bot.send_message(user["id"], "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")


async def test_long_texts_can_be_injected(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await client.send_text(user["id"], "y" * 5000)
    [update] = await bot.get_updates()
    assert len(update.message.text) == 5000


async def test_callback_data_is_limited_to_64_bytes(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await bot.send_message(user["id"], "ok", reply_markup=button("x" * 64))
    await bot.send_message(user["id"], "ok", reply_markup=button("é" * 32))
    for data in ("x" * 65, "é" * 33):
        with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
            await bot.send_message(user["id"], "too long", reply_markup=button(data))
    assert len((await client.sent(chat_id=user["id"])).messages) == 2


async def test_parse_errors_are_reported(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(user["id"], "<b>unclosed", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)reserved"):
        await bot.send_message(user["id"], "Total: 9.90!", parse_mode="MarkdownV2")


async def test_unknown_chat(bot: Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(424242, "hello?")


async def test_blocked_user(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await client.block(user["id"])
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(user["id"], "We miss you")
    [update] = await bot.get_updates()
    assert update.my_chat_member.new_chat_member.status == "kicked"

    await client.block(user["id"], blocked=False)
    await bot.send_message(user["id"], "Welcome back")


async def test_user_who_never_started_the_bot(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann", started=False)
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(user["id"], "Hi")


async def test_private_chat_flood_limit(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await client.set_limits(private_burst=2, private_per_second=1)
    await bot.send_message(user["id"], "1")
    await bot.send_message(user["id"], "2")
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(user["id"], "3")
    assert retry_seconds(raised.value) == 1  # just under a token missing at 1/s, rounded up
    assert raised.value.message.startswith("Flood control exceeded")

    await asyncio.sleep(1.05)
    await bot.send_message(user["id"], "3")
    calls = await client.calls(method="sendMessage")
    assert [call["status"] for call in calls] == [200, 200, 429, 200]


async def test_default_private_limit_and_chat_actions(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    for _ in range(5):
        await bot.send_message(user["id"], "burst")
    for _ in range(10):
        await bot.send_chat_action(user["id"], "typing")  # not counted
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(user["id"], "one too many")
    assert retry_seconds(raised.value) == 1


async def test_group_limit_is_20_per_minute(bot: Bot, client: EmulatorClient) -> None:
    group = await client.add_group("Support")
    for number in range(20):
        await bot.send_message(group["id"], f"message {number}")
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(group["id"], "message 21")
    assert 58 <= retry_seconds(raised.value) <= 60


async def test_group_window_is_configurable(bot: Bot, client: EmulatorClient) -> None:
    group = await client.add_group("Support")
    await client.set_limits(group_per_minute=3, group_window=1)
    for number in range(3):
        await bot.send_message(group["id"], f"message {number}")
    with pytest.raises(RetryAfter):
        await bot.send_message(group["id"], "message 4")
    await asyncio.sleep(1.05)
    await bot.send_message(group["id"], "message 4")


async def test_global_limit_across_chats(bot: Bot, client: EmulatorClient) -> None:
    await client.set_limits(global_per_second=3)
    users = [await client.add_user(f"User {number}") for number in range(4)]
    for user in users[:3]:
        await bot.send_message(user["id"], "hello")
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(users[3]["id"], "hello")
    assert retry_seconds(raised.value) == 1


async def test_limits_can_be_disabled(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await client.set_limits(enabled=False)
    for number in range(40):
        await bot.send_message(user["id"], str(number))


async def test_fault_429(bot: Bot, client: EmulatorClient) -> None:
    await client.set_fault("429", method="getMe", retry_after=3)
    with pytest.raises(RetryAfter) as raised:
        await bot.get_me()
    assert retry_seconds(raised.value) == 3
    assert (await bot.get_me()).id == bot.id  # count defaults to 1


async def test_fault_502_and_500(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await client.set_fault("502", method="sendMessage")
    await client.set_fault("500", method="sendMessage")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(user["id"], "first")
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(user["id"], "second")
    await bot.send_message(user["id"], "third")
    calls = await client.calls(method="sendMessage")
    assert [(call["status"], call["fault"]) for call in calls] == [(502, "502"), (500, "500"), (200, None)]
    assert [entry["text"] for entry in (await client.sent()).messages] == ["third"]


async def test_fault_400_and_403_refuse_for_good_with_telegrams_reason(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    photo = (await client.send_media(user["id"], "photo"))["message"]
    await client.set_fault("400", method="copyMessage", description="file is too big")
    await client.set_fault("403", method="copyMessage", description="user is deactivated")
    with pytest.raises(BadRequest, match="^File is too big$"):  # PTB drops the prefix, capitalises
        await bot.copy_message(user["id"], user["id"], photo["message_id"])
    with pytest.raises(Forbidden, match="^Forbidden: user is deactivated$"):
        await bot.copy_message(user["id"], user["id"], photo["message_id"])
    await bot.copy_message(user["id"], user["id"], photo["message_id"])
    calls = await client.calls(method="copyMessage")
    assert [(call["status"], call["fault"]) for call in calls] == [(400, "400"), (403, "403"), (200, None)]


async def test_fault_slow_and_drop(bot: Bot, client: EmulatorClient) -> None:
    await client.set_fault("slow", delay=0.3)
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started >= 0.3

    await client.set_fault("drop", delay=0.05)
    with pytest.raises(NetworkError):
        await bot.get_me()
    await bot.get_me()


async def test_fault_filters_and_clearing(bot: Bot, client: EmulatorClient) -> None:
    ann = await client.add_user("Ann")
    bob = await client.add_user("Bob")
    await client.set_fault("500", method="sendMessage", chat_id=ann["id"], count=-1)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(ann["id"], "hi")
    await bot.send_message(bob["id"], "hi")
    await bot.get_me()
    await client.clear_faults()
    await bot.send_message(ann["id"], "hi")


async def test_unknown_method_and_bad_token(bot: Bot, emulator: EmulatorServer) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{emulator.bot_api_url}{TOKEN}/sendTelepathy") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with session.get(f"{emulator.bot_api_url}not-a-token/getMe") as response:
            assert response.status == 404


async def test_parameter_encodings(emulator: EmulatorServer, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    url = f"{emulator.bot_api_url}{TOKEN}"
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/GETME") as response:  # method names ignore case
            assert (await response.json())["result"]["username"] == "frontline_test_bot"
        async with session.post(
            f"{url}/sendMessage", json={"chat_id": user["id"], "text": "json", "reply_markup": markup}
        ) as response:
            assert (await response.json())["result"]["reply_markup"] == markup
        form = {"chat_id": str(user["id"]), "text": "form", "reply_markup": json.dumps(markup)}
        async with session.post(f"{url}/sendmessage", data=form) as response:
            assert (await response.json())["result"]["text"] == "form"
        async with session.get(f"{url}/sendMessage", params={"chat_id": user["id"], "text": "query"}) as response:
            assert (await response.json())["ok"]
        multipart = aiohttp.FormData()
        multipart.add_field("chat_id", str(user["id"]))
        multipart.add_field("document", b"hello", filename="note.txt", content_type="text/plain")
        async with session.post(f"{url}/sendDocument", data=multipart) as response:
            document = (await response.json())["result"]["document"]
    assert document["file_name"] == "note.txt" and document["mime_type"] == "text/plain"
    texts = [entry["text"] for entry in (await client.sent()).messages]
    assert texts == ["json", "form", "query", None]


async def test_second_poller_conflicts_the_first(bot: Bot, emulator: EmulatorServer) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    async with Bot(TOKEN, base_url=emulator.bot_api_url) as second_instance:
        assert await second_instance.get_updates() == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)


async def test_sent_long_poll_and_reset(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    waiting = asyncio.create_task(client.sent(chat_id=user["id"], wait=5))
    await asyncio.sleep(0.1)
    await bot.send_message(user["id"], "ping")
    batch = await asyncio.wait_for(waiting, 2)
    assert [entry["text"] for entry in batch.messages] == ["ping"]

    await client.reset()
    assert (await client.sent()).messages == []
    with pytest.raises(BadRequest):
        await bot.send_message(user["id"], "gone")
    again = await client.add_user("Ann again")
    assert again["id"] != user["id"]  # ids never repeat, even across resets
