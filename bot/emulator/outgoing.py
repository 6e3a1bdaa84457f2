"""Checks Telegram applies to what a bot sends: text, captions, keyboards, placement."""

import re
from dataclasses import dataclass
from typing import Any

from bot.emulator.chats import bot_can
from bot.emulator.entities import FormattedText
from bot.emulator.errors import bad_request, forbidden
from bot.emulator.markup import format_text
from bot.emulator.params import Params
from bot.emulator.state import JSON, Chat, EmulatorState, Topic

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_BUTTON_URL = re.compile(r"^(https?|tg)://\S+$", re.IGNORECASE)


def message_text(params: Params) -> FormattedText:
    """The `text` of sendMessage/editMessageText after parsing, checked for length."""
    formatted = format_text(params.get_str("text") or "", params.get_str("parse_mode"), params.get_json("entities"))
    if not formatted.text:
        raise bad_request("message text is empty")
    if len(formatted.text) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    return formatted


def caption(params: Params) -> FormattedText | None:
    """The optional caption after parsing, checked for length."""
    raw = params.get_str("caption")
    if not raw:
        return None
    formatted = format_text(raw, params.get_str("parse_mode"), params.get_json("caption_entities"))
    if len(formatted.text) > MAX_CAPTION_LENGTH:
        raise bad_request("message caption is too long")
    return formatted if formatted.text else None


def text_content(formatted: FormattedText) -> JSON:
    """Message fields for a text message."""
    content: JSON = {"text": formatted.text}
    if formatted.entities:
        content["entities"] = formatted.entities
    return content


def caption_content(formatted: FormattedText | None) -> JSON:
    """Message fields for a caption, empty when there is none."""
    if formatted is None or not formatted.text:
        return {}
    content: JSON = {"caption": formatted.text}
    if formatted.entities:
        content["caption_entities"] = formatted.entities
    return content


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text must be a String")
    if not button["text"]:
        raise bad_request("BUTTON_TEXT_INVALID")
    if not any(action in button for action in _BUTTON_ACTIONS):
        raise bad_request("text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        size = len(data.encode("utf-8")) if isinstance(data, str) else 0
        if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not _BUTTON_URL.match(str(button["url"])):
        raise bad_request("BUTTON_URL_INVALID")


def _rows(markup: JSON, field: str, kind: str) -> list[list[Any]]:
    rows = markup[field]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{field}" of the {kind} must be an Array of Arrays')
    return rows


def reply_markup(params: Params) -> tuple[JSON | None, JSON | None]:
    """The validated reply_markup, and the part echoed in Message.reply_markup."""
    # Only inline keyboards are echoed: Telegram never returns reply keyboards.
    markup = params.get_json("reply_markup")
    if markup is None:
        return None, None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        for row in _rows(markup, "inline_keyboard", "InlineKeyboardMarkup"):
            for button in row:
                _check_inline_button(button)
        return markup, markup
    if "keyboard" in markup:
        for row in _rows(markup, "keyboard", "ReplyKeyboardMarkup"):
            if not all(isinstance(button, str | dict) for button in row):
                raise bad_request("can't parse keyboard button")
        return markup, None
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return markup, None
    raise bad_request("can't parse reply keyboard markup JSON object")


def callback_buttons(markup: JSON | None) -> set[str]:
    """The callback_data values of an inline keyboard."""
    if not markup or "inline_keyboard" not in markup:
        return set()
    return {button["callback_data"] for row in markup["inline_keyboard"] for button in row if "callback_data" in button}


def check_writable(chat: Chat) -> None:
    """Refuse writing to a group the bot is not in, or to a private chat whose user blocked or never started it."""
    if chat.bot_status == "kicked":
        raise forbidden(f"bot was kicked from the {chat.type} chat")
    if chat.bot_status == "left":
        raise forbidden(f"bot is not a member of the {chat.type} chat")
    if chat.user is None:
        return
    if chat.user.blocked:
        raise forbidden("bot was blocked by the user")
    if not chat.user.started:
        raise forbidden("bot can't initiate conversation with a user")


def find_chat(state: EmulatorState, params: Params, name: str = "chat_id") -> Chat:
    """The chat named by a parameter, or Telegram's `chat not found`."""
    chat = state.find_chat(params.require_chat_id(name))
    if chat is None:
        raise bad_request("chat not found")
    return chat


def find_message(chat: Chat, message_id: int, missing: str) -> JSON:
    """A message of the chat, or a 400 with the given description."""
    message = chat.messages.get(message_id)
    if message is None:
        raise bad_request(missing)
    return message


def topic_for_send(chat: Chat, thread_id: int | None) -> Topic | None:
    """The forum topic a message goes to; None for the chat itself or General.

    In a closed topic only administrators write: the bot needs the can_manage_topics right.
    """
    if thread_id is None:
        return None
    topic = chat.topics.get(thread_id) if chat.is_forum else None
    if topic is None:
        raise bad_request("message thread not found")
    if topic.closed and not bot_can(chat, "can_manage_topics"):
        raise bad_request("TOPIC_CLOSED")
    return topic


@dataclass
class Placement:
    """Where a new message goes: its topic and the message it replies to."""

    thread_id: int | None
    reply_to: JSON | None


def _reply_request(params: Params, chat: Chat) -> tuple[int | None, bool]:
    """The replied-to message id and whether a missing one may be ignored."""
    parameters = params.get_json("reply_parameters")
    allow_missing = params.get_bool("allow_sending_without_reply")
    if parameters is None:
        return params.get_int("reply_to_message_id"), allow_missing
    if not isinstance(parameters, dict) or not isinstance(parameters.get("message_id"), int):
        raise bad_request("can't parse reply parameters JSON object")
    other_chat = parameters.get("chat_id")
    if other_chat is not None and str(other_chat) != str(chat.id):
        raise bad_request("replies to messages in other chats are not supported by the emulator")
    return parameters["message_id"], bool(parameters.get("allow_sending_without_reply"))


def placement(params: Params, chat: Chat) -> Placement:
    """The topic and reply target of a message being sent."""
    topic = topic_for_send(chat, params.get_int("message_thread_id"))
    reply_id, allow_missing = _reply_request(params, chat)
    reply_to = chat.messages.get(reply_id) if reply_id is not None else None
    if reply_id is not None and reply_to is None and not allow_missing:
        raise bad_request("message to be replied not found")
    thread_id = topic.thread_id if topic else None
    if thread_id is None and reply_to is not None and reply_to.get("is_topic_message"):
        # A reply lands in the replied message's topic.
        inherited = topic_for_send(chat, reply_to["message_thread_id"])
        thread_id = inherited.thread_id if inherited else None
    return Placement(thread_id, reply_to)
