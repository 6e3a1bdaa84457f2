"""Forum topics in supergroups."""

from bot.emulator.chats import bot_can
from bot.emulator.errors import bad_request
from bot.emulator.params import Params
from bot.emulator.state import JSON, Chat, Topic

TOPIC_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
MAX_TOPIC_NAME_LENGTH = 128


def _require_forum(chat: Chat) -> None:
    if not chat.is_forum:
        raise bad_request("the chat is not a forum")


def _require_right(chat: Chat, right: str) -> None:
    if not bot_can(chat, right):
        raise bad_request("CHAT_ADMIN_REQUIRED")


def _topic(chat: Chat, params: Params) -> Topic:
    _require_forum(chat)
    topic = chat.topics.get(params.require_int("message_thread_id"))
    if topic is None:
        raise bad_request("TOPIC_ID_INVALID")
    return topic


def _topic_name(name: str) -> str:
    if not name:
        raise bad_request("TOPIC_TITLE_EMPTY")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise bad_request("TOPIC_TITLE_TOO_LONG")
    return name


def _service_message(chat: Chat, topic: Topic, bot: JSON, content: JSON) -> None:
    chat.compose(bot, content, thread_id=topic.thread_id)


def create(chat: Chat, params: Params, bot: JSON) -> Topic:
    """createForumTopic: the topic id is the id of its creation message."""
    _require_forum(chat)
    if not bot_can(chat, "can_manage_topics"):
        raise bad_request("not enough rights to create a topic")
    name = _topic_name(params.get_str("name") or "")
    color = params.get_int("icon_color") or TOPIC_COLORS[0]
    if color not in TOPIC_COLORS:
        raise bad_request("TOPIC_COLOR_INVALID")
    topic = Topic(0, name, color, params.get_str("icon_custom_emoji_id") or None)
    created: JSON = {"name": name, "icon_color": color}
    if topic.icon_custom_emoji_id:
        created["icon_custom_emoji_id"] = topic.icon_custom_emoji_id
    message = chat.compose(bot, {"forum_topic_created": created})
    topic.thread_id = message["message_id"]
    message["message_thread_id"] = topic.thread_id
    message["is_topic_message"] = True
    chat.topics[topic.thread_id] = topic
    return topic


def edit(chat: Chat, params: Params, bot: JSON) -> None:
    """editForumTopic: new name and/or icon."""
    topic = _topic(chat, params)
    _require_right(chat, "can_manage_topics")
    changes: JSON = {}
    if params.has("name") and params.get_str("name") != topic.name:
        changes["name"] = _topic_name(params.get_str("name") or "")
    if params.get_str("icon_custom_emoji_id") is not None:
        emoji = params.get_str("icon_custom_emoji_id") or None
        if emoji != topic.icon_custom_emoji_id:
            changes["icon_custom_emoji_id"] = emoji or ""
    if not changes:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.name = changes.get("name", topic.name)
    if "icon_custom_emoji_id" in changes:
        topic.icon_custom_emoji_id = changes["icon_custom_emoji_id"] or None
    _service_message(chat, topic, bot, {"forum_topic_edited": changes})


def set_closed(chat: Chat, params: Params, bot: JSON, closed: bool) -> None:
    """closeForumTopic / reopenForumTopic."""
    topic = _topic(chat, params)
    _require_right(chat, "can_manage_topics")
    if topic.closed == closed:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.closed = closed
    event = "forum_topic_closed" if closed else "forum_topic_reopened"
    _service_message(chat, topic, bot, {event: {}})


def delete(chat: Chat, params: Params) -> None:
    """deleteForumTopic: the topic goes with all its messages."""
    topic = _topic(chat, params)
    _require_right(chat, "can_delete_messages")
    del chat.topics[topic.thread_id]
    chat.messages = {
        message_id: message
        for message_id, message in chat.messages.items()
        if message.get("message_thread_id") != topic.thread_id
    }
