"""Chat membership and chat information objects."""

from typing import Any

from bot.emulator.errors import bad_request
from bot.emulator.state import JSON, Chat, EmulatorState

_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_pin_messages",
    "can_manage_topics",
)
# ChatPermissions, as ChatMemberRestricted repeats them.
PERMISSIONS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
)
_ALL_GIFTS = {
    "unlimited_gifts": True,
    "limited_gifts": True,
    "unique_gifts": True,
    "premium_subscription": True,
    "gifts_from_channels": True,
}


def bot_can(chat: Chat, right: str) -> bool:
    """Whether the bot is an administrator of the chat holding `right`."""
    return chat.bot_rights is not None and bool(chat.bot_rights.get(right, False))


def administrator(user: JSON, rights: dict[str, Any], can_be_edited: bool) -> JSON:
    """A ChatMemberAdministrator; rights not given are false, as for a restricted admin."""
    member: JSON = {
        "status": "administrator",
        "user": user,
        "can_be_edited": can_be_edited,
        "is_anonymous": bool(rights.get("is_anonymous", False)),
    }
    member.update({right: bool(rights.get(right, False)) for right in _ADMIN_RIGHTS})
    return member


def full_admin_rights() -> dict[str, bool]:
    """Every right, as a human admin promoted by the owner usually has."""
    return dict.fromkeys(_ADMIN_RIGHTS, True)


def bot_member(chat: Chat, bot: JSON) -> JSON:
    """The bot's ChatMember in the chat."""
    if chat.bot_status == "kicked":
        return {"status": "kicked", "user": bot, "until_date": 0}
    if chat.bot_status == "left":
        return {"status": "left", "user": bot}
    if chat.bot_rights is not None:
        return administrator(bot, chat.bot_rights, can_be_edited=False)
    return {"status": "member", "user": bot}


def restricted(user: JSON, permissions: JSON, is_member: bool) -> JSON:
    """A ChatMemberRestricted: permissions not given are false; restrictions last forever (until_date 0)."""
    member: JSON = {"status": "restricted", "user": user, "is_member": is_member, "until_date": 0}
    member.update({name: bool(permissions.get(name, False)) for name in PERMISSIONS})
    return member


def is_admin(chat: Chat, user_id: int) -> bool:
    """Whether the user is the group's owner or one of its administrators."""
    return user_id == chat.owner_id or user_id in chat.admins


def user_member(state: EmulatorState, chat: Chat, user_id: int) -> JSON:
    """A user's ChatMember in the chat (private chats: the user, kicked if they blocked the bot)."""
    user = state.users.get(user_id)
    if user is None:
        raise bad_request("user not found")
    user_json = user.as_json()
    if chat.is_private:
        if chat.id != user_id:
            raise bad_request("user not found")
        if user.blocked:
            return {"status": "kicked", "user": user_json, "until_date": 0}
        return {"status": "member", "user": user_json}
    if user_id == chat.owner_id:
        return {"status": "creator", "user": user_json, "is_anonymous": False}
    if user_id in chat.admins:
        return administrator(user_json, full_admin_rights(), can_be_edited=False)
    if user_id in chat.kicked:
        return {"status": "kicked", "user": user_json, "until_date": 0}
    if user_id in chat.restricted:
        return restricted(user_json, chat.restricted[user_id], is_member=user_id in chat.members)
    if user_id in chat.members:
        return {"status": "member", "user": user_json}
    return {"status": "left", "user": user_json}


def chat_member(state: EmulatorState, chat: Chat, user_id: int, bot: JSON) -> JSON:
    """getChatMember's answer for any user of the chat, the bot included."""
    if user_id == bot["id"]:
        return bot_member(chat, bot)
    return user_member(state, chat, user_id)


def administrators(state: EmulatorState, chat: Chat, bot: JSON) -> list[JSON]:
    """getChatAdministrators' answer: owner, admins, and the bot if it is one."""
    if chat.is_private:
        raise bad_request("there are no administrators in the private chat")
    admin_ids = sorted(chat.admins | ({chat.owner_id} if chat.owner_id else set()))
    admins = [user_member(state, chat, user_id) for user_id in admin_ids]
    if chat.bot_rights is not None:
        admins.append(bot_member(chat, bot))
    return admins


def full_info(chat: Chat) -> JSON:
    """The ChatFullInfo object returned by getChat."""
    info: JSON = {
        **chat.as_json(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": dict(_ALL_GIFTS),
    }
    if not chat.is_private:
        info["permissions"] = {
            "can_send_messages": True,
            "can_send_photos": True,
            "can_send_documents": True,
            "can_send_voice_notes": True,
            "can_invite_users": True,
            "can_pin_messages": False,
            "can_manage_topics": False,
        }
    return info
