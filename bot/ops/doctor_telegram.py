"""`frontline doctor`'s Telegram checks: the token, and the agents' group (a forum where the bot manages topics)."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.config import Settings
from bot.ops.findings import FAIL, OK, WARN, Finding, reason

REQUIRED_RIGHTS = ("can_manage_topics", "can_delete_messages")


async def _bot_api(http: aiohttp.ClientSession, settings: Settings, method: str, **params: Any) -> Any:
    """A Bot API call's result; TelegramRefused with Telegram's description when it says no."""
    async with http.post(f"{settings.telegram_api_url}{settings.telegram_token}/{method}", json=params) as response:
        body = await response.json(content_type=None)
    if not isinstance(body, dict) or not body.get("ok"):
        description = body.get("description") if isinstance(body, dict) else None
        raise TelegramRefused(description or f"HTTP {response.status}", response.status)
    return body["result"]


class TelegramRefused(Exception):
    """The Bot API answered ok=false."""

    def __init__(self, description: str, status: int) -> None:
        super().__init__(description)
        self.status = status


async def telegram(settings: Settings, http: aiohttp.ClientSession) -> list[Finding]:
    """The token (getMe) and the agents' group: a forum where the bot is an admin that manages topics and deletes messages."""
    if settings.sandbox:
        return [Finding(OK, "telegram", "sandbox mode: the app runs its own emulator, nothing to check")]
    try:
        me = await _bot_api(http, settings, "getMe")
    except TelegramRefused as exc:
        return [
            Finding(
                FAIL, "telegram token", f"refused: {exc}", "Get a new token from @BotFather and set TELEGRAM_BOT_TOKEN."
            )
        ]
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return [
            Finding(
                FAIL,
                "telegram token",
                f"cannot reach {settings.telegram_api_url}: {reason(exc)}",
                "Check this machine's connection to Telegram, or TELEGRAM_API_URL.",
            )
        ]
    found = [Finding(OK, "telegram token", f"@{me.get('username')} (id {me.get('id')})")]
    group = settings.agent_chat_id
    if group is None:
        return [
            *found,
            Finding(
                WARN,
                "agents' group",
                "AGENT_CHAT_ID unset",
                "Create a supergroup with topics, add the bot as an admin, and set AGENT_CHAT_ID to its id.",
            ),
        ]
    check = f"agents' group {group}"
    try:
        chat = await _bot_api(http, settings, "getChat", chat_id=group)
        member = await _bot_api(http, settings, "getChatMember", chat_id=group, user_id=me["id"])
    except TelegramRefused as exc:
        return [
            *found,
            Finding(
                FAIL,
                check,
                f"Telegram says: {exc}",
                "Add the bot to the agents' group and check that AGENT_CHAT_ID is its id.",
            ),
        ]
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return [
            *found,
            Finding(FAIL, check, f"cannot ask Telegram: {reason(exc)}", "Check this machine's connection to Telegram."),
        ]
    title = chat.get("title") or group
    if chat.get("type") != "supergroup" or not chat.get("is_forum"):
        return [
            *found,
            Finding(
                FAIL,
                check,
                f"{title!r} is not a forum (topics off)",
                "Turn on Topics in the group's settings (this makes it a supergroup).",
            ),
        ]
    if member.get("status") != "administrator":
        return [
            *found,
            Finding(
                FAIL,
                check,
                f"the bot is {member.get('status')} in {title!r}, not an administrator",
                "Make the bot an administrator of the group with the rights Manage topics and Delete messages.",
            ),
        ]
    missing = [right for right in REQUIRED_RIGHTS if not member.get(right)]
    if missing:
        return [
            *found,
            Finding(
                FAIL,
                check,
                f"the bot lacks {', '.join(missing)} in {title!r}",
                "In the group's administrators, give the bot the rights Manage topics and Delete messages.",
            ),
        ]
    return [
        *found,
        Finding(OK, check, f"{title!r}: a forum, the bot an admin that manages topics and deletes messages"),
    ]
