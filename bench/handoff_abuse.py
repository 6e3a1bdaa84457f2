"""`make bench-handoff`'s fairness case: one customer repeating (an album of 10 photos, "I want a person",
/cancel) ten times while five others ask for a person. The others' request → card in the agents' group, with and
without that customer, Telegram's group limit on: the abuser must not hold the others' cards back."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from bench._common import summary
from bot.emulator.client import EmulatorClient

REQUEST = "I want to talk to a real person"
OTHERS = 5
REPEATS = 10
_user_ids = itertools.count(990_001)


async def _card(emulator: EmulatorClient, group: int, after: int, name: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        batch = await emulator.sent(group, after, wait=remaining)
        for entry in batch.messages:
            if "🎫" in (entry.get("text") or "") and name in entry["text"]:
                return entry
        after = batch.last
    raise TimeoutError(f"no card for {name}")


async def _one_other(
    emulator: EmulatorClient,
    group: int,
    index: int,
    tag: str,
    delay: float,
    timeout: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    await asyncio.sleep(delay)
    name = f"Fair{tag}{index}"
    customer = (await emulator.add_user(name, last_name="Bench", user_id=next(_user_ids)))["id"]
    after = (await emulator.sent(group)).last
    await emulator.send_text(customer, REQUEST)
    asked = time.time()
    try:
        card = await _card(emulator, group, after, f"{name} Bench", timeout)
        latencies.append(card["time"] - asked)
    except TimeoutError:
        errors.append("card: timed out")


async def _abuser(emulator: EmulatorClient, timeout: float) -> int:
    """Album, request, /cancel, REPEATS times; how many rounds it managed."""
    customer = (await emulator.add_user("Loud", last_name="Bench", user_id=next(_user_ids)))["id"]
    rounds = 0
    for _ in range(REPEATS):
        items = [{"kind": "photo", "content": f"photo {n}".encode()} for n in range(10)]
        await emulator.send_album(customer, items)
        for text in (REQUEST, "/cancel"):
            after = (await emulator.sent(customer)).last
            await emulator.send_text(customer, text)
            await emulator.wait_for_text(customer, after, timeout=timeout)
        rounds += 1
    return rounds


async def run(emulator: EmulatorClient, group: int, *, abuse: bool, tag: str, timeout: float) -> dict[str, Any]:
    """Five customers ask for a person a second apart (with the abuser started a few seconds before them)."""
    latencies: list[float] = []
    errors: list[str] = []
    abusing = asyncio.create_task(_abuser(emulator, timeout)) if abuse else None
    if abusing is not None:
        await asyncio.sleep(5.0)  # the abuser's albums and requests under way first
    await asyncio.gather(
        *(_one_other(emulator, group, n, tag, n * 1.0, timeout, latencies, errors) for n in range(OTHERS))
    )
    try:
        rounds = await abusing if abusing is not None else 0
    except TimeoutError:
        rounds, errors = -1, [*errors, "abuser: timed out"]
    await asyncio.sleep(65.0)  # the group's minute passes before the next round
    return {"card": summary(latencies), "errors": len(errors), "abuser_rounds": rounds}
