"""Albums, copies of several messages, and edits of captions and media."""

import copy
import itertools
from typing import Any

from bot.emulator.albums import album_problem, new_media_group_id
from bot.emulator.errors import bad_request
from bot.emulator.media import CAPTIONED_KINDS, MEDIA_KINDS, media_fields
from bot.emulator.outgoing import caption, caption_content, find_chat, placement
from bot.emulator.params import Params
from bot.emulator.sender import Call, Handler, Sender
from bot.emulator.state import JSON, Chat

MAX_COPIED_MESSAGES = 100
# What editMessageMedia can put in a message, and what it replaces there.
EDITABLE_MEDIA = ("photo", "video", "animation", "audio", "document")
_REPLACED_FIELDS = ("text", "entities", "caption", "caption_entities", *MEDIA_KINDS)


def _input_media(params: Params, value: Any) -> tuple[str, Params]:
    """The type of an InputMedia object and the object read as parameters."""
    if not isinstance(value, dict):
        raise bad_request("can't parse InputMedia JSON object")
    if not value.get("media"):
        raise bad_request("can't parse InputMedia: media not found")
    return str(value.get("type") or ""), params.nested(value)


def _album_of_kind(kind: str) -> tuple[str, ...]:
    """The kinds an album's message of this kind may become: photos and videos trade places, others stay."""
    return ("photo", "video") if kind in ("photo", "video") else (kind,)


class MediaMethods:
    """sendMediaGroup, copyMessages, editMessageCaption and editMessageMedia."""

    def __init__(self, sender: Sender, content_fields: tuple[str, ...]) -> None:
        self.sender = sender
        self.content_fields = content_fields

    def methods(self) -> dict[str, Handler]:
        """Method names and their handlers."""
        return {
            "sendMediaGroup": self.send_media_group,
            "copyMessages": self.copy_messages,
            "editMessageCaption": self.edit_message_caption,
            "editMessageMedia": self.edit_message_media,
        }

    # --- albums -----------------------------------------------------------

    def _album_items(self, params: Params) -> list[tuple[str, Params]]:
        media = params.get_json("media")
        if media is not None and not isinstance(media, list):
            raise bad_request("can't parse media JSON array")
        items = [_input_media(params, value) for value in media or []]
        problem = album_problem([kind for kind, _ in items])
        if problem:
            raise bad_request(problem)
        return items

    async def send_media_group(self, call: Call) -> list[JSON]:
        """sendMediaGroup: 2–10 messages sharing a media_group_id, each counted by the flood limits."""
        chat = self.sender.writable_chat(call.params)
        items = self._album_items(call.params)
        where = placement(call.params, chat)
        contents = []
        for kind, item in items:
            media, info = self.sender.media(item, kind, "media")
            contents.append(({**media_fields(kind, media), **caption_content(caption(item))}, info))
        # Telegram sends a lone item as an ordinary message, outside any album.
        group: JSON = {"media_group_id": new_media_group_id(self.sender.state)} if len(contents) > 1 else {}
        self.sender.charge(chat, len(contents))
        messages = []
        for content, info in contents:
            message = chat.compose(call.bot, {**content, **group}, where.thread_id, where.reply_to)
            self.sender.log_sent(call, message, None, file=info)
            messages.append(message)
        return messages

    # --- copies -----------------------------------------------------------

    def _message_ids(self, params: Params) -> list[int]:
        ids = params.get_json("message_ids")
        if not isinstance(ids, list) or not all(isinstance(value, int) for value in ids):
            raise bad_request("can't parse message_ids JSON array")
        if not 1 <= len(ids) <= MAX_COPIED_MESSAGES:
            raise bad_request("message_ids must contain 1-100 message identifiers")
        if any(later <= earlier for earlier, later in itertools.pairwise(ids)):
            raise bad_request("message identifiers must be in a strictly increasing order")
        return ids

    def _copies(self, source_chat: Chat, ids: list[int], remove_caption: bool) -> list[JSON]:
        """The content of each copyable message; messages missing or not copyable are skipped, as Telegram does."""
        albums: dict[str, str] = {}
        copies = []
        for message_id in ids:
            source = source_chat.messages.get(message_id)
            if source is None:
                continue
            content = {key: copy.deepcopy(source[key]) for key in self.content_fields if key in source}
            if not content:
                continue
            if remove_caption:
                content.pop("caption", None)
                content.pop("caption_entities", None)
            if source.get("media_group_id"):
                # Copies of an album's messages form a new album of their own.
                group = albums.setdefault(source["media_group_id"], new_media_group_id(self.sender.state))
                content["media_group_id"] = group
            copies.append({"content": content, "source": source})
        return copies

    async def copy_messages(self, call: Call) -> list[JSON]:
        """copyMessages: copies in order, albums kept together; returns a MessageId per copy."""
        chat = self.sender.writable_chat(call.params)
        source_chat = find_chat(self.sender.state, call.params, "from_chat_id")
        copies = self._copies(source_chat, self._message_ids(call.params), call.params.get_bool("remove_caption"))
        if not copies:
            raise bad_request("there are no messages to copy")
        where = placement(call.params, chat)
        self.sender.charge(chat, len(copies))
        ids = []
        for item in copies:
            message = chat.compose(call.bot, item["content"], where.thread_id, None)
            source = item["source"]
            self.sender.log_sent(
                call, message, None, source={"chat_id": source["chat"]["id"], "message_id": source["message_id"]}
            )
            ids.append({"message_id": message["message_id"]})
        return ids

    # --- edits ------------------------------------------------------------

    async def edit_message_caption(self, call: Call) -> JSON:
        """editMessageCaption: a new caption, or none when it is left out."""
        message = self.sender.own_message(call)
        if not any(kind in message for kind in CAPTIONED_KINDS):
            raise bad_request("there is no caption in the message to edit")
        formatted = caption(call.params)
        changes = {"caption": None, "caption_entities": None, **caption_content(formatted)}
        return self.sender.apply_edit(call, message, changes)

    async def edit_message_media(self, call: Call) -> JSON:
        """editMessageMedia: new media (and its caption) for a media or text message."""
        message = self.sender.own_message(call)
        kind, item = _input_media(call.params, call.params.get_json("media"))
        if kind not in EDITABLE_MEDIA:
            raise bad_request(f'can\'t parse InputMedia: type "{kind}" is unsupported')
        current = next((name for name in EDITABLE_MEDIA if name in message), "text" if "text" in message else None)
        if current is None:
            raise bad_request("message can't be edited")
        if message.get("media_group_id") and kind not in _album_of_kind(current):
            raise bad_request("can't change media type in the album")
        media, info = self.sender.media(item, kind, "media")
        changes: JSON = dict.fromkeys(_REPLACED_FIELDS)
        changes.update(media_fields(kind, media))
        changes.update(caption_content(caption(item)))
        return self.sender.apply_edit(call, message, changes, file=info)
