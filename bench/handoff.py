"""Handoffs to people under chat load: how fast a request reaches the agents, and an agent's words the customer.

Run with `make bench-handoff`. The stack runs with several agents in the agents' forum group, each with their private
chat started. While background customers hold scripted conversations (bench/chat.py), customers ask "I want to talk to
a real person" one every few seconds; an agent claims each card, the customer writes, and the agent answers in their
private chat replying to the relayed message. Measured (emulator clock, from the moment the emulator accepted a
message): request → card in the agents' group, and agent message → customer; also the customer's "in line" answer,
claim → customer told, and customer → agent relay. Telegram's limit of 20 bot messages a minute in a group stays on
for the headline figures, so cards queue behind it; a second round runs with the flood limits off for comparison
(the emulator's, and the app's own pacing of the group: TELEGRAM_GROUP_RATE=0).
Prints a table and writes var/bench/handoff.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench import handoff_abuse, handoff_goal
from bench._common import is_new_message, measure_on_stack, memory_table, summary, table
from bench.customers import CallLog, Phrases, Tally, background_load, heldout_phrases, understood_phrases
from bot.emulator.client import EmulatorClient
from devstack.stack import AGENT_ID, Stack

REQUEST = "I want to talk to a real person"
AGENT_NAMES = ("Alex", "Bea", "Cal", "Dee", "Eli", "Fay")  # Alex is the stack's agent; the others join here
MEASURES = (
    ("card", "request → card in agents' group"),
    ("queued", "request → customer told 'in line'"),
    ("claimed", "Claim → customer told who helps"),
    ("relay", "customer → agent's private chat"),
    ("agent_reply", "agent message → customer"),
)
_user_ids = itertools.count(960_001)


@dataclass
class Handoffs:
    """Latencies by measure, and what went wrong."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name, _ in MEASURES})
    errors: Counter[str] = field(default_factory=Counter)


async def _wait_for(emulator: EmulatorClient, chat_id: int, after: int, needle: str, timeout: float) -> dict:
    """The first new bot message in a chat after a seq whose text contains `needle`."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        batch = await emulator.sent(chat_id, after, wait=remaining)
        for entry in batch.messages:
            if is_new_message(entry) and needle in (entry.get("text") or entry.get("caption") or ""):
                return entry
        after = batch.last
    raise TimeoutError(f"no {needle!r} in chat {chat_id} within {timeout:.0f} s")


async def _say(emulator: EmulatorClient, from_id: int, text: str, **options: Any) -> tuple[int, float]:
    """Send a text; return the chat's sent-log seq from before it and when the emulator accepted it."""
    after = (await emulator.sent(from_id)).last
    await emulator.send_text(from_id, text, **options)
    return after, time.time()


def _claim_data(card: dict) -> str:
    rows = (card.get("reply_markup") or {}).get("inline_keyboard") or []
    return next(button["callback_data"] for row in rows for button in row if button["text"] == "Claim")


async def add_agents(emulator: EmulatorClient, group: int, count: int) -> list[tuple[int, str]]:
    """Alex plus new members of the agents' group, each with their private chat started (/start)."""
    agents = [(AGENT_ID, AGENT_NAMES[0])]
    for offset, name in enumerate(AGENT_NAMES[1:count], start=1):
        user = await emulator.add_user(name, user_id=AGENT_ID + offset, username=f"{name.lower()}_agent")
        await emulator.set_member(group, user["id"])
        agents.append((user["id"], name))
    for agent_id, _ in agents:
        after, _ = await _say(emulator, agent_id, "/start")
        await _wait_for(emulator, agent_id, after, "You're set up as an agent", timeout=30)
    return agents


async def one_handoff(
    emulator: EmulatorClient,
    group: int,
    index: int,
    agent: tuple[int, str],
    result: Handoffs,
    *,
    delay: float,
    replies: int,
    timeout: float,
    tag: str,
) -> None:
    """A customer asks for a person; the agent claims the card and answers; every step timed."""
    await asyncio.sleep(delay)
    first_name = f"Hoff{tag}{index:02d}"
    customer = (await emulator.add_user(first_name, last_name="Bench", language_code="en", user_id=next(_user_ids)))[
        "id"
    ]
    agent_id, agent_name = agent
    step = "card"
    try:
        group_after = (await emulator.sent(group)).last
        after, asked = await _say(emulator, customer, REQUEST)
        queued, card = await asyncio.gather(
            _wait_for(emulator, customer, after, "in line", timeout),
            _wait_for(emulator, group, group_after, f"{first_name} Bench", timeout),
        )
        result.latencies["queued"].append(queued["time"] - asked)
        result.latencies["card"].append(card["time"] - asked)

        step = "claimed"
        customer_after = (await emulator.sent(customer)).last
        agent_after = (await emulator.sent(agent_id)).last
        await emulator.press(agent_id, card["message_id"], _claim_data(card), chat_id=group)
        pressed = time.time()
        told = await _wait_for(emulator, customer, customer_after, f"this is {agent_name}", timeout)
        result.latencies["claimed"].append(told["time"] - pressed)
        await _wait_for(emulator, agent_id, agent_after, "You're now talking with", timeout)

        for number in range(replies):
            step = "relay"
            token = f"{first_name}-{number}"
            agent_after = (await emulator.sent(agent_id)).last
            _, wrote = await _say(emulator, customer, f"my parcel has not arrived yet ({token})")
            relayed = await _wait_for(emulator, agent_id, agent_after, token, timeout)
            result.latencies["relay"].append(relayed["time"] - wrote)
            step = "agent_reply"
            customer_after = (await emulator.sent(customer)).last
            text = f"I'm checking with the courier now ({token})"
            _, answered = await _say(emulator, agent_id, text, reply_to_message_id=relayed["message_id"])
            delivered = await _wait_for(emulator, customer, customer_after, f"{agent_name}: {text}", timeout)
            result.latencies["agent_reply"].append(delivered["time"] - answered)
            await asyncio.sleep(1.0)
    except TimeoutError:
        result.errors[f"{step}: timed out"] += 1


async def run_round(
    stack: Stack,
    emulator: EmulatorClient,
    agents: list[tuple[int, str]],
    phrases: Phrases,
    args: argparse.Namespace,
    tag: str,
) -> dict[str, Any]:
    """Background chat load plus `args.handoffs` handoffs, one every `args.interval` seconds."""
    calls = CallLog(emulator)
    await calls.skip()
    load, stop, result = Tally(), asyncio.Event(), Handoffs()
    loading = asyncio.create_task(background_load(emulator, phrases, args.load, stop, load, think=1.0, timeout=30))
    started = time.monotonic()
    await asyncio.sleep(3.0)  # the load under way first
    await asyncio.gather(
        *(
            one_handoff(
                emulator,
                stack.agent_chat_id,
                index,
                agents[index % len(agents)],
                result,
                delay=index * args.interval,
                replies=args.replies,
                timeout=args.timeout,
                tag=tag,
            )
            for index in range(args.handoffs)
        )
    )
    stop.set()
    await loading
    return {
        "handoffs": args.handoffs,
        "seconds": round(time.monotonic() - started, 1),
        **{name: summary(samples) for name, samples in result.latencies.items()},
        "errors": dict(result.errors),
        "chat_load": load.report(args.load, time.monotonic() - started),
        "flood": await calls.statuses(),
    }


async def _measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        phrases = await understood_phrases(http, stack.rasa_url, heldout_phrases(), stack.rasa_token)
    async with EmulatorClient(stack.emulator_url) as emulator:
        agents = await add_agents(emulator, stack.agent_chat_id, args.agents)
        result: dict[str, Any] = {
            "settings": {
                "handoffs": args.handoffs,
                "interval_seconds": args.interval,
                "agents": len(agents),
                "replies_per_handoff": args.replies,
                "load_customers": args.load,
            },
        }
        if args.goal_only:
            result["goal"] = await handoff_goal.run(
                emulator, stack.agent_chat_id, agents, lambda **env: _restart_app(stack, **env), timeout=args.timeout
            )
            return result
        result["limits_on"] = await run_round(stack, emulator, agents, phrases, args, "A")
        if args.compare:
            # Off on both sides: the emulator's enforcement, and the app's own pacing of the group (restarted).
            await emulator.set_limits(enabled=False)
            _restart_app(stack, TELEGRAM_GROUP_RATE="0")
            try:
                result["limits_off"] = await run_round(stack, emulator, agents, phrases, args, "B")
            finally:
                await emulator.set_limits(enabled=True)
                _restart_app(stack)
        if args.goal:
            result["goal"] = await handoff_goal.run(
                emulator, stack.agent_chat_id, agents, lambda **env: _restart_app(stack, **env), timeout=args.timeout
            )
        if args.abuse:
            result["fairness"] = {
                "alone": await handoff_abuse.run(
                    emulator, stack.agent_chat_id, abuse=False, tag="C", timeout=args.timeout
                ),
                "with_abuser": await handoff_abuse.run(
                    emulator, stack.agent_chat_id, abuse=True, tag="D", timeout=args.timeout
                ),
            }
    return result


def _restart_app(stack: Stack, **env: str) -> None:
    """The app stopped cleanly and started again with these settings."""
    stack.kill("app", signal.SIGTERM)
    stack.start_app(**env)


def print_report(result: dict[str, Any]) -> None:
    """The table of a run."""
    rounds = [name for name in ("limits_on", "limits_off") if name in result]
    labels = {"limits_on": "", "limits_off": " (no limits)"}
    header = ["measure"] + [f"{label}{labels[name]}" for name in rounds for label in ("n", "p50 ms", "p95 ms")]
    rows = [
        [title]
        + [
            value
            for name in rounds
            for value in (result[name][key]["n"], result[name][key]["p50_ms"], result[name][key]["p95_ms"])
        ]
        for key, title in MEASURES
    ]
    if rounds:
        print(table(header, rows))
    if "goal" in result:
        goal = result["goal"]
        print(
            f"\ngoal: {goal['requests']} requests within {goal['spread_seconds']:g} s, {goal['agents']} agents online, "
            f"AUTO_ASSIGN=1, MAX_CHATS_PER_AGENT={goal['max_chats_per_agent']}, limits on, private_burst=1 "
            f"(cards per agent: {goal['cards_per_agent']}); goal p95 ≤ {goal['goal_p95_ms']} ms for the private card"
        )
        print(
            table(
                ["measure", "n", "p50 ms", "p95 ms"],
                [
                    [title, goal[key]["n"], goal[key]["p50_ms"], goal[key]["p95_ms"]]
                    for key, title in handoff_goal.MEASURES
                ],
            )
        )
    for name in rounds:
        one = result[name]
        load, flood = one["chat_load"], one["flood"]
        print(
            f"\n{name.replace('_', ' ')}: {one['handoffs']} handoffs in {one['seconds']} s, errors {one['errors'] or 0}; "
            f"chat load {load['customers']} customers, {load['messages_per_second']} msg/s, p50 {load['latency']['p50_ms']} ms, "
            f"p95 {load['latency']['p95_ms']} ms, errors {sum(load['errors'].values())}, bot-down handoffs "
            f"{load['handoffs']}; "
            f"429s {flood['429']} (group {flood['429_group']}, private {flood['429_private']})"
        )
    if "fairness" in result:
        fair = result["fairness"]
        print(
            "\n"
            + table(
                ["5 customers ask for a person", "n", "card p50 ms", "card p95 ms", "errors"],
                [
                    [
                        title,
                        fair[key]["card"]["n"],
                        fair[key]["card"]["p50_ms"],
                        fair[key]["card"]["p95_ms"],
                        fair[key]["errors"],
                    ]
                    for key, title in (
                        ("alone", "alone"),
                        ("with_abuser", "while one repeats album + request + /cancel x10"),
                    )
                ],
            )
        )
    print("\n" + memory_table(result["memory"]))


def main() -> None:
    """Start the stack, run the handoff rounds under load, report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--handoffs", type=int, default=20, help="customers asking for a person (default 20)")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between two requests (default 3)")
    parser.add_argument(
        "--agents", type=int, default=4, help=f"agents in the group, at most {len(AGENT_NAMES)} (default 4)"
    )
    parser.add_argument("--replies", type=int, default=2, help="agent messages per handoff (default 2)")
    parser.add_argument("--load", type=int, default=20, help="background chat customers (default 20)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for any one step (default 300)")
    parser.add_argument("--no-compare", dest="compare", action="store_false", help="skip the round with limits off")
    parser.add_argument(
        "--no-abuse",
        dest="abuse",
        action="store_false",
        help="skip the fairness case (five customers with and without one repeating customer)",
    )
    parser.add_argument(
        "--no-goal",
        dest="goal",
        action="store_false",
        help="skip the goal round (20 requests within a second, AUTO_ASSIGN=1: request → card in a private chat)",
    )
    parser.add_argument("--goal-only", action="store_true", help="run the goal round alone")
    args = parser.parse_args()
    measure_on_stack("handoff", lambda stack: _measure(stack, args), print_report)


if __name__ == "__main__":
    main()
