"""A typed client for the emulator's control API (`/_emulator/...`)."""

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

import aiohttp

from bot.emulator.user_actions import JSON, UserActions, without_none

TextPredicate = Callable[[str], bool]


class EmulatorClientError(Exception):
    """The control API rejected a request."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description


@dataclass(frozen=True)
class SentBatch:
    """Messages from the sent log and the seq to continue after."""

    messages: list[JSON]
    last: int


def _message_text(entry: JSON) -> str | None:
    return entry.get("text") if entry.get("text") is not None else entry.get("caption")


class EmulatorClient(UserActions):
    """Drives the emulator as the tests' users do: `EmulatorClient("http://127.0.0.1:8081")`.

    Building the world and watching the bot are here; what users do (write, send files, albums, edit, press
    buttons) comes from `UserActions`.
    """

    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _request(self, method: str, path: str, body: JSON | None = None, query: JSON | None = None) -> JSON:
        url = f"{self._base_url}/_emulator/{path}"
        params = {key: str(value) for key, value in without_none(query or {}).items()}
        async with self._http().request(method, url, json=body, params=params) as response:
            payload: JSON = await response.json(content_type=None)
            if response.status >= 400:
                raise EmulatorClientError(response.status, payload.get("description", ""))
            return payload

    async def health(self) -> bool:
        """Whether the emulator answers."""
        return bool((await self._request("GET", "health")).get("ok"))

    async def reset(self) -> None:
        """Forget users, chats, updates, logs and faults; limits back to default."""
        await self._request("POST", "reset")

    async def add_user(
        self,
        first_name: str = "Test",
        *,
        user_id: int | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        started: bool = True,
    ) -> JSON:
        """Create a user (and their private chat, whose id is the user's id)."""
        body = {
            "id": user_id,
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
            "started": started,
        }
        return await self._request("POST", "users", without_none(body))

    async def block(self, user_id: int, blocked: bool = True) -> JSON:
        """Make a user block (or unblock) the bot."""
        return await self._request("POST", f"users/{user_id}/block", {"blocked": blocked})

    async def add_group(
        self,
        title: str,
        *,
        is_forum: bool = False,
        members: Iterable[int] = (),
        admins: Iterable[int] = (),
        bot_rights: JSON | None = None,
        owner_id: int | None = None,
        chat_type: str = "supergroup",
    ) -> JSON:
        """Create a group or supergroup the bot is in; bot_rights makes the bot an admin."""
        body = {
            "title": title,
            "type": chat_type,
            "is_forum": is_forum,
            "members": list(members),
            "admins": list(admins),
            "bot_rights": bot_rights,
            "owner_id": owner_id,
        }
        return await self._request("POST", "groups", without_none(body))

    async def set_member(
        self,
        chat_id: int,
        user_id: int,
        member: bool = True,
        admin: bool = False,
        *,
        status: str | None = None,
        permissions: JSON | None = None,
        is_member: bool | None = None,
        by: int | None = None,
    ) -> JSON:
        """A user joins (optionally as an admin) or leaves a group; or, with `status` (member, administrator,
        restricted, left, kicked), takes that status, `by` another user (default: themself to join or leave, the
        owner or first admin otherwise).

        A restricted user has `permissions` (ChatPermissions fields, missing ones false) and stays in the group unless
        `is_member` is false. The bot gets a `chat_member` update if it administers the group (and asked for them),
        and a `new_chat_members` / `left_chat_member` message when the user comes or goes. Returns `{chat, member,
        message}`.
        """
        body = {
            "user_id": user_id,
            "member": member,
            "admin": admin,
            "status": status,
            "permissions": permissions,
            "is_member": is_member,
            "by": by,
        }
        return await self._request("POST", f"groups/{chat_id}/members", without_none(body))

    async def kick(self, chat_id: int, user_id: int, *, by: int | None = None) -> JSON:
        """An admin removes (bans) a user from a group."""
        return await self.set_member(chat_id, user_id, status="kicked", by=by)

    async def restrict(
        self, chat_id: int, user_id: int, permissions: JSON, *, is_member: bool | None = None, by: int | None = None
    ) -> JSON:
        """An admin restricts a user to `permissions` (e.g. `{"can_send_messages": False}`)."""
        return await self.set_member(
            chat_id, user_id, status="restricted", permissions=permissions, is_member=is_member, by=by
        )

    async def set_bot_status(
        self, chat_id: int, status: str, *, rights: JSON | None = None, by: int | None = None
    ) -> JSON:
        """The bot is added (member), promoted (administrator, with `rights`; all of them by default), demoted,
        removed (left) or kicked from a group; the bot gets a `my_chat_member` update."""
        body = {"status": status, "rights": rights, "by": by}
        return await self._request("POST", f"groups/{chat_id}/bot", without_none(body))

    async def inject_update(self, kind: str, payload: Any) -> JSON:
        """Queue a raw update `{kind: payload}`, unchecked (malformed ones too); returns `{update_id, update}`."""
        return await self._request("POST", "updates", {kind: payload})

    async def callback_answer(self, callback_query_id: str) -> JSON:
        """A callback query with the bot's answer (`answered`, `answer`)."""
        return await self._request("GET", f"callbacks/{callback_query_id}")

    async def sent(self, chat_id: int | None = None, after: int = 0, wait: float = 0.0) -> SentBatch:
        """Sent or edited messages after a seq; `wait` long-polls for the first one."""
        query = {"chat_id": chat_id, "after": after, "wait": wait or None}
        payload = await self._request("GET", "sent", query=query)
        return SentBatch(payload["messages"], payload["last"])

    async def wait_for_text(
        self,
        chat_id: int | None = None,
        after: int = 0,
        predicate: TextPredicate | None = None,
        timeout: float = 5.0,
    ) -> list[JSON]:
        """New messages up to the first whose text (or caption) matches; TimeoutError if none."""
        deadline = time.monotonic() + timeout
        seen: list[JSON] = []
        cursor = after
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                texts = [_message_text(entry) for entry in seen]
                raise TimeoutError(f"no matching message in {timeout}s; saw {texts!r}")
            batch = await self.sent(chat_id, cursor, wait=remaining)
            for entry in batch.messages:
                seen.append(entry)
                text = _message_text(entry)
                if text is not None and (predicate is None or predicate(text)):
                    return seen
            cursor = batch.last

    async def history(self, chat_id: int, message_thread_id: int | None = None) -> list[JSON]:
        """A chat's messages as Telegram keeps them (the bot's, users' and service messages), oldest first;
        with `message_thread_id`, one forum topic's."""
        query = {"message_thread_id": message_thread_id}
        messages: list[JSON] = (await self._request("GET", f"chats/{chat_id}/messages", query=query))["messages"]
        return messages

    async def file_content(self, file_id: str) -> bytes:
        """The bytes stored for any file id (uploaded by the bot or injected)."""
        url = f"{self._base_url}/_emulator/files/{file_id}"
        async with self._http().get(url) as response:
            if response.status >= 400:
                raise EmulatorClientError(response.status, await response.text())
            return await response.read()

    async def calls(self, method: str | None = None, after: int = 0) -> list[JSON]:
        """The Bot API call log, optionally for one method."""
        calls: list[JSON] = (await self._request("GET", "calls", query={"method": method, "after": after}))["calls"]
        return calls

    async def pending_updates(self) -> list[JSON]:
        """Updates the bot has not confirmed yet."""
        updates: list[JSON] = (await self._request("GET", "updates/pending"))["updates"]
        return updates

    async def set_fault(
        self,
        mode: str,
        *,
        method: str = "*",
        chat_id: int | None = None,
        count: int = 1,
        retry_after: int | None = None,
        delay: float | None = None,
        probability: float | None = None,
        seed: int | None = None,
        description: str | None = None,
    ) -> JSON:
        """Make matching Bot API calls fail: mode is 429, 500, 502, slow or drop, or a refusal for good: 400 or 403
        with Telegram's `description` ("file is too big", "user is deactivated").

        With `probability` (0 to 1) each matching call fails at random, drawn from `seed` (the rule shows the
        seed it drew when none is given); `count=-1` keeps the rule until cleared.
        """
        body = {
            "mode": mode,
            "method": method,
            "chat_id": chat_id,
            "count": count,
            "retry_after": retry_after,
            "delay": delay,
            "probability": probability,
            "seed": seed,
            "description": description,
        }
        fault: JSON = (await self._request("POST", "faults", without_none(body)))["fault"]
        return fault

    async def clear_faults(self) -> None:
        """Remove every fault rule."""
        await self._request("DELETE", "faults")

    async def set_limits(self, **settings: float | bool) -> JSON:
        """Change flood limits (names as in `LimitConfig`); past sends are forgotten."""
        return await self._request("POST", "limits", settings)

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def wait_until_healthy(base_url: str, timeout: float = 10.0) -> None:
    """Wait for an emulator started elsewhere (e.g. `python -m bot.emulator`) to answer."""
    deadline = time.monotonic() + timeout
    async with EmulatorClient(base_url) as client:
        while time.monotonic() < deadline:
            try:
                if await client.health():
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"the emulator at {base_url} did not answer within {timeout}s")
