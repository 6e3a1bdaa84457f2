"""Talking to the bot through the emulator, and what the domain says it should answer."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import yaml

from bot.emulator.client import EmulatorClient
from devstack.stack import ROOT


@cache
def _domain() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "domain.yml").read_text())


def variations(response: str, **slots: str) -> list[str]:
    """Every text variation of a domain response, with slots filled in."""
    texts = []
    for variation in _domain()["responses"][response]:
        text = variation["text"]
        for name, value in slots.items():
            text = text.replace("{" + name + "}", value)
        texts.append(text.strip())
    return texts


async def say(
    emulator: EmulatorClient, user_id: int, text: str, expect: list[str] | None = None, timeout: float = 15
) -> list[dict]:
    """Send a text as the customer; return the bot's messages up to the expected one (or the first)."""
    after = (await emulator.sent(user_id)).last
    await emulator.send_text(user_id, text)
    predicate = (lambda t: t.strip() in expect) if expect else None
    return await emulator.wait_for_text(user_id, after, predicate=predicate, timeout=timeout)


def last_text(messages: list[dict]) -> str:
    """The text of the newest message of a batch."""
    return (messages[-1].get("text") or messages[-1].get("caption") or "").strip()


async def replies_after(
    emulator: EmulatorClient, user_id: int, after: int, *, until: str | None = None, timeout: float = 15, count: int = 1
) -> list[dict]:
    """The bot's new messages (not edits) after `after`, waiting until one contains `until` (or for `count` of them)."""
    deadline = asyncio.get_running_loop().time() + timeout
    found: list[dict] = []
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"waited {timeout} s for {until!r}; got {[m.get('text') for m in found]}")
        batch = await emulator.sent(user_id, after, wait=remaining)
        after = batch.last
        found += [m for m in batch.messages if m["method"] == "sendMessage"]
        if len(found) >= count and (until is None or any(until in (m.get("text") or "") for m in found)):
            return found


async def press(
    emulator: EmulatorClient, user_id: int, message: dict, title: str, *, until: str | None = None, timeout: float = 15
) -> list[dict]:
    """Press the button with this title on a bot message; return the bot's messages that follow."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    button = next(b for row in rows for b in row if b["text"] == title)
    after = (await emulator.sent(user_id)).last
    await emulator.press(user_id, message["message_id"], button["callback_data"])
    return await replies_after(emulator, user_id, after, until=until, timeout=timeout)
