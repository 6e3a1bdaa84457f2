"""getMe, getUpdates, the webhook and the bot's commands: who the bot is and how it gets its updates."""

import json
from typing import Any
from urllib.parse import urlparse

from bot.emulator.errors import ApiError, bad_request
from bot.emulator.params import Params
from bot.emulator.sender import Call, Handler
from bot.emulator.state import JSON, EmulatorState

MAX_UPDATES_PER_CALL = 100
MAX_COMMANDS = 100
_POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)


class BotSetupMethods:
    """getMe, getUpdates, setWebhook, deleteWebhook, getWebhookInfo and set/get/deleteMyCommands."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def methods(self) -> dict[str, Handler]:
        """Method names and their handlers."""
        return {
            "getMe": self.get_me,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
        }

    # --- bot and updates -------------------------------------------------

    async def get_me(self, call: Call) -> JSON:
        """getMe: the bot with its capabilities."""
        return {
            **call.bot,
            "can_join_groups": True,
            # The emulator delivers every group message it is told to, as a bot
            # with privacy mode off would get them.
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def get_updates(self, call: Call) -> list[JSON]:
        """getUpdates: confirm by offset, then return pending updates, long-polling."""
        state, params = self.state, call.params
        if state.webhook.get("url"):
            raise ApiError(409, _WEBHOOK_CONFLICT)
        limit = min(max(params.get_int("limit") or MAX_UPDATES_PER_CALL, 1), MAX_UPDATES_PER_CALL)
        self._set_allowed_updates(params)
        state.confirm_updates(params.get_int("offset") or 0)
        state.poll_generation += 1
        generation = state.poll_generation
        # Wake an older poll so that it ends with a conflict, as on Telegram.
        state.changed.notify()

        def ready() -> list[JSON] | None:
            if state.closing:
                return []
            if state.poll_generation != generation:
                raise ApiError(409, _POLL_CONFLICT)
            return state.deliverable_updates(limit) or None

        updates = await state.changed.wait_until(ready, params.get_float("timeout") or 0.0)
        return updates or []

    async def set_webhook(self, call: Call) -> bool:
        """setWebhook: updates are then POSTed to the URL (bot/emulator/webhooks.py).

        Telegram demands HTTPS; the emulator also takes plain HTTP to a loopback address, for tests.
        """
        params = call.params
        url = params.get_str("url") or ""
        host = (urlparse(url).hostname or "") if url else ""
        loopback = url.lower().startswith("http://") and (host in ("localhost", "::1") or host.startswith("127."))
        if url and not url.lower().startswith("https://") and not loopback:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        self._set_allowed_updates(params)
        self._drop_pending_if_asked(params)
        self.state.webhook = {
            "url": url,
            "max_connections": params.get_int("max_connections") or 40,
            "allowed_updates": params.get_json("allowed_updates"),
            "has_secret_token": params.has("secret_token"),
            "secret_token": params.get_str("secret_token"),
        }
        return True

    def _set_allowed_updates(self, params: Params) -> None:
        """The update kinds to deliver from now on, as getUpdates or setWebhook set them (kept when not given)."""
        allowed = params.get_json("allowed_updates")
        if allowed is None:
            return
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed_updates JSON array")
        self.state.allowed_updates = [str(kind) for kind in allowed]

    async def delete_webhook(self, call: Call) -> bool:
        """deleteWebhook."""
        self._drop_pending_if_asked(call.params)
        self.state.webhook = {}
        return True

    def _drop_pending_if_asked(self, params: Params) -> None:
        if params.get_bool("drop_pending_updates"):
            self.state.updates.clear()

    async def get_webhook_info(self, call: Call) -> JSON:
        """getWebhookInfo."""
        webhook = self.state.webhook
        info: JSON = {
            "url": webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self.state.updates),
        }
        if webhook.get("url"):
            info["max_connections"] = webhook["max_connections"]
            if webhook.get("allowed_updates") is not None:
                info["allowed_updates"] = webhook["allowed_updates"]
        return info

    # --- commands --------------------------------------------------------

    @staticmethod
    def _commands_key(params: Params) -> str:
        scope = params.get_json("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True) + "|" + (params.get_str("language_code") or "")

    async def set_my_commands(self, call: Call) -> bool:
        """setMyCommands, validated as Telegram does."""
        commands = call.params.get_json("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            _check_command(command)
        self.state.commands[self._commands_key(call.params)] = [
            {"command": command["command"], "description": command["description"]} for command in commands
        ]
        return True

    async def get_my_commands(self, call: Call) -> list[JSON]:
        """getMyCommands."""
        return self.state.commands.get(self._commands_key(call.params), [])

    async def delete_my_commands(self, call: Call) -> bool:
        """deleteMyCommands."""
        self.state.commands.pop(self._commands_key(call.params), None)
        return True


def _check_command(command: Any) -> None:
    if not isinstance(command, dict):
        raise bad_request("can't parse BotCommand JSON object")
    name, description = command.get("command"), command.get("description")
    if not isinstance(name, str) or not 1 <= len(name) <= 32 or not _is_command_name(name):
        raise bad_request("BOT_COMMAND_INVALID")
    if not isinstance(description, str) or not 1 <= len(description) <= 256:
        raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")


def _is_command_name(name: str) -> bool:
    return all(char.isascii() and (char.islower() or char.isdigit() or char == "_") for char in name)
