"""What every sending and editing method shares: the call, flood limits, files, storing and logging messages."""

import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot import clock
from bot.emulator.errors import bad_request, too_many_requests
from bot.emulator.media import default_meta, placeholder_bytes
from bot.emulator.outgoing import Placement, check_writable, find_chat, find_message, reply_markup
from bot.emulator.params import Params, Upload
from bot.emulator.state import JSON, Chat, EmulatorState

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


@dataclass(frozen=True)
class Call:
    """One Bot API request: canonical method name, parameters and the calling bot."""

    method: str
    params: Params
    bot: JSON


Handler = Callable[[Call], Awaitable[Any]]


class Sender:
    """The bot's side of a chat: checks, flood limits, files, new and edited messages, the sent log."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def writable_chat(self, params: Params) -> Chat:
        """The chat named by chat_id, if the bot may write there."""
        chat = find_chat(self.state, params)
        check_writable(chat)
        return chat

    def charge(self, chat: Chat, count: int = 1) -> None:
        """Count `count` new messages against the flood limits, or refuse them all with a 429."""
        retry_after = self.state.limiter.acquire(chat.id, chat.is_private, count)
        if retry_after is not None:
            raise too_many_requests(retry_after)

    def emit(self, call: Call, chat: Chat, where: Placement, content: JSON, echo: JSON | None) -> JSON:
        """Apply flood limits, then store the bot's new message."""
        self.charge(chat)
        return chat.compose(call.bot, content, where.thread_id, where.reply_to, echo)

    def log_sent(self, call: Call, message: JSON, markup: JSON | None, **extra: Any) -> None:
        """Record a sent or edited message in the sent log."""
        reply = message.get("reply_to_message")
        self.state.record_sent(
            {
                "method": call.method,
                "chat_id": message["chat"]["id"],
                "message_id": message["message_id"],
                "message_thread_id": message.get("message_thread_id"),
                "text": message.get("text"),
                "caption": message.get("caption"),
                "entities": message.get("entities") or message.get("caption_entities") or [],
                "parse_mode": call.params.get_str("parse_mode"),
                "reply_markup": markup,
                "reply_to_message_id": reply["message_id"] if reply else None,
                "disable_notification": call.params.get_bool("disable_notification"),
                "time": clock.now().timestamp(),
                "message": message,
                **extra,
            }
        )

    def media(self, params: Params, kind: str, name: str | None = None) -> tuple[Any, JSON]:
        """The media object for a send: an upload, a known file_id or a URL, in parameter `name` (default: kind)."""
        name = name or kind
        upload = params.upload(name)
        if upload is not None:
            return self._store(kind, upload.data, params, upload)
        reference = params.get_str(name)
        if not reference:
            raise bad_request(f"there is no {kind} in the request")
        if reference.lower().startswith(("http://", "https://")):
            # Telegram would fetch the URL; offline, the file gets placeholder bytes.
            media, info = self._store(kind, placeholder_bytes(kind), params, None)
            return media, {**info, "url": reference}
        known = self.state.files.get(reference)
        if known is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if known.kind != kind:
            raise bad_request("type of file mismatch")
        media = self.state.files.photo_set(reference) if kind == "photo" else known.describe()
        return media, file_info(kind, media)

    def _store(self, kind: str, data: bytes, params: Params, upload: Upload | None) -> tuple[Any, JSON]:
        files = self.state.files
        if kind == "photo":
            sizes = files.add_photo(data)
            return sizes, file_info(kind, sizes)
        options = {
            "file_name": upload.filename if upload else None,
            "mime_type": _upload_mime_type(upload),
            "duration": params.get_int("duration"),
            "width": params.get_int("width"),
            "height": params.get_int("height"),
            "emoji": params.get_str("emoji"),
            "length": params.get_int("length"),
        }
        described = files.add(kind, data, default_meta(kind, data, options)).describe()
        return described, file_info(kind, described)

    def own_message(self, call: Call) -> JSON:
        """The bot's message named by chat_id and message_id, open for editing."""
        if call.params.has("inline_message_id"):
            raise bad_request("inline messages are not supported by the emulator")
        chat = find_chat(self.state, call.params)
        message_id = call.params.require_int("message_id")
        message = find_message(chat, message_id, "message to edit not found")
        if message["from"]["id"] != call.bot["id"]:
            raise bad_request("message can't be edited")
        check_writable(chat)
        return message

    def apply_edit(self, call: Call, message: JSON, changes: JSON, **extra: Any) -> JSON:
        """Replace content and keyboard; an edit without reply_markup removes the keyboard."""
        markup, echo = reply_markup(call.params)
        before = {key: message.get(key) for key in changes} | {"reply_markup": message.get("reply_markup")}
        after = changes | {"reply_markup": echo}
        if before == after:
            raise bad_request(_NOT_MODIFIED)
        for key, value in after.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(clock.now().timestamp())
        self.log_sent(call, message, markup, **extra)
        return message


def file_info(kind: str, media: Any) -> JSON:
    """The sent log's summary of a file; for photos, the largest size."""
    described = media[-1] if isinstance(media, list) else media
    info = {
        "kind": kind,
        "file_id": described["file_id"],
        "file_unique_id": described["file_unique_id"],
        "size": described.get("file_size"),
    }
    for key in ("file_name", "mime_type", "width", "height", "duration", "emoji"):
        if key in described:
            info[key] = described[key]
    return info


def _upload_mime_type(upload: Upload | None) -> str | None:
    """What Telegram would detect: the declared type if meaningful, else by file name."""
    if upload is None:
        return None
    if upload.content_type and upload.content_type != "application/octet-stream":
        return upload.content_type
    return mimetypes.guess_type(upload.filename)[0]
