"""Control operations for tests: build the world and act as its users."""

import base64
import binascii
import copy
import hashlib
import mimetypes
from typing import Any

from bot import clock
from bot.emulator.albums import album_problem, new_media_group_id
from bot.emulator.chats import is_admin
from bot.emulator.errors import ControlError
from bot.emulator.markup import detect_entities
from bot.emulator.media import CAPTIONED_KINDS, MEDIA_KINDS, default_meta, media_fields, placeholder_bytes
from bot.emulator.members import bot_is_in
from bot.emulator.outgoing import callback_buttons
from bot.emulator.state import JSON, Chat, EmulatorState, User
from bot.emulator.topics import user_topic_action

MESSAGE_KINDS = ("text", "location", "venue", "contact", *MEDIA_KINDS)
SUPERGROUP_ID_BASE = 1_000_000_000
GROUP_ID_BASE = 400_000_000
CALLBACK_ID_BASE = 4_300_000_000_000_000_000


def _int(body: JSON, name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        raise ControlError(f"{name} is required")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(f"{name} must be an integer") from None


def _ids(body: JSON, name: str) -> set[int]:
    values = body.get(name) or []
    if not isinstance(values, list):
        raise ControlError(f"{name} must be a list of user ids")
    return {_int({name: value}, name) for value in values}


def _user(state: EmulatorState, user_id: int) -> User:
    user = state.users.get(user_id)
    if user is None:
        raise ControlError(f"unknown user {user_id}", status=404)
    return user


def _chat(state: EmulatorState, chat_id: int) -> Chat:
    chat = state.chats.get(chat_id)
    if chat is None:
        raise ControlError(f"unknown chat {chat_id}", status=404)
    return chat


def add_user(state: EmulatorState, body: JSON) -> JSON:
    """Create a user and the private chat with the bot (same id)."""
    first_name = body.get("first_name")
    if not isinstance(first_name, str) or not first_name:
        raise ControlError("first_name is required")
    user_id = _int(body, "id") if body.get("id") is not None else state.next_id("user")
    if user_id <= 0:
        raise ControlError("user ids are positive")
    if user_id in state.users:
        raise ControlError(f"user {user_id} already exists", status=409)
    user = User(
        id=user_id,
        first_name=first_name,
        last_name=body.get("last_name"),
        username=body.get("username"),
        language_code=body.get("language_code"),
        started=bool(body.get("started", True)),
    )
    state.users[user_id] = user
    state.chats[user_id] = Chat(id=user_id, type="private", user=user)
    return user.as_json()


def set_blocked(state: EmulatorState, user_id: int, blocked: bool) -> JSON:
    """Block or unblock the bot; Telegram tells the bot with a my_chat_member update."""
    user = _user(state, user_id)
    if user.blocked != blocked:
        user.blocked = blocked
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        state.push_update(
            "my_chat_member",
            {
                "chat": state.chats[user_id].as_json(),
                "from": user.as_json(),
                "date": int(clock.now().timestamp()),
                "old_chat_member": _bot_status(state, old),
                "new_chat_member": _bot_status(state, new),
            },
        )
    return {**user.as_json(), "blocked": user.blocked}


def _bot_status(state: EmulatorState, status: str) -> JSON:
    member: JSON = {"status": status, "user": state.bot}
    if status == "kicked":
        member["until_date"] = 0
    return member


def _group_id(state: EmulatorState, chat_type: str) -> int:
    number = state.next_id("group")
    if chat_type == "supergroup":
        return -int(f"100{SUPERGROUP_ID_BASE + number}")
    return -(GROUP_ID_BASE + number)


def add_group(state: EmulatorState, body: JSON) -> JSON:
    """Create a group or supergroup (optionally a forum) that the bot is in."""
    title = body.get("title")
    if not isinstance(title, str) or not title:
        raise ControlError("title is required")
    chat_type = body.get("type", "supergroup")
    if chat_type not in ("group", "supergroup"):
        raise ControlError("type must be group or supergroup")
    is_forum = bool(body.get("is_forum", False))
    if is_forum and chat_type != "supergroup":
        raise ControlError("only supergroups can be forums")
    admins = _ids(body, "admins")
    members = _ids(body, "members") | admins
    owner_id = body.get("owner_id")
    if owner_id is not None:
        members.add(_int(body, "owner_id"))
    for user_id in members:
        _user(state, user_id)
    bot_rights = body.get("bot_rights")
    if bot_rights is not None and not isinstance(bot_rights, dict):
        raise ControlError("bot_rights must be an object")
    chat = Chat(
        id=_group_id(state, chat_type),
        type=chat_type,
        title=title,
        username=body.get("username"),
        is_forum=is_forum,
        members=members,
        admins=admins,
        owner_id=None if owner_id is None else int(owner_id),
        bot_rights=bot_rights,
    )
    state.chats[chat.id] = chat
    return chat.as_json()


def _sender_chat(state: EmulatorState, user: User, body: JSON) -> Chat:
    chat = _chat(state, _int(body, "chat_id", user.id))
    if chat.is_private:
        if chat.id != user.id:
            raise ControlError("a user can only write to the bot in their own private chat")
        if user.blocked:
            raise ControlError(f"user {user.id} has blocked the bot; unblock first", status=409)
    elif user.id not in chat.members:
        raise ControlError(f"user {user.id} is not a member of chat {chat.id}")
    elif not chat.restricted.get(user.id, {"can_send_messages": True}).get("can_send_messages"):
        raise ControlError(f"user {user.id} is restricted from sending messages in chat {chat.id}", status=403)
    return chat


def _deliver(state: EmulatorState, chat: Chat, kind: str, payload: JSON) -> int | None:
    """Queue the update for the bot and return its id; None when the bot is not in the group to see it."""
    if not chat.is_private and not bot_is_in(chat):
        return None
    update_id: int = state.push_update(kind, copy.deepcopy(payload))["update_id"]
    return update_id


def _formatted(field: str, text: str) -> JSON:
    content: JSON = {field: text}
    entities = detect_entities(text, [])
    if entities:
        content["entities" if field == "text" else "caption_entities"] = entities
    return content


def _file_bytes(body: JSON, kind: str) -> bytes:
    encoded = body.get("content_base64")
    if encoded is None:
        return placeholder_bytes(kind)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ControlError("content_base64 is not valid base64") from None


def _content(state: EmulatorState, kind: str, body: JSON, user: User) -> JSON:
    """The content fields of a user's message of the given kind."""
    if kind == "text":
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise ControlError("text is required for a text message")
        return _formatted("text", text)
    if kind in ("location", "venue"):
        location = {
            "latitude": float(body.get("latitude", 52.5200)),
            "longitude": float(body.get("longitude", 13.4050)),
        }
        if kind == "location":
            return {"location": location}
        venue = {
            "location": location,
            "title": str(body.get("title", "Venue")),
            "address": str(body.get("address", "")),
        }
        # A venue message carries its location too, as the Bot API keeps it.
        return {"venue": venue, "location": location}
    if kind == "contact":
        contact = body.get("contact") or {
            "phone_number": "+10000000000",
            "first_name": user.first_name,
            "user_id": user.id,
        }
        return {"contact": contact}
    data = _file_bytes(body, kind)
    if kind == "photo":
        media: Any = state.files.add_photo(data)
    else:
        # A user's app names a file's type by its extension.
        guessed = mimetypes.guess_type(str(body.get("file_name") or ""))[0] if kind == "document" else None
        options = {**body, "mime_type": body.get("mime_type") or guessed}
        media = state.files.add(kind, data, default_meta(kind, data, options)).describe()
    content: JSON = media_fields(kind, media)
    if body.get("caption") and kind in CAPTIONED_KINDS:
        content.update(_formatted("caption", str(body["caption"])))
    return content


def _thread_for_user(chat: Chat, user: User, thread_id: int | None) -> int | None:
    """The topic a user writes in; a closed one takes only administrators' messages, as Telegram's apps enforce."""
    if thread_id is None:
        return None
    topic = chat.topics.get(thread_id)
    if topic is None:
        raise ControlError(f"chat {chat.id} has no topic {thread_id}")
    if topic.closed and not is_admin(chat, user.id):
        raise ControlError(f"topic {thread_id} is closed: only administrators can write there", status=403)
    return thread_id


def _placement(chat: Chat, user: User, body: JSON) -> tuple[int | None, JSON | None]:
    """The topic and replied-to message of a user's new message."""
    thread_id = None if body.get("message_thread_id") is None else _int(body, "message_thread_id")
    reply_to = None
    if body.get("reply_to_message_id") is not None:
        reply_to = chat.messages.get(_int(body, "reply_to_message_id"))
        if reply_to is None:
            raise ControlError("reply_to_message_id is not a message of this chat")
        thread_id = thread_id or reply_to.get("message_thread_id")
    return _thread_for_user(chat, user, thread_id), reply_to


def _kind(body: JSON) -> str:
    kind: str = body.get("kind", "text")
    if kind not in MESSAGE_KINDS:
        raise ControlError(f"kind must be one of {', '.join(MESSAGE_KINDS)}")
    return kind


def inject_message(state: EmulatorState, body: JSON) -> JSON:
    """A user sends a message; the bot gets a `message` update (no length limit applies)."""
    user = _user(state, _int(body, "from_id"))
    chat = _sender_chat(state, user, body)
    kind = _kind(body)
    thread_id, reply_to = _placement(chat, user, body)
    content = _content(state, kind, body, user)
    message = chat.compose(user.as_json(), content, thread_id, reply_to)
    return {"update_id": _deliver(state, chat, "message", message), "message": message}


def inject_album(state: EmulatorState, body: JSON) -> JSON:
    """A user sends 2–10 media as one album: one `message` update per item, all with one media_group_id."""
    user = _user(state, _int(body, "from_id"))
    chat = _sender_chat(state, user, body)
    items = body.get("items")
    if not isinstance(items, list) or len(items) < 2 or not all(isinstance(item, dict) for item in items):
        raise ControlError("items must be a list of 2 to 10 objects, one per photo, video, document or audio")
    problem = album_problem([_kind(item) for item in items])
    if problem:
        raise ControlError(problem)
    thread_id, reply_to = _placement(chat, user, body)
    contents = [_content(state, item["kind"], item, user) for item in items]
    media_group_id = new_media_group_id(state)
    messages, update_ids = [], []
    for content in contents:
        message = chat.compose(user.as_json(), {**content, "media_group_id": media_group_id}, thread_id, reply_to)
        update_ids.append(_deliver(state, chat, "message", message))
        messages.append(message)
    return {"update_ids": update_ids, "messages": messages, "media_group_id": media_group_id}


def topic_action(state: EmulatorState, body: JSON) -> JSON:
    """An administrator creates, renames, closes or reopens a topic: `{from_id, chat_id, action, ...}`."""
    user = _user(state, _int(body, "from_id"))
    return user_topic_action(state, _sender_chat(state, user, body), user.id, body)


def inject_edit(state: EmulatorState, body: JSON) -> JSON:
    """A user edits their text message (`text`), or the caption of their photo, video, file… (`caption`, empty to
    remove it); the bot gets an `edited_message` update."""
    chat = _chat(state, _int(body, "chat_id"))
    message = chat.messages.get(_int(body, "message_id"))
    if message is None or message["from"].get("is_bot"):
        raise ControlError("message_id is not a user's message in this chat")
    if "caption" in body:
        new_caption = body.get("caption")
        if not any(kind in message for kind in CAPTIONED_KINDS) or not isinstance(new_caption, str):
            raise ControlError("only a photo, video, document, audio, voice or animation has a caption to edit")
        message.pop("caption", None)
        message.pop("caption_entities", None)
        message.update(_formatted("caption", new_caption) if new_caption else {})
    else:
        text = body.get("text")
        if "text" not in message or not isinstance(text, str) or not text:
            raise ControlError("only text messages can be edited, to a non-empty text")
        message.pop("entities", None)
        message.update(_formatted("text", text))
    message["edit_date"] = int(clock.now().timestamp())
    return {"update_id": _deliver(state, chat, "edited_message", message), "message": message}


def _chat_instance(chat_id: int) -> str:
    """A stable opaque id per chat, as Telegram gives in callback queries."""
    digest = hashlib.sha256(str(chat_id).encode()).digest()
    return str(-int.from_bytes(digest[:8], "big") // 2)


def inject_callback(state: EmulatorState, body: JSON) -> JSON:
    """A user presses an inline button of a bot message; the bot gets a `callback_query`."""
    user = _user(state, _int(body, "from_id"))
    chat = _chat(state, _int(body, "chat_id", user.id))
    message = chat.messages.get(_int(body, "message_id"))
    if message is None or not message["from"].get("is_bot"):
        raise ControlError("message_id is not a bot message in this chat")
    data = body.get("data")
    if not isinstance(data, str) or not data:
        raise ControlError("data is required")
    if not body.get("force") and data not in callback_buttons(message.get("reply_markup")):
        raise ControlError("the message has no inline button with this callback_data")
    query_id = str(CALLBACK_ID_BASE + state.next_id("callback"))
    query = {
        "id": query_id,
        "from": user.as_json(),
        "message": copy.deepcopy(message),
        "chat_instance": _chat_instance(chat.id),
        "data": data,
    }
    state.callbacks[query_id] = {
        "callback_query_id": query_id,
        "from_id": user.id,
        "chat_id": chat.id,
        "message_id": message["message_id"],
        "data": data,
        "answered": False,
        "answer": None,
    }
    update = state.push_update("callback_query", query)
    return {"update_id": update["update_id"], "callback_query_id": query_id}


def callback_record(state: EmulatorState, query_id: str) -> JSON:
    """A callback query with the bot's answer, if any."""
    record = state.callbacks.get(query_id)
    if record is None:
        raise ControlError(f"unknown callback query {query_id}", status=404)
    return record


def inject_raw_update(state: EmulatorState, body: JSON) -> JSON:
    """Queue an update exactly as given, `{<kind>: <payload>}`, for tests of what real clients never send.

    Nothing in it is checked or stored with the chats: fields may be missing, ids unknown, the kind made up.
    The update id is the emulator's, so that it comes after every other update.
    """
    if "update_id" in body:
        raise ControlError("update_id is given by the emulator")
    if len(body) != 1:
        raise ControlError("an update has exactly one field besides update_id")
    ((kind, payload),) = body.items()
    update = state.push_update(kind, copy.deepcopy(payload))
    return {"update_id": update["update_id"], "update": update}
