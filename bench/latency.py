"""Per-message latency: customer → emulator → app → Rasa → app → emulator, next to bare Rasa REST.

Run with `make bench-latency` (N messages, default 100); prints a table and writes var/bench/latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp

from bench._common import heldout, running_stack
from bot.emulator.client import EmulatorClient
from devstack.stack import ROOT, Stack


def _messages(count: int) -> list[str]:
    texts = [text for examples in heldout().values() for text in examples]
    return [texts[i % len(texts)] for i in range(count)]


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def _through_frontline(stack: Stack, texts: list[str]) -> list[float]:
    samples = []
    async with EmulatorClient(stack.emulator_url) as emulator:
        user = await emulator.add_user("Bench", user_id=990_001)
        for text in texts:
            after = (await emulator.sent(user["id"])).last
            started = time.perf_counter()
            await emulator.send_text(user["id"], text)
            await emulator.wait_for_text(user["id"], after, timeout=30)
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(1.0)  # Telegram allows about one message a second into a chat
    return samples


async def _bare_rasa(stack: Stack, texts: list[str]) -> list[float]:
    samples = []
    async with aiohttp.ClientSession(headers=stack.rasa_headers) as http:
        for text in texts:
            started = time.perf_counter()
            async with http.post(
                f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": "bench-bare", "message": text}
            ) as response:
                await response.json()
            samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    """Start the stack, measure both paths on the same messages, report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=100, help="messages to send (default 100)")
    args = parser.parse_args()
    texts = _messages(args.n)
    with running_stack() as stack:
        frontline = _summary(asyncio.run(_through_frontline(stack, texts)))
        bare = _summary(asyncio.run(_bare_rasa(stack, texts)))
    result = {"messages": args.n, "frontline_via_emulator": frontline, "bare_rasa_rest": bare}
    print(f"{'path':<28}{'n':>5}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}")
    for name, row in (("Frontline via emulator", frontline), ("bare Rasa REST webhook", bare)):
        print(f"{name:<28}{row['n']:>5}{row['median_ms']:>12}{row['p95_ms']:>10}{row['max_ms']:>10}")
    out = ROOT / "var" / "bench" / "latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
