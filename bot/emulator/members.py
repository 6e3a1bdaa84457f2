"""Who is in a group, and what Telegram tells the bot when that changes.

A user joining, leaving, being removed (kicked), restricted or promoted changes what getChatMember answers, posts a
`new_chat_members` / `left_chat_member` service message when they come or go, and queues a `chat_member` update,
which Telegram sends only to a bot that administers the group and asked for it in allowed_updates. The bot's own
status changes queue a `my_chat_member` update, sent by default.
"""

import copy

from bot import clock
from bot.emulator import chats
from bot.emulator.errors import ControlError
from bot.emulator.state import JSON, Chat, EmulatorState, User

USER_STATUSES = ("member", "administrator", "restricted", "left", "kicked")
BOT_STATUSES = ("member", "administrator", "left", "kicked")


def _lookup_chat(state: EmulatorState, chat_id: int) -> Chat:
    chat = state.chats.get(chat_id)
    if chat is None or chat.is_private:
        raise ControlError(f"unknown group {chat_id}", status=404)
    return chat


def _lookup_user(state: EmulatorState, value: object) -> User:
    if not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
        raise ControlError("user ids are integers")
    user = state.users.get(int(value))
    if user is None:
        raise ControlError(f"unknown user {value}", status=404)
    return user


def _admin(state: EmulatorState, chat: Chat) -> User | None:
    """The group's owner or first administrator, who adds, removes, restricts and promotes people by default."""
    for user_id in [chat.owner_id, *sorted(chat.admins)]:
        if user_id is not None and user_id in state.users:
            return state.users[user_id]
    return None


def _by(state: EmulatorState, body: JSON) -> User | None:
    """The user named by `by`, checked before anything changes."""
    return None if body.get("by") is None else _lookup_user(state, body["by"])


def _apply(chat: Chat, user_id: int, status: str, permissions: JSON, is_member: bool) -> None:
    """Put a user in the sets that make up their new status."""
    chat.admins.discard(user_id)
    chat.kicked.discard(user_id)
    if status != "left":
        # Leaving keeps restrictions: the user shows as restricted, no longer a member.
        chat.restricted.pop(user_id, None)
    if status == "restricted":
        chat.restricted[user_id] = permissions
    if status == "administrator":
        chat.admins.add(user_id)
    if status == "kicked":
        chat.kicked.add(user_id)
    if status in ("member", "administrator") or (status == "restricted" and is_member):
        chat.members.add(user_id)
    else:
        chat.members.discard(user_id)


def _is_in(member: JSON) -> bool:
    return member["status"] in ("creator", "administrator", "member") or bool(member.get("is_member"))


def bot_is_in(chat: Chat) -> bool:
    """Whether the bot is in the group, so that it gets its updates."""
    return chat.bot_status not in ("left", "kicked")


def _changed(chat: Chat, actor: User, old: JSON, new: JSON) -> JSON:
    return {
        "chat": chat.as_json(),
        "from": actor.as_json(),
        "date": int(clock.now().timestamp()),
        "old_chat_member": old,
        "new_chat_member": new,
    }


def _service_message(state: EmulatorState, chat: Chat, actor: JSON, content: JSON) -> JSON:
    """Post a service message in the group's General topic; the bot gets it if it is there."""
    message = chat.compose(actor, content)
    if bot_is_in(chat):
        state.push_update("message", copy.deepcopy(message))
    return message


def _user_status(body: JSON, chat: Chat, user_id: int) -> str:
    """The new status: `status`, or from the older `{member, admin}` form (joining keeps an admin an admin)."""
    if body.get("status") is not None:
        status = str(body["status"])
        if status not in USER_STATUSES:
            raise ControlError(f"status must be one of {', '.join(USER_STATUSES)}")
        return status
    if not body.get("member", True):
        return "left"
    return "administrator" if body.get("admin") or user_id in chat.admins else "member"


def set_member(state: EmulatorState, chat_id: int, body: JSON) -> JSON:
    """A user's status in a group changes: `{user_id, status?, permissions?, is_member?, by?}` (or `{member, admin}`).

    Returns the new ChatMember and the service message posted, if any.
    """
    chat = _lookup_chat(state, chat_id)
    user = _lookup_user(state, body.get("user_id"))
    if user.id == chat.owner_id:
        raise ControlError("the owner's status cannot change")
    status = _user_status(body, chat, user.id)
    by = _by(state, body)
    permissions = body.get("permissions") or {}
    if not isinstance(permissions, dict):
        raise ControlError("permissions must be an object of ChatPermissions fields")
    old = chats.user_member(state, chat, user.id)
    _apply(chat, user.id, status, permissions, bool(body.get("is_member", user.id in chat.members)))
    new = chats.user_member(state, chat, user.id)
    message = None
    if old != new:
        # People join and leave by themselves; admins remove, restrict and promote them.
        by_themself = status == "left" or (status == "member" and old["status"] == "left")
        actor = by or (user if by_themself else _admin(state, chat) or user)
        if bot_is_in(chat) and chat.bot_rights is not None:
            state.push_update("chat_member", _changed(chat, actor, old, new))
        if _is_in(old) != _is_in(new):
            event = {"new_chat_members": [user.as_json()]} if _is_in(new) else {"left_chat_member": user.as_json()}
            message = _service_message(state, chat, actor.as_json(), event)
    return {"chat": chat.as_json(), "member": new, "message": message}


def set_bot_status(state: EmulatorState, chat_id: int, body: JSON) -> JSON:
    """The bot is added, promoted (`rights`), demoted, removed or kicked: `{status, rights?, by?}`.

    Queues a `my_chat_member` update; adding the bot back also posts its `new_chat_members` message.
    """
    chat = _lookup_chat(state, chat_id)
    status = str(body.get("status") or "")
    if status not in BOT_STATUSES:
        raise ControlError(f"status must be one of {', '.join(BOT_STATUSES)}")
    rights = body.get("rights")
    if rights is not None and not isinstance(rights, dict):
        raise ControlError("rights must be an object of administrator rights")
    members = [state.users[user_id] for user_id in sorted(chat.members) if user_id in state.users]
    actor = _by(state, body) or _admin(state, chat) or next(iter(members), None)
    if actor is None:
        raise ControlError("the group has nobody to have done it: give `by` (a user id)")
    old = chats.bot_member(chat, state.bot)
    was_in = bot_is_in(chat)
    chat.bot_status = "member" if status == "administrator" else status
    chat.bot_rights = (
        (rights if rights is not None else chats.full_admin_rights()) if status == "administrator" else None
    )
    new = chats.bot_member(chat, state.bot)
    if old != new:
        state.push_update("my_chat_member", _changed(chat, actor, old, new))
        if not was_in and bot_is_in(chat):
            _service_message(state, chat, actor.as_json(), {"new_chat_members": [state.bot]})
    return {"chat": chat.as_json(), "member": new}
