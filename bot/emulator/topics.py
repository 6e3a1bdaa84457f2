"""Forum topics in supergroups: the Bot API's topic methods, and admins handling topics in Telegram's apps.

Creating, renaming, closing and reopening a topic each post a service message in the topic (forum_topic_created,
forum_topic_edited, forum_topic_closed, forum_topic_reopened); a bot's count toward the group's flood limit, as
Telegram counts them.
"""

import copy

from bot.emulator.chats import bot_can, is_admin
from bot.emulator.errors import ApiError, ControlError, bad_request
from bot.emulator.members import bot_is_in
from bot.emulator.outgoing import find_chat
from bot.emulator.params import Params
from bot.emulator.sender import Call, Handler, Sender
from bot.emulator.state import JSON, Chat, EmulatorState, Topic

TOPIC_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
MAX_TOPIC_NAME_LENGTH = 128
USER_TOPIC_ACTIONS = ("create", "edit", "close", "reopen")


def _require_forum(chat: Chat) -> None:
    if not chat.is_forum:
        raise bad_request("the chat is not a forum")


def _require_right(chat: Chat, right: str) -> None:
    if not bot_can(chat, right):
        raise bad_request("CHAT_ADMIN_REQUIRED")


def _topic(chat: Chat, thread_id: int) -> Topic:
    _require_forum(chat)
    topic = chat.topics.get(thread_id)
    if topic is None:
        raise bad_request("TOPIC_ID_INVALID")
    return topic


def _topic_name(name: str) -> str:
    if not name:
        raise bad_request("TOPIC_TITLE_EMPTY")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise bad_request("TOPIC_TITLE_TOO_LONG")
    return name


def _new_topic(params: Params) -> Topic:
    """A topic as createForumTopic's parameters describe it, not yet in any chat."""
    name = _topic_name(params.get_str("name") or "")
    color = params.get_int("icon_color") or TOPIC_COLORS[0]
    if color not in TOPIC_COLORS:
        raise bad_request("TOPIC_COLOR_INVALID")
    return Topic(0, name, color, params.get_str("icon_custom_emoji_id") or None)


def _edits(topic: Topic, params: Params) -> JSON:
    """What editForumTopic changes: the name and/or the icon (an empty one removes it)."""
    changes: JSON = {}
    if params.has("name") and params.get_str("name") != topic.name:
        changes["name"] = _topic_name(params.get_str("name") or "")
    if params.get_str("icon_custom_emoji_id") is not None:
        emoji = params.get_str("icon_custom_emoji_id") or None
        if emoji != topic.icon_custom_emoji_id:
            changes["icon_custom_emoji_id"] = emoji or ""
    if not changes:
        raise bad_request("TOPIC_NOT_MODIFIED")
    return changes


def _check_closing(topic: Topic, closed: bool) -> None:
    if topic.closed == closed:
        raise bad_request("TOPIC_NOT_MODIFIED")


def _open(chat: Chat, actor: JSON, topic: Topic) -> JSON:
    """Add the topic to the chat; its id is the id of its creation message, which is returned."""
    created: JSON = {"name": topic.name, "icon_color": topic.icon_color}
    if topic.icon_custom_emoji_id:
        created["icon_custom_emoji_id"] = topic.icon_custom_emoji_id
    message = chat.compose(actor, {"forum_topic_created": created})
    topic.thread_id = message["message_id"]
    message["message_thread_id"] = topic.thread_id
    message["is_topic_message"] = True
    chat.topics[topic.thread_id] = topic
    return message


def _rename(chat: Chat, actor: JSON, topic: Topic, changes: JSON) -> JSON:
    topic.name = changes.get("name", topic.name)
    if "icon_custom_emoji_id" in changes:
        topic.icon_custom_emoji_id = changes["icon_custom_emoji_id"] or None
    return chat.compose(actor, {"forum_topic_edited": changes}, thread_id=topic.thread_id)


def _close(chat: Chat, actor: JSON, topic: Topic, closed: bool) -> JSON:
    topic.closed = closed
    event = "forum_topic_closed" if closed else "forum_topic_reopened"
    return chat.compose(actor, {event: {}}, thread_id=topic.thread_id)


class TopicMethods:
    """createForumTopic, editForumTopic, closeForumTopic, reopenForumTopic and deleteForumTopic."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    def methods(self) -> dict[str, Handler]:
        """Method names and their handlers."""
        return {
            "createForumTopic": self.create_forum_topic,
            "editForumTopic": self.edit_forum_topic,
            "closeForumTopic": self.close_forum_topic,
            "reopenForumTopic": self.reopen_forum_topic,
            "deleteForumTopic": self.delete_forum_topic,
        }

    def _managed_topic(self, call: Call) -> tuple[Chat, Topic]:
        chat = find_chat(self.sender.state, call.params)
        topic = _topic(chat, call.params.require_int("message_thread_id"))
        _require_right(chat, "can_manage_topics")
        return chat, topic

    async def create_forum_topic(self, call: Call) -> JSON:
        """createForumTopic: the topic id is the id of its creation message."""
        chat = find_chat(self.sender.state, call.params)
        _require_forum(chat)
        if not bot_can(chat, "can_manage_topics"):
            raise bad_request("not enough rights to create a topic")
        topic = _new_topic(call.params)
        self.sender.charge(chat)
        _open(chat, call.bot, topic)
        return topic.as_json()

    async def edit_forum_topic(self, call: Call) -> bool:
        """editForumTopic: new name and/or icon."""
        chat, topic = self._managed_topic(call)
        changes = _edits(topic, call.params)
        self.sender.charge(chat)
        _rename(chat, call.bot, topic, changes)
        return True

    async def close_forum_topic(self, call: Call) -> bool:
        """closeForumTopic: from now on only administrators write there."""
        return self._set_closed(call, closed=True)

    async def reopen_forum_topic(self, call: Call) -> bool:
        """reopenForumTopic."""
        return self._set_closed(call, closed=False)

    def _set_closed(self, call: Call, closed: bool) -> bool:
        chat, topic = self._managed_topic(call)
        _check_closing(topic, closed)
        self.sender.charge(chat)
        _close(chat, call.bot, topic, closed)
        return True

    async def delete_forum_topic(self, call: Call) -> bool:
        """deleteForumTopic: the topic goes with all its messages."""
        chat = find_chat(self.sender.state, call.params)
        topic = _topic(chat, call.params.require_int("message_thread_id"))
        _require_right(chat, "can_delete_messages")
        del chat.topics[topic.thread_id]
        chat.messages = {
            message_id: message
            for message_id, message in chat.messages.items()
            if message.get("message_thread_id") != topic.thread_id
        }
        return True


def _act(chat: Chat, actor: JSON, action: str, params: Params) -> tuple[Topic, JSON]:
    """Do a user's topic action; returns the topic and the service message."""
    if action == "create":
        topic = _new_topic(params)
        return topic, _open(chat, actor, topic)
    topic = _topic(chat, params.require_int("message_thread_id"))
    if action == "edit":
        return topic, _rename(chat, actor, topic, _edits(topic, params))
    _check_closing(topic, action == "close")
    return topic, _close(chat, actor, topic, action == "close")


def user_topic_action(state: EmulatorState, chat: Chat, user_id: int, body: JSON) -> JSON:
    """An administrator creates, renames, closes or reopens a topic in Telegram's app: `{action, message_thread_id?,
    name?, icon_color?}`; the bot gets the service message as a `message` update (if it is in the group)."""
    action = body.get("action")
    if action not in USER_TOPIC_ACTIONS:
        raise ControlError(f"action must be one of {', '.join(USER_TOPIC_ACTIONS)}")
    if not chat.is_forum:
        raise ControlError(f"chat {chat.id} is not a forum")
    if not is_admin(chat, user_id):
        raise ControlError(f"user {user_id} is not an administrator of chat {chat.id}", status=403)
    try:
        topic, message = _act(chat, state.users[user_id].as_json(), action, Params(body))
    except ApiError as error:
        raise ControlError(error.description.removeprefix("Bad Request: ")) from None
    update_id = None
    if bot_is_in(chat):
        update_id = state.push_update("message", copy.deepcopy(message))["update_id"]
    return {"update_id": update_id, "message": message, "topic": {**topic.as_json(), "is_closed": topic.closed}}
