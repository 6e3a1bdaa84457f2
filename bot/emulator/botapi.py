"""The Bot API methods, independent of HTTP."""

import copy
from typing import Any

from bot import clock
from bot.emulator import chats
from bot.emulator.bot_setup import BotSetupMethods
from bot.emulator.errors import bad_request, not_found
from bot.emulator.media import CAPTIONED_KINDS, DOWNLOAD_LIMIT, MEDIA_KINDS, media_fields
from bot.emulator.media_methods import MediaMethods
from bot.emulator.outgoing import (
    Placement,
    caption,
    caption_content,
    find_chat,
    find_message,
    message_text,
    placement,
    reply_markup,
    text_content,
    topic_for_send,
)
from bot.emulator.params import Params
from bot.emulator.places import PlaceMethods
from bot.emulator.sender import Call, Handler, Sender
from bot.emulator.state import JSON, Chat, EmulatorState
from bot.emulator.topics import TopicMethods

MAX_CALLBACK_ANSWER_LENGTH = 200
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
CONTENT_FIELDS = (
    "text",
    "entities",
    "caption",
    "caption_entities",
    "location",
    "venue",
    "contact",
    *MEDIA_KINDS,
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"


class BotApi:
    """Dispatches Bot API methods (case-insensitively) against the emulator state."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.sender = Sender(state)
        table: dict[str, Handler] = {
            **BotSetupMethods(state).methods(),
            "sendMessage": self.send_message,
            "sendChatAction": self.send_chat_action,
            "answerCallbackQuery": self.answer_callback_query,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "copyMessage": self.copy_message,
            "forwardMessage": self.forward_message,
            "getFile": self.get_file,
            "getChat": self.get_chat,
            "getChatMember": self.get_chat_member,
            "getChatAdministrators": self.get_chat_administrators,
            **TopicMethods(self.sender).methods(),
            **PlaceMethods(self.sender).methods(),
            **MediaMethods(self.sender, CONTENT_FIELDS).methods(),
        }
        for kind in MEDIA_KINDS:
            table["send" + kind.title().replace("_", "")] = self._file_sender(kind)
        self._methods = {name.lower(): (name, handler) for name, handler in table.items()}

    def canonical_name(self, method: str) -> str | None:
        """The documented spelling of a method name, or None if unknown."""
        entry = self._methods.get(method.lower())
        return entry[0] if entry else None

    async def call(self, method: str, token: str, params: Params) -> Any:
        """Run a method and return its `result`; errors are raised as ApiError."""
        entry = self._methods.get(method.lower())
        if entry is None:
            raise not_found()
        name, handler = entry
        self.state.bot = self.state.bot_user(token)
        return await handler(Call(name, params, self.state.bot))

    # --- sending ---------------------------------------------------------

    async def send_message(self, call: Call) -> JSON:
        """sendMessage."""
        chat = self.sender.writable_chat(call.params)
        formatted = message_text(call.params)
        markup, echo = reply_markup(call.params)
        where = placement(call.params, chat)
        message = self.sender.emit(call, chat, where, text_content(formatted), echo)
        self.sender.log_sent(call, message, markup)
        return message

    def _file_sender(self, kind: str) -> Handler:
        async def send_file(call: Call) -> JSON:
            return await self._send_file(call, kind)

        return send_file

    async def _send_file(self, call: Call, kind: str) -> JSON:
        """sendPhoto, sendDocument, sendVoice, sendSticker, sendVideoNote and the like."""
        chat = self.sender.writable_chat(call.params)
        described_caption = caption_content(caption(call.params)) if kind in CAPTIONED_KINDS else {}
        markup, echo = reply_markup(call.params)
        where = placement(call.params, chat)
        media, file_info = self.sender.media(call.params, kind)
        content = {**media_fields(kind, media), **described_caption}
        message = self.sender.emit(call, chat, where, content, echo)
        self.sender.log_sent(call, message, markup, file=file_info)
        return message

    def _source_message(self, params: Params, missing: str) -> tuple[JSON, JSON]:
        """The message to copy or forward, and its content fields."""
        source_chat = find_chat(self.state, params, "from_chat_id")
        source = find_message(source_chat, params.require_int("message_id"), missing)
        content = {key: copy.deepcopy(source[key]) for key in CONTENT_FIELDS if key in source}
        if not content:
            raise bad_request("message can't be copied")
        return source, content

    async def copy_message(self, call: Call) -> JSON:
        """copyMessage: same content, no link to the original; returns a MessageId."""
        chat = self.sender.writable_chat(call.params)
        source, content = self._source_message(call.params, "message to copy not found")
        # A new caption (an empty one removes it) applies to media that take captions, not to stickers or text.
        if any(kind in content for kind in CAPTIONED_KINDS) and call.params.given("caption"):
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(caption_content(caption(call.params)))
        markup, echo = reply_markup(call.params)
        where = placement(call.params, chat)
        message = self.sender.emit(call, chat, where, content, echo)
        self.sender.log_sent(call, message, markup, source=_source_ref(source))
        return {"message_id": message["message_id"]}

    async def forward_message(self, call: Call) -> JSON:
        """forwardMessage: same content with its forward_origin."""
        chat = self.sender.writable_chat(call.params)
        source, content = self._source_message(call.params, "message to forward not found")
        content["forward_origin"] = source.get("forward_origin") or {
            "type": "user",
            "sender_user": source["from"],
            "date": source["date"],
        }
        where = Placement(_thread_id(chat, call.params), None)
        message = self.sender.emit(call, chat, where, content, None)
        self.sender.log_sent(call, message, None, source=_source_ref(source))
        return message

    async def send_chat_action(self, call: Call) -> bool:
        """sendChatAction: checked, then only logged."""
        chat = self.sender.writable_chat(call.params)
        if call.params.get_str("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        topic_for_send(chat, call.params.get_int("message_thread_id"))
        return True

    async def answer_callback_query(self, call: Call) -> bool:
        """answerCallbackQuery: each query can be answered once."""
        params = call.params
        record = self.state.callbacks.get(params.get_str("callback_query_id") or "")
        if record is None or record["answered"]:
            raise bad_request(_QUERY_INVALID)
        text = params.get_str("text")
        if text and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        record["answered"] = True
        record["answer"] = {
            "text": text,
            "show_alert": params.get_bool("show_alert"),
            "url": params.get_str("url"),
            "cache_time": params.get_int("cache_time") or 0,
            "time": clock.now().timestamp(),
        }
        self.state.changed.notify()
        return True

    # --- editing and deleting ------------------------------------------

    async def edit_message_text(self, call: Call) -> JSON:
        """editMessageText."""
        message = self.sender.own_message(call)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        formatted = message_text(call.params)
        changes = {"text": formatted.text, "entities": formatted.entities or None}
        return self.sender.apply_edit(call, message, changes)

    async def edit_message_reply_markup(self, call: Call) -> JSON:
        """editMessageReplyMarkup."""
        return self.sender.apply_edit(call, self.sender.own_message(call), {})

    async def delete_message(self, call: Call) -> bool:
        """deleteMessage: own messages anywhere, others' in groups with the right."""
        chat = find_chat(self.state, call.params)
        message_id = call.params.require_int("message_id")
        message = find_message(chat, message_id, "message to delete not found")
        is_own = message["from"]["id"] == call.bot["id"]
        if not (is_own or chat.is_private or chats.bot_can(chat, "can_delete_messages")):
            raise bad_request("message can't be deleted")
        del chat.messages[message_id]
        return True

    # --- files and chats ------------------------------------------------

    async def get_file(self, call: Call) -> JSON:
        """getFile: assigns the download path."""
        stored = self.state.files.get(call.params.get_str("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": self.state.files.assign_path(stored),
        }

    async def get_chat(self, call: Call) -> JSON:
        """getChat."""
        return chats.full_info(find_chat(self.state, call.params))

    async def get_chat_member(self, call: Call) -> JSON:
        """getChatMember."""
        chat = find_chat(self.state, call.params)
        return chats.chat_member(self.state, chat, call.params.require_int("user_id"), call.bot)

    async def get_chat_administrators(self, call: Call) -> list[JSON]:
        """getChatAdministrators."""
        chat = find_chat(self.state, call.params)
        return chats.administrators(self.state, chat, call.bot)


def _thread_id(chat: Chat, params: Params) -> int | None:
    """The open topic named by message_thread_id, as a thread id."""
    topic = topic_for_send(chat, params.get_int("message_thread_id"))
    return topic.thread_id if topic else None


def _source_ref(source: JSON) -> JSON:
    return {"chat_id": source["chat"]["id"], "message_id": source["message_id"]}
