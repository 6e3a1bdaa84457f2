"""Talking to the bot through the emulator, and what the domain says it should answer."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from bot.emulator.client import EmulatorClient
from tests.e2e.stack import ROOT


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


async def say(emulator: EmulatorClient, user_id: int, text: str, expect: list[str] | None = None, timeout: float = 15) -> list[dict]:
    """Send a text as the customer; return the bot's messages up to the expected one (or the first)."""
    after = (await emulator.sent(user_id)).last
    await emulator.send_text(user_id, text)
    predicate = (lambda t: t.strip() in expect) if expect else None
    return await emulator.wait_for_text(user_id, after, predicate=predicate, timeout=timeout)


def last_text(messages: list[dict]) -> str:
    """The text of the newest message of a batch."""
    return (messages[-1].get("text") or messages[-1].get("caption") or "").strip()
