"""The control API's HTTP routes under /_emulator/: the tests' side of the emulator."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.emulator import control, members
from bot.emulator.errors import ControlError
from bot.emulator.faults import fault_from_json
from bot.emulator.state import JSON, EmulatorState

MAX_CONTROL_WAIT = 120.0

ControlHandler = Callable[[web.Request], Awaitable[Any]]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_response(body: Any, status: int = 200) -> web.Response:
    """A compact JSON response, non-ASCII kept as is."""
    return web.json_response(body, status=status, dumps=_dumps)


def _control(handler: ControlHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap a control handler: JSON out, test mistakes as 4xx JSON errors."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return json_response(await handler(request))
        except ControlError as error:
            return json_response({"ok": False, "description": error.description}, error.status)
        except (ValueError, TypeError, KeyError) as error:
            return json_response({"ok": False, "description": f"invalid request: {error}"}, 400)

    return wrapped


async def _body(request: web.Request) -> JSON:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ControlError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    return body


def _query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    return None if value in (None, "") else int(value)


class ControlApi:
    """Serves `/_emulator/...`: the tests' side of the emulator."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def routes(self) -> list[web.RouteDef]:
        """The control routes."""
        return [
            web.get("/_emulator/health", _control(self.health)),
            web.post("/_emulator/reset", _control(self.reset)),
            web.post("/_emulator/users", _control(self.add_user)),
            web.post("/_emulator/users/{user_id}/block", _control(self.block)),
            web.post("/_emulator/groups", _control(self.add_group)),
            web.post("/_emulator/groups/{chat_id}/members", _control(self.set_member)),
            web.post("/_emulator/groups/{chat_id}/bot", _control(self.set_bot_status)),
            web.post("/_emulator/messages", _control(self.message)),
            web.post("/_emulator/albums", _control(self.album)),
            web.post("/_emulator/edits", _control(self.edit)),
            web.post("/_emulator/topics", _control(self.topic)),
            web.get("/_emulator/chats/{chat_id}/messages", _control(self.history)),
            web.post("/_emulator/callbacks", _control(self.callback)),
            web.post("/_emulator/updates", _control(self.raw_update)),
            web.get("/_emulator/callbacks/{query_id}", _control(self.callback_answer)),
            web.get("/_emulator/sent", _control(self.sent)),
            web.get("/_emulator/calls", _control(self.calls)),
            web.get("/_emulator/updates/pending", _control(self.pending)),
            web.get("/_emulator/faults", _control(self.faults)),
            web.post("/_emulator/faults", _control(self.add_fault)),
            web.delete("/_emulator/faults", _control(self.clear_faults)),
            web.get("/_emulator/limits", _control(self.limits)),
            web.post("/_emulator/limits", _control(self.set_limits)),
            web.get("/_emulator/files/{file_id}", self.file_content),
        ]

    async def health(self, request: web.Request) -> JSON:
        """Liveness."""
        return {"ok": True}

    async def reset(self, request: web.Request) -> JSON:
        """Forget everything but the counters."""
        self._state.reset()
        return {"ok": True}

    async def add_user(self, request: web.Request) -> JSON:
        """Create a user and their private chat."""
        return control.add_user(self._state, await _body(request))

    async def block(self, request: web.Request) -> JSON:
        """Block or unblock the bot as a user."""
        body = await _body(request)
        user_id = int(request.match_info["user_id"])
        return control.set_blocked(self._state, user_id, bool(body.get("blocked", True)))

    async def add_group(self, request: web.Request) -> JSON:
        """Create a group or supergroup."""
        return control.add_group(self._state, await _body(request))

    async def set_member(self, request: web.Request) -> JSON:
        """A user's status in a group changes: `{user_id, status?, permissions?, is_member?, by?}` or `{user_id, member, admin?}`."""
        body = await _body(request)
        return members.set_member(self._state, int(request.match_info["chat_id"]), body)

    async def set_bot_status(self, request: web.Request) -> JSON:
        """The bot is added to, promoted or demoted in, or removed from a group: `{status, rights?, by?}`."""
        body = await _body(request)
        return members.set_bot_status(self._state, int(request.match_info["chat_id"]), body)

    async def message(self, request: web.Request) -> JSON:
        """A user sends a message."""
        return control.inject_message(self._state, await _body(request))

    async def album(self, request: web.Request) -> JSON:
        """A user sends an album."""
        return control.inject_album(self._state, await _body(request))

    async def topic(self, request: web.Request) -> JSON:
        """An administrator creates, renames, closes or reopens a forum topic."""
        return control.topic_action(self._state, await _body(request))

    async def history(self, request: web.Request) -> JSON:
        """A chat's stored messages in order, service messages included; `message_thread_id` for one topic."""
        chat = self._state.chats.get(int(request.match_info["chat_id"]))
        if chat is None:
            raise ControlError(f"unknown chat {request.match_info['chat_id']}", status=404)
        thread_id = _query_int(request, "message_thread_id")
        messages = [
            message
            for _, message in sorted(chat.messages.items())
            if thread_id is None or message.get("message_thread_id") == thread_id
        ]
        return {"messages": messages}

    async def edit(self, request: web.Request) -> JSON:
        """A user edits a message."""
        return control.inject_edit(self._state, await _body(request))

    async def callback(self, request: web.Request) -> JSON:
        """A user presses an inline button."""
        return control.inject_callback(self._state, await _body(request))

    async def raw_update(self, request: web.Request) -> JSON:
        """Queue any update as given, however malformed (the update id is the emulator's)."""
        return control.inject_raw_update(self._state, await _body(request))

    async def callback_answer(self, request: web.Request) -> JSON:
        """A callback query and the bot's answer."""
        return control.callback_record(self._state, request.match_info["query_id"])

    async def sent(self, request: web.Request) -> JSON:
        """Messages the bot sent or edited; `wait` long-polls for the first match."""
        chat_id = _query_int(request, "chat_id")
        after = _query_int(request, "after") or 0
        wait = min(float(request.query.get("wait") or 0), MAX_CONTROL_WAIT)

        def found() -> list[JSON] | None:
            messages = self._state.sent_after(after, chat_id)
            return messages if messages or self._state.closing else None

        messages = await self._state.changed.wait_until(found, wait) or []
        last = messages[-1]["seq"] if messages else after
        return {"messages": messages, "last": last}

    async def calls(self, request: web.Request) -> JSON:
        """The Bot API call log."""
        method = (request.query.get("method") or "").lower()
        after = _query_int(request, "after") or 0
        calls = self._state.calls.after(after)
        if method:
            calls = [call for call in calls if call["method"].lower() == method]
        return {"calls": calls, "last": calls[-1]["seq"] if calls else after}

    async def pending(self, request: web.Request) -> JSON:
        """Updates not yet confirmed by a getUpdates offset."""
        return {"updates": self._state.updates}

    async def faults(self, request: web.Request) -> JSON:
        """The active fault rules."""
        return {"faults": self._state.faults.as_list()}

    async def add_fault(self, request: web.Request) -> JSON:
        """Add a fault rule."""
        try:
            fault = fault_from_json(await _body(request))
        except ValueError as error:
            raise ControlError(str(error)) from None
        self._state.faults.add(fault)
        return {"fault": fault.as_dict(), "faults": self._state.faults.as_list()}

    async def clear_faults(self, request: web.Request) -> JSON:
        """Remove all fault rules."""
        self._state.faults.clear()
        return {"faults": []}

    async def limits(self, request: web.Request) -> JSON:
        """The flood-limit settings."""
        return self._state.limiter.config.as_dict()

    async def set_limits(self, request: web.Request) -> JSON:
        """Change flood-limit settings (and forget past sends)."""
        try:
            config = self._state.limiter.config.updated(await _body(request))
        except ValueError as error:
            raise ControlError(str(error)) from None
        self._state.limiter.configure(config)
        return config.as_dict()

    async def file_content(self, request: web.Request) -> web.Response:
        """The bytes of any file, by file_id."""
        stored = self._state.files.get(request.match_info["file_id"])
        if stored is None:
            return json_response({"ok": False, "description": "unknown file_id"}, 404)
        return web.Response(body=stored.data, content_type="application/octet-stream")
