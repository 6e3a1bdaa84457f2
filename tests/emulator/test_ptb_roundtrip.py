"""python-telegram-bot 22 against the emulator: the calls Frontline makes, end to end."""

import asyncio
import time

import pytest
from telegram import (
    Bot,
    ForumTopic,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    MessageId,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes, MessageHandler, filters

from bot.emulator.client import EmulatorClient, EmulatorClientError
from bot.emulator.media import placeholder_png
from bot.emulator.server import EmulatorServer
from tests.emulator.conftest import TOKEN

pytestmark = pytest.mark.asyncio

KEYBOARD = InlineKeyboardMarkup(
    [[InlineKeyboardButton("Yes", callback_data="answer:yes")], [InlineKeyboardButton("No", callback_data="answer:no")]]
)


async def test_get_me_reports_the_bot_of_the_token(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456789
    assert me.is_bot
    assert me.username == "frontline_test_bot"
    assert me.can_join_groups


async def test_send_message_with_inline_keyboard(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann", username="ann")
    first = await bot.send_message(user["id"], "<b>Hello</b>, Ann!", parse_mode=ParseMode.HTML, reply_markup=KEYBOARD)
    second = await bot.send_message(user["id"], "Second", disable_notification=True)

    assert isinstance(first, Message)
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.text == "Hello, Ann!"
    assert first.entities == (MessageEntity(MessageEntity.BOLD, 0, 5),)
    assert first.from_user is not None and first.from_user.id == bot.id
    assert first.chat.type == "private" and first.chat.username == "ann"
    assert first.reply_markup == KEYBOARD
    sent = (await client.sent(chat_id=user["id"])).messages
    assert [entry["text"] for entry in sent] == ["Hello, Ann!", "Second"]
    assert sent[0]["reply_markup"] == KEYBOARD.to_dict()
    assert sent[0]["parse_mode"] == "HTML"
    assert sent[1]["disable_notification"] is True


async def test_reply_keyboard_is_logged_but_not_echoed(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    message = await bot.send_message(user["id"], "Pick one", reply_markup=ReplyKeyboardMarkup([["A", "B"]]))
    assert message.reply_markup is None
    [entry] = (await client.sent(chat_id=user["id"])).messages
    assert entry["reply_markup"]["keyboard"] == [[{"text": "A"}, {"text": "B"}]]


async def test_get_updates_offset_confirms_earlier_updates(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    for text in ("one", "two", "three"):
        await client.send_text(user["id"], text)

    updates = await bot.get_updates()
    assert [update.message.text for update in updates] == ["one", "two", "three"]
    assert len(await client.pending_updates()) == 3  # fetching alone confirms nothing

    later = await bot.get_updates(offset=updates[1].update_id)
    assert [update.message.text for update in later] == ["two", "three"]
    assert len(await client.pending_updates()) == 2

    assert await bot.get_updates(offset=updates[-1].update_id + 1) == ()
    assert await client.pending_updates() == []


async def test_get_updates_limit_and_allowed_updates(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    sent = await bot.send_message(user["id"], "Choose", reply_markup=KEYBOARD)
    await client.send_text(user["id"], "hello")
    await client.press(user["id"], sent.message_id, "answer:yes")

    [first] = await bot.get_updates(limit=1)
    assert first.message is not None
    only_callbacks = await bot.get_updates(allowed_updates=["callback_query"])
    assert [update.callback_query.data for update in only_callbacks] == ["answer:yes"]


async def test_long_poll_returns_as_soon_as_a_message_arrives(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await client.send_text(user["id"], "/start")

    [update] = await asyncio.wait_for(poll, 5)
    assert time.monotonic() - started < 3
    assert update.message.text == "/start"
    assert update.message.entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 6),)
    assert update.message.from_user.first_name == "Ann"


async def test_callback_query_round_trip(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    sent = await bot.send_message(user["id"], "Was this helpful?", reply_markup=KEYBOARD)
    pressed = await client.press(user["id"], sent.message_id, "answer:no")

    [update] = await bot.get_updates()
    query = update.callback_query
    assert query.id == pressed["callback_query_id"]
    assert query.data == "answer:no"
    assert query.from_user.id == user["id"]
    assert query.message.message_id == sent.message_id
    assert query.message.reply_markup == KEYBOARD

    assert await query.answer("Thanks!", show_alert=True)
    record = await client.callback_answer(query.id)
    assert record["answered"]
    assert record["answer"]["text"] == "Thanks!"
    assert record["answer"]["show_alert"] is True
    with pytest.raises(BadRequest, match="(?i)query id is invalid"):
        await query.answer()


async def test_edit_message_text_replaces_text_and_drops_keyboard(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    sent = await bot.send_message(user["id"], "Working on it", reply_markup=KEYBOARD)

    edited = await bot.edit_message_text("Done", chat_id=user["id"], message_id=sent.message_id)
    assert edited.text == "Done"
    assert edited.edit_date is not None
    assert edited.reply_markup is None
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("Done", chat_id=user["id"], message_id=sent.message_id)

    with_keyboard = await bot.edit_message_reply_markup(user["id"], sent.message_id, reply_markup=KEYBOARD)
    assert with_keyboard.reply_markup == KEYBOARD
    log = (await client.sent(chat_id=user["id"])).messages
    assert [entry["method"] for entry in log] == ["sendMessage", "editMessageText", "editMessageReplyMarkup"]
    assert [entry["text"] for entry in log] == ["Working on it", "Done", "Done"]


async def test_copy_and_forward_a_customer_message(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    agent = await client.add_user("Agent")
    group = await client.add_group("Support", members=[agent["id"]])
    incoming = (await client.send_text(user["id"], "My order #A-1234 is late"))["message"]

    copied = await bot.copy_message(group["id"], user["id"], incoming["message_id"])
    forwarded = await bot.forward_message(group["id"], user["id"], incoming["message_id"])

    assert isinstance(copied, MessageId)
    assert forwarded.forward_origin.sender_user.id == user["id"]
    assert forwarded.text == "My order #A-1234 is late"
    log = (await client.sent(chat_id=group["id"])).messages
    assert [(entry["method"], entry["message_id"]) for entry in log] == [
        ("copyMessage", copied.message_id),
        ("forwardMessage", forwarded.message_id),
    ]
    assert log[0]["text"] == "My order #A-1234 is late"
    assert log[0]["source"] == {"chat_id": user["id"], "message_id": incoming["message_id"]}


async def test_forum_topics(bot: Bot, client: EmulatorClient) -> None:
    agent = await client.add_user("Agent")
    forum = await client.add_group(
        "Operators", is_forum=True, members=[agent["id"]], bot_rights={"can_manage_topics": True}
    )
    topic = await bot.create_forum_topic(forum["id"], "Ann #700000001")
    assert isinstance(topic, ForumTopic)

    message = await bot.send_message(forum["id"], "New ticket", message_thread_id=topic.message_thread_id)
    assert message.message_thread_id == topic.message_thread_id
    assert message.is_topic_message
    assert message.chat.is_forum
    assert message.reply_to_message.forum_topic_created.name == "Ann #700000001"
    [entry] = (await client.sent(chat_id=forum["id"])).messages
    assert entry["message_thread_id"] == topic.message_thread_id

    reply = await client.send_text(agent["id"], "On it", chat_id=forum["id"], message_thread_id=topic.message_thread_id)
    assert reply["message"]["message_thread_id"] == topic.message_thread_id

    assert await bot.edit_forum_topic(forum["id"], topic.message_thread_id, name="Ann (closed)")
    assert await bot.close_forum_topic(forum["id"], topic.message_thread_id)
    with pytest.raises(EmulatorClientError, match="closed"):
        await client.send_text(agent["id"], "Late", chat_id=forum["id"], message_thread_id=topic.message_thread_id)
    assert await bot.reopen_forum_topic(forum["id"], topic.message_thread_id)
    await bot.send_message(forum["id"], "Reopened", message_thread_id=topic.message_thread_id)
    with pytest.raises(BadRequest, match="(?i)message thread not found"):
        await bot.send_message(forum["id"], "Nowhere", message_thread_id=999)


async def test_topics_need_a_forum_and_rights(bot: Bot, client: EmulatorClient) -> None:
    group = await client.add_group("Plain")
    forum = await client.add_group("Forum", is_forum=True)
    with pytest.raises(BadRequest, match="(?i)not a forum"):
        await bot.create_forum_topic(group["id"], "Ticket")
    with pytest.raises(BadRequest, match="(?i)not enough rights"):
        await bot.create_forum_topic(forum["id"], "Ticket")
    with pytest.raises(BadRequest, match="(?i)message thread not found"):
        await bot.send_message(group["id"], "Hi", message_thread_id=2)


async def test_send_photo_upload_then_get_file_and_download(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    image = placeholder_png(640, 480)

    message = await bot.send_photo(user["id"], image, caption="Your receipt")
    largest = message.photo[-1]
    assert (largest.width, largest.height) == (640, 480)
    assert [size.width for size in message.photo] == [90, 320, 640]
    assert message.caption == "Your receipt"

    file = await bot.get_file(largest.file_id)
    assert file.file_path.startswith(f"{bot.base_file_url}/photos/")
    assert bytes(await file.download_as_bytearray()) == image
    [entry] = (await client.sent(chat_id=user["id"])).messages
    assert entry["file"]["kind"] == "photo" and entry["file"]["file_id"] == largest.file_id
    assert await client.file_content(largest.file_id) == image

    resent = await bot.send_photo(user["id"], largest.file_id)
    assert resent.photo[-1].file_id == largest.file_id


async def test_send_document_voice_and_sticker(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    document = await bot.send_document(user["id"], b"id;total\n1;9.90\n", filename="invoice.csv")
    voice = await bot.send_voice(user["id"], b"OggS-fake", duration=4)
    assert document.document.file_name == "invoice.csv"
    assert voice.voice.mime_type == "audio/ogg"
    log = (await client.sent(chat_id=user["id"])).messages
    assert [entry["file"]["kind"] for entry in log] == ["document", "voice"]
    assert log[1]["file"]["duration"] == 4

    user_sticker = (await client.send_media(user["id"], "sticker", emoji="😀"))["message"]["sticker"]
    echoed = await bot.send_sticker(user["id"], user_sticker["file_id"])
    assert echoed.sticker.emoji == "😀"
    with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
        await bot.send_sticker(user["id"], "no-such-file-id")
    with pytest.raises(BadRequest, match="(?i)type of file mismatch"):
        await bot.send_photo(user["id"], document.document.file_id)


async def test_user_media_reaches_the_bot_and_can_be_downloaded(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    image = placeholder_png(200, 100)
    await client.send_media(user["id"], "photo", content=image, caption="broken #item")
    await client.send_media(user["id"], "voice", duration=7)
    await client.send_media(user["id"], "location", latitude=1.5, longitude=2.5)

    photo_update, voice_update, location_update = await bot.get_updates()
    photo_message = photo_update.message
    assert photo_message.caption == "broken #item"
    assert photo_message.caption_entities[0].type == MessageEntity.HASHTAG
    file = await photo_message.photo[-1].get_file()
    assert bytes(await file.download_as_bytearray()) == image
    assert voice_update.message.voice.mime_type == "audio/ogg"
    assert location_update.message.location.latitude == 1.5


async def test_edited_message_update(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    original = (await client.send_text(user["id"], "order 123"))["message"]
    await client.edit(user["id"], original["message_id"], "order 124")

    first, second = await bot.get_updates()
    assert first.message.text == "order 123"  # the queued update keeps what was sent then
    assert second.edited_message.text == "order 124"
    assert second.edited_message.edit_date is not None


async def test_chat_information(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann", last_name="Lee")
    agent = await client.add_user("Agent")
    group = await client.add_group(
        "Support", admins=[agent["id"]], members=[user["id"]], bot_rights={"can_delete_messages": True}
    )

    chat = await bot.get_chat(group["id"])
    assert chat.title == "Support" and chat.type == "supergroup"
    private = await bot.get_chat(user["id"])
    assert private.first_name == "Ann" and private.last_name == "Lee"
    assert (await bot.get_chat_member(group["id"], agent["id"])).status == "administrator"
    assert (await bot.get_chat_member(group["id"], user["id"])).status == "member"
    assert (await bot.get_chat_member(group["id"], bot.id)).can_delete_messages
    admins = await bot.get_chat_administrators(group["id"])
    assert {admin.user.id for admin in admins} == {agent["id"], bot.id}
    await client.set_member(group["id"], agent["id"], member=False)
    assert (await bot.get_chat_member(group["id"], agent["id"])).status == "left"
    await client.set_member(group["id"], user["id"], admin=True)
    assert (await bot.get_chat_member(group["id"], user["id"])).status == "administrator"


async def test_chat_action_delete_and_commands(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    assert await bot.send_chat_action(user["id"], ChatAction.TYPING)
    message = await bot.send_message(user["id"], "temporary")
    assert await bot.delete_message(user["id"], message.message_id)
    with pytest.raises(BadRequest, match="(?i)message to delete not found"):
        await bot.delete_message(user["id"], message.message_id)

    assert await bot.set_my_commands([("start", "Start over"), ("help", "How I can help")])
    assert [command.command for command in await bot.get_my_commands()] == ["start", "help"]
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    calls = await client.calls(method="sendchataction")
    assert [call["params"]["action"] for call in calls] == ["typing"]


async def test_webhook_is_stored_and_blocks_polling(bot: Bot) -> None:
    assert await bot.set_webhook("https://frontline.example/telegram")
    info = await bot.get_webhook_info()
    assert info.url == "https://frontline.example/telegram"
    with pytest.raises(Exception, match="(?i)webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


async def test_application_polling_answers_a_command(emulator: EmulatorServer, client: EmulatorClient) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"Hi {update.effective_user.first_name}!", reply_markup=KEYBOARD)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(update.message.text.upper(), do_quote=True)

    application = (
        ApplicationBuilder().token(TOKEN).base_url(emulator.bot_api_url).base_file_url(emulator.file_url).build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    user = await client.add_user("Ann")
    async with application:
        await application.start()
        await application.updater.start_polling(poll_interval=0, timeout=5)
        await client.send_text(user["id"], "/start")
        [greeting] = await client.wait_for_text(user["id"], timeout=5)
        sent = await client.send_text(user["id"], "where is my parcel")
        answer = await client.wait_for_text(user["id"], after=greeting["seq"], predicate=lambda text: "PARCEL" in text)
        await application.updater.stop()
        await application.stop()

    assert greeting["text"] == "Hi Ann!"
    assert greeting["reply_markup"] == KEYBOARD.to_dict()
    assert answer[-1]["text"] == "WHERE IS MY PARCEL"
    assert answer[-1]["reply_to_message_id"] == sent["message"]["message_id"]
    assert await client.pending_updates() == []


async def test_a_user_edits_a_caption(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    photo = (await client.send_media(user["id"], "photo", caption="the lamp"))["message"]
    await client.edit_caption(user["id"], photo["message_id"], "the broken lamp")
    await client.edit_caption(user["id"], photo["message_id"], "")

    first, second, third = await bot.get_updates()
    assert first.message.caption == "the lamp"
    assert second.edited_message.caption == "the broken lamp" and second.edited_message.photo
    assert second.edited_message.edit_date is not None
    assert third.edited_message.caption is None
    sticker = (await client.send_media(user["id"], "sticker"))["message"]
    with pytest.raises(EmulatorClientError, match="caption to edit"):
        await client.edit_caption(user["id"], sticker["message_id"], "x")
