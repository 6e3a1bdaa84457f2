"""Albums, copies of every kind of message, caption and media edits, locations, venues and contacts, through PTB."""

import aiohttp
import pytest
from telegram import (
    Bot,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    MessageEntity,
    MessageId,
)
from telegram.error import BadRequest, RetryAfter

from bot.emulator.client import EmulatorClient, EmulatorClientError
from bot.emulator.media import placeholder_png
from bot.emulator.server import EmulatorServer
from tests.emulator.conftest import TOKEN

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    # Requests PTB would refuse to build are sent raw, which it warns about.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning"),
]
ALL_KINDS = (
    "photo",
    "video",
    "document",
    "audio",
    "voice",
    "video_note",
    "animation",
    "sticker",
    "location",
    "contact",
    "venue",
)


async def forum_with_topic(bot: Bot, client: EmulatorClient, **extra: object) -> tuple[dict, int]:
    """A forum where the bot manages topics, and one topic's thread id."""
    forum = await client.add_group("Agents", is_forum=True, bot_rights={"can_manage_topics": True}, **extra)
    topic = await bot.create_forum_topic(forum["id"], "Ann #1")
    return forum, topic.message_thread_id


async def test_send_media_group_sends_one_album(bot: Bot, client: EmulatorClient) -> None:
    forum, thread = await forum_with_topic(bot, client)
    # A photo the bot sent before, sent again by file_id, beside a new upload and a video.
    known = await bot.send_photo(forum["id"], placeholder_png(40, 30), message_thread_id=thread)
    messages = await bot.send_media_group(
        forum["id"],
        [
            InputMediaPhoto(known.photo[-1].file_id, caption="<b>Front</b>", parse_mode="HTML"),
            InputMediaPhoto(placeholder_png(64, 48)),
            InputMediaVideo(b"fake mp4", duration=5, width=640, height=360),
        ],
        message_thread_id=thread,
    )

    assert len(messages) == 3
    assert len({message.media_group_id for message in messages}) == 1
    assert messages[0].media_group_id and messages[0].media_group_id.isdigit()
    assert [message.message_thread_id for message in messages] == [thread] * 3
    assert messages[0].caption == "Front"
    assert messages[0].caption_entities == (MessageEntity(MessageEntity.BOLD, 0, 5),)
    assert messages[0].photo[-1].file_id == known.photo[-1].file_id
    assert messages[1].photo[-1].width == 64 and messages[1].caption is None
    assert (messages[2].video.width, messages[2].video.height) == (640, 360)
    log = (await client.sent(chat_id=forum["id"])).messages
    assert [entry["method"] for entry in log] == ["sendPhoto", *["sendMediaGroup"] * 3]
    assert [entry["file"]["kind"] for entry in log[1:]] == ["photo", "photo", "video"]


async def test_albums_of_documents_and_audio_and_a_lone_item(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    documents = await bot.send_media_group(
        user["id"], [InputMediaDocument(b"a", filename="a.pdf"), InputMediaDocument(b"b", filename="b.pdf")]
    )
    assert [message.document.file_name for message in documents] == ["a.pdf", "b.pdf"]
    audio = await bot.send_media_group(user["id"], [InputMediaAudio(b"1"), InputMediaAudio(b"2")])
    assert audio[0].media_group_id == audio[1].media_group_id != documents[0].media_group_id
    [lone] = await bot.send_media_group(user["id"], [InputMediaPhoto(placeholder_png(10, 10))])
    assert lone.media_group_id is None  # Telegram sends one item as an ordinary message


async def test_send_media_group_refuses_what_telegram_refuses(
    bot: Bot, client: EmulatorClient, emulator: EmulatorServer
) -> None:
    user = await client.add_user("Ann")
    photo = InputMediaPhoto(placeholder_png(10, 10))
    for media, error in (
        ([photo, InputMediaDocument(b"x")], "document can't be mixed with other media types"),
        ([InputMediaAudio(b"x"), photo], "audio can't be mixed with other media types"),
        ([photo] * 11, "too many messages to send as an album"),
    ):
        with pytest.raises(BadRequest, match=f"(?i){error}"):
            await bot.send_media_group(user["id"], media)
    # PTB cannot even send an empty list.
    async with aiohttp.ClientSession() as session:
        url = f"{emulator.bot_api_url}{TOKEN}/sendMediaGroup"
        async with session.post(url, json={"chat_id": user["id"], "media": []}) as response:
            assert (await response.json())["description"] == "Bad Request: there are no messages to send"
    assert (await client.sent(chat_id=user["id"])).messages == []


async def test_an_album_counts_each_message_toward_the_group_limit(bot: Bot, client: EmulatorClient) -> None:
    group = await client.add_group("Support")
    album = [InputMediaPhoto(placeholder_png(10, 10))] * 10
    await bot.send_media_group(group["id"], album)
    await bot.send_media_group(group["id"], album)
    with pytest.raises(RetryAfter):
        await bot.send_media_group(group["id"], album[:2])
    assert len((await client.sent(chat_id=group["id"])).messages) == 20


async def test_a_users_album_arrives_as_one_update_per_item(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    sent = await client.send_album(
        user["id"],
        [
            {"kind": "photo", "caption": "the box #broken", "content": placeholder_png(20, 10)},
            {"kind": "photo"},
            {"kind": "video", "duration": 4},
        ],
    )
    assert len(sent["update_ids"]) == 3
    updates = await bot.get_updates()
    assert [update.message.media_group_id for update in updates] == [sent["media_group_id"]] * 3
    assert updates[0].message.caption == "the box #broken"
    assert updates[0].message.caption_entities[0].type == MessageEntity.HASHTAG
    assert updates[2].message.video is not None

    documents = await client.send_album(
        user["id"], [{"kind": "document", "file_name": "a.pdf"}, {"kind": "document", "file_name": "b.txt"}]
    )
    assert [message["document"]["mime_type"] for message in documents["messages"]] == ["application/pdf", "text/plain"]
    for items in ([{"kind": "photo"}], [{"kind": "photo"}, {"kind": "audio"}], [{"kind": "voice"}] * 2):
        with pytest.raises(EmulatorClientError):
            await client.send_album(user["id"], items)


async def test_user_helpers_send_each_kind(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await client.send_document(user["id"], b"%PDF-1.4", file_name="invoice.pdf", caption="my invoice")
    await client.send_voice(user["id"], duration=9)
    await client.send_video(user["id"], caption="unboxing")
    await client.send_audio(user["id"], file_name="song.mp3")
    await client.send_location(user["id"], 48.85, 2.35)
    await client.send_contact(user["id"], "+33100000000", "Bea", user_id=user["id"])
    await client.send_media(user["id"], "animation")
    await client.send_media(user["id"], "video_note", length=360)
    await client.send_media(user["id"], "venue", title="Depot", address="1 Main St")

    document, voice, video, audio, place, contact, animation, video_note, venue = (
        update.message for update in await bot.get_updates()
    )
    assert (document.document.file_name, document.document.mime_type) == ("invoice.pdf", "application/pdf")
    assert document.caption == "my invoice"
    assert voice.voice is not None and video.caption == "unboxing" and audio.audio.file_name == "song.mp3"
    assert (place.location.latitude, place.location.longitude) == (48.85, 2.35)
    assert contact.contact.phone_number == "+33100000000" and contact.contact.user_id == user["id"]
    assert animation.animation.file_id == animation.document.file_id  # as the Bot API gives animations
    assert video_note.video_note.length == 360
    assert venue.venue.title == "Depot" and venue.location is not None


async def test_copy_message_copies_every_kind_into_a_topic(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    forum, thread = await forum_with_topic(bot, client)
    for kind in ALL_KINDS:
        original = (await client.send_media(user["id"], kind, caption=f"{kind} caption"))["message"]
        copied = await bot.copy_message(
            forum["id"],
            user["id"],
            original["message_id"],
            message_thread_id=thread,
            caption="New <i>words</i>",
            parse_mode="HTML",
        )
        assert isinstance(copied, MessageId)
        [entry] = (await client.sent(chat_id=forum["id"], after=0)).messages[-1:]
        message = entry["message"]
        assert message["message_id"] == copied.message_id and message["message_thread_id"] == thread
        assert message[kind] == original[kind], kind
        if kind in ("photo", "video", "document", "audio", "voice", "animation"):
            assert message["caption"] == "New words"
            assert message["caption_entities"] == [{"type": "italic", "offset": 4, "length": 5}]
        else:
            assert "caption" not in message, kind


async def test_copy_message_keeps_or_removes_a_caption(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    photo = (await client.send_media(user["id"], "photo", caption="keep me"))["message"]
    kept = await bot.copy_message(user["id"], user["id"], photo["message_id"])
    removed = await bot.copy_message(user["id"], user["id"], photo["message_id"], caption="")
    log = {entry["message_id"]: entry for entry in (await client.sent(chat_id=user["id"])).messages}
    assert log[kept.message_id]["caption"] == "keep me"
    assert log[removed.message_id]["caption"] is None


async def test_copy_messages_keeps_albums_together(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    forum, thread = await forum_with_topic(bot, client)
    text = (await client.send_text(user["id"], "here are the photos"))["message"]
    album = await client.send_album(user["id"], [{"kind": "photo", "caption": "one"}, {"kind": "photo"}])
    ids = [text["message_id"], *(message["message_id"] for message in album["messages"]), 999]

    copies = await bot.copy_messages(forum["id"], user["id"], ids, message_thread_id=thread, remove_caption=True)

    assert len(copies) == 3 and all(isinstance(copy, MessageId) for copy in copies)  # 999 is skipped
    log = (await client.sent(chat_id=forum["id"])).messages[-3:]
    assert [entry["message_id"] for entry in log] == [copy.message_id for copy in copies]
    assert [entry["method"] for entry in log] == ["copyMessages"] * 3
    assert log[0]["text"] == "here are the photos" and "media_group_id" not in log[0]["message"]
    groups = {entry["message"]["media_group_id"] for entry in log[1:]}
    assert len(groups) == 1 and groups != {album["media_group_id"]}
    assert log[1]["caption"] is None  # remove_caption
    assert all(entry["message_thread_id"] == thread for entry in log)
    with pytest.raises(BadRequest, match="(?i)strictly increasing"):
        await bot.copy_messages(forum["id"], user["id"], [ids[1], ids[0]])
    with pytest.raises(BadRequest):
        await bot.copy_messages(forum["id"], user["id"], [998, 999])


async def test_edit_message_caption(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    photo = await bot.send_photo(user["id"], placeholder_png(10, 10), caption="Draft")
    edited = await bot.edit_message_caption(user["id"], photo.message_id, caption="*Final*", parse_mode="MarkdownV2")
    assert edited.caption == "Final" and edited.caption_entities == (MessageEntity(MessageEntity.BOLD, 0, 5),)
    assert edited.edit_date is not None
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_caption(user["id"], photo.message_id, caption="*Final*", parse_mode="MarkdownV2")
    cleared = await bot.edit_message_caption(user["id"], photo.message_id)
    assert cleared.caption is None
    text = await bot.send_message(user["id"], "plain")
    with pytest.raises(BadRequest, match="(?i)no caption in the message to edit"):
        await bot.edit_message_caption(user["id"], text.message_id, caption="x")
    log = (await client.sent(chat_id=user["id"])).messages
    assert [entry["method"] for entry in log] == [
        "sendPhoto",
        "editMessageCaption",
        "editMessageCaption",
        "sendMessage",
    ]


async def test_edit_message_media(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    photo = await bot.send_photo(user["id"], placeholder_png(10, 10), caption="old")
    video = await bot.edit_message_media(InputMediaVideo(b"mp4", caption="new"), user["id"], photo.message_id)
    assert video.video is not None and not video.photo and video.caption == "new"
    text = await bot.send_message(user["id"], "a picture follows")
    pictured = await bot.edit_message_media(InputMediaPhoto(placeholder_png(30, 20)), user["id"], text.message_id)
    assert pictured.text is None and pictured.photo[-1].width == 30
    [entry] = [
        entry
        for entry in (await client.sent(chat_id=user["id"])).messages
        if entry["message_id"] == text.message_id and entry["method"] == "editMessageMedia"
    ]
    assert entry["file"]["kind"] == "photo"

    album = await bot.send_media_group(user["id"], [InputMediaPhoto(placeholder_png(10, 10))] * 2)
    swapped = await bot.edit_message_media(InputMediaVideo(b"mp4"), user["id"], album[0].message_id)
    assert swapped.media_group_id == album[0].media_group_id
    with pytest.raises(BadRequest, match="(?i)can't change media type in the album"):
        await bot.edit_message_media(InputMediaDocument(b"doc"), user["id"], album[1].message_id)
    sticker = (await client.send_media(user["id"], "sticker"))["message"]
    with pytest.raises(BadRequest, match="(?i)message can't be edited"):
        await bot.edit_message_media(InputMediaPhoto(placeholder_png(10, 10)), user["id"], sticker["message_id"])


async def test_locations_venues_contacts_and_video_notes(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    place = await bot.send_location(user["id"], 51.5, -0.12, horizontal_accuracy=25)
    assert (place.location.latitude, place.location.longitude, place.location.horizontal_accuracy) == (51.5, -0.12, 25)
    venue = await bot.send_venue(user["id"], 51.5, -0.12, "Depot", "1 Dock Road", foursquare_id="4b5")
    assert venue.venue.title == "Depot" and venue.venue.foursquare_id == "4b5"
    assert venue.location.latitude == 51.5
    contact = await bot.send_contact(user["id"], phone_number="+441234", first_name="Support", last_name="Desk")
    assert (contact.contact.phone_number, contact.contact.last_name) == ("+441234", "Desk")
    note = await bot.send_video_note(user["id"], b"round", length=300, duration=2)
    assert note.video_note.length == 300 and note.caption is None
    with pytest.raises(BadRequest, match="(?i)latitude is empty"):
        await bot.do_api_request("sendLocation", api_kwargs={"chat_id": user["id"], "longitude": 1.0})
    with pytest.raises(BadRequest, match="(?i)phone_number is empty"):
        await bot.do_api_request("sendContact", api_kwargs={"chat_id": user["id"], "first_name": "X"})
    log = (await client.sent(chat_id=user["id"])).messages
    assert [entry["method"] for entry in log] == ["sendLocation", "sendVenue", "sendContact", "sendVideoNote"]
