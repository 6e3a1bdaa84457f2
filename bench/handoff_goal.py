"""The goal round of `make bench-handoff`: cards reach an agent at once.

Telegram's limits on, with no burst allowance beyond one message in a private chat (the emulator's private_burst=1;
the group's limit as it is); the app restarted with AUTO_ASSIGN=1 and MAX_CHATS_PER_AGENT high enough for every
request to find an agent (ceil(requests / agents)); every agent /online; then `requests` customers ask for a person
within one second. Measured from the moment the emulator accepted each request: the card in the assigned agent's
private chat, the customer told who is helping them, and the card in the agents' group (its topic).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

from bench._common import is_new_message, summary
from bot.emulator.client import EmulatorClient

REQUEST = "I want to talk to a real person"
MEASURES = (
    ("private_card", "request → card in an agent's private chat"),
    ("told", "request → customer told who helps"),
    ("group_card", "request → card in agents' group"),
)
GOAL_P95_MS = 5000
_user_ids = itertools.count(980_001)


async def run(
    emulator: EmulatorClient,
    group: int,
    agents: list[tuple[int, str]],
    restart_app: Callable[..., None],
    *,
    requests: int = 20,
    spread: float = 1.0,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """The goal round; the app is restarted as it was afterwards (`restart_app()`), the limits put back."""
    limit = math.ceil(requests / len(agents))
    await emulator.set_limits(enabled=True, private_burst=1)
    restart_app(AUTO_ASSIGN="1", MAX_CHATS_PER_AGENT=str(limit))
    try:
        for agent_id, _ in agents:
            await _command(emulator, agent_id, "/online", "You're online", timeout)
        customers = [
            (await emulator.add_user(f"Goal{index:02d}", last_name="Bench", user_id=next(_user_ids)))["id"]
            for index in range(requests)
        ]
        start = (await emulator.sent()).last
        asked: dict[int, float] = {}

        async def ask(index: int, customer: int) -> None:
            await asyncio.sleep(index * spread / requests)
            await emulator.send_text(customer, REQUEST)
            asked[customer] = time.time()

        watching = asyncio.create_task(_watch(emulator, start, group, {a for a, _ in agents}, requests, timeout))
        await asyncio.gather(*(ask(i, c) for i, c in enumerate(customers)))
        seen = await watching
        latencies: dict[str, list[float]] = {name: [] for name, _ in MEASURES}
        for index, customer in enumerate(customers):
            name = f"Goal{index:02d} Bench"
            for measure, when in (
                ("private_card", seen["private_card"].get(name)),
                ("group_card", seen["group_card"].get(name)),
                ("told", seen["told"].get(customer)),
            ):
                if when is not None:
                    latencies[measure].append(when - asked[customer])
        per_agent = {
            agent_name: sum(1 for chat in seen["card_chat"].values() if chat == agent_id)
            for agent_id, agent_name in agents
        }
        return {
            "requests": requests,
            "spread_seconds": spread,
            "agents": len(agents),
            "max_chats_per_agent": limit,
            "private_burst": 1,
            **{name: summary(samples) for name, samples in latencies.items()},
            "cards_per_agent": per_agent,
            "goal_p95_ms": GOAL_P95_MS,
        }
    finally:
        for agent_id, _ in agents:
            await emulator.send_text(agent_id, "/away")
        await emulator.set_limits(enabled=True, private_burst=5)
        restart_app()


async def _command(emulator: EmulatorClient, user: int, text: str, needle: str, timeout: float) -> None:
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, text)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = await emulator.sent(user, after, wait=1.0)
        if any(needle in (m.get("text") or "") for m in batch.messages):
            return
        after = batch.last
    raise TimeoutError(f"{user} never got {needle!r}")


async def _watch(
    emulator: EmulatorClient, after: int, group: int, agents: set[int], requests: int, timeout: float
) -> dict[str, dict[Any, float]]:
    """When each request's cards and the customer's introduction first appeared (emulator clock)."""
    seen: dict[str, dict[Any, Any]] = {"private_card": {}, "group_card": {}, "told": {}, "card_chat": {}}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(
        len(seen[key]) >= requests for key in ("private_card", "group_card", "told")
    ):
        batch = await emulator.sent(None, after, wait=1.0)
        after = batch.last
        for entry in batch.messages:
            if not is_new_message(entry):
                continue
            text, chat = entry.get("text") or "", entry["chat_id"]
            if chat in agents and text.startswith("🎫 Assigned to you: "):
                name = text.removeprefix("🎫 Assigned to you: ").split(" · ")[0]
                seen["private_card"].setdefault(name, entry["time"])
                seen["card_chat"].setdefault(name, chat)
            elif chat == group and text.startswith("🎫 T") and "Goal" in text:
                name = next((w for w in text.split(" · ")[1:2]), "").split(" (")[0].split("\n")[0]
                seen["group_card"].setdefault(name, entry["time"])
            elif text.startswith("Hi, this is "):
                seen["told"].setdefault(chat, entry["time"])
    return seen
