"""Scripted customers for the stack benchmarks: what they say, how they talk to the bot or to bare Rasa, what is counted.

A script is a greeting, two or three questions from the held-out FAQ phrasings, and for every other customer a complaint
begun and dropped ("never mind"). A customer through the emulator waits for the bot's first new message after each of
its messages (the latency, on the emulator's clock); one straight to Rasa's REST channel waits for Rasa's answer.
bench/chat.py runs them many at once; bench/handoff.py keeps them as background load.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench._common import heldout, is_new_message, summary
from bot.emulator.client import EmulatorClient, EmulatorClientError
from bot.replies import HANDOFF_BOT_DOWN

START_SPREAD = 2.0  # customers start within this many seconds of each other, not all in the same millisecond
_user_ids = itertools.count(910_001)


async def new_customer(emulator: EmulatorClient, first_name: str) -> int:
    """A new customer in the emulator (an English speaker, a user id of its own); its id."""
    user = await emulator.add_user(first_name, last_name="Customer", language_code="en", user_id=next(_user_ids))
    return int(user["id"])


@dataclass(frozen=True)
class Phrases:
    """What scripted customers say, by role in the conversation."""

    greetings: list[str]
    questions: list[str]
    complaints: list[str]
    drops: list[str]


def heldout_phrases() -> Phrases:
    """All held-out phrasings of the intents the scripts use."""
    data = heldout()
    return Phrases(
        greetings=data["greet"],
        questions=[text for intent, texts in data.items() if intent.startswith("faq/") for text in texts],
        complaints=data["complain"],
        drops=data["stop"],
    )


def scripts(count: int, phrases: Phrases, seed: int = 5) -> list[list[str]]:
    """`count` conversations: greeting, 2–3 questions, and for every other one a complaint begun and dropped."""
    rng = random.Random(seed)
    conversations = []
    for index in range(count):
        turns = [rng.choice(phrases.greetings), *rng.sample(phrases.questions, rng.choice((2, 3)))]
        if index % 2 and phrases.complaints and phrases.drops:
            turns += [rng.choice(phrases.complaints), rng.choice(phrases.drops)]
        conversations.append(turns)
    return conversations


async def understood_phrases(http: aiohttp.ClientSession, rasa_url: str, phrases: Phrases, token: str) -> Phrases:
    """Only the phrasings the trained model puts in their intent, so that no script drifts into a handoff
    (`token`: RASA_TOKEN, which Rasa's HTTP API reads from the query string)."""
    groups = {
        "greet": phrases.greetings,
        "faq": phrases.questions,
        "complain": phrases.complaints,
        "stop": phrases.drops,
    }
    kept: dict[str, list[str]] = {}
    for intent, texts in groups.items():
        kept[intent] = []
        for text in texts:
            async with http.post(f"{rasa_url}/model/parse", json={"text": text}, params={"token": token}) as response:
                name = ((await response.json()).get("intent") or {}).get("name") or ""
            if name.split("/")[0] == intent:
                kept[intent].append(text)
    return Phrases(kept["greet"], kept["faq"], kept["complain"], kept["stop"])


@dataclass
class Tally:
    """What one phase measured."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    messages: int = 0

    def report(self, customers: int, seconds: float) -> dict[str, Any]:
        return {
            "customers": customers,
            "messages": self.messages,
            "seconds": round(seconds, 2),
            "messages_per_second": round(self.messages / seconds, 2) if seconds else None,
            "latency": summary(self.latencies),
            "errors": dict(self.errors),
        }


async def _first_reply(emulator: EmulatorClient, chat_id: int, after: int, timeout: float) -> dict | None:
    """The bot's first new message in a chat after a seq, or None within the timeout."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        batch = await emulator.sent(chat_id, after, wait=remaining)
        for entry in batch.messages:
            if is_new_message(entry):
                return entry
        after = batch.last
    return None


async def frontline_customer(
    emulator: EmulatorClient,
    user_id: int,
    script: list[str],
    tally: Tally,
    *,
    think: float,
    timeout: float,
    delay: float = 0.0,
    stop: asyncio.Event | None = None,
) -> None:
    """One customer through the emulator: each message waits for the bot's first reply, then `think` seconds."""
    await asyncio.sleep(delay)
    for text in script:
        if stop is not None and stop.is_set():
            return
        after = (await emulator.sent(user_id)).last
        try:
            await emulator.send_text(user_id, text)
        except (EmulatorClientError, aiohttp.ClientError) as exc:
            tally.errors[f"send failed: {exc}"[:80]] += 1
            continue
        accepted = time.time()
        tally.messages += 1
        reply = await _first_reply(emulator, user_id, after, timeout)
        if reply is None:
            tally.errors[f"no reply within {timeout:.0f} s"] += 1
        else:
            tally.latencies.append(max(0.0, reply["time"] - accepted))
            if (reply.get("text") or "").startswith(HANDOFF_BOT_DOWN):
                # Rasa did not answer within RASA_TIMEOUT: the app handed the customer to a person, so the bot
                # stays silent for the rest of the script.
                tally.errors["Rasa too slow: handed to a person"] += 1
                return
        await asyncio.sleep(think)


async def rasa_customer(
    http: aiohttp.ClientSession,
    rasa_url: str,
    sender: str,
    script: list[str],
    tally: Tally,
    *,
    think: float,
    timeout: float,
    delay: float = 0.0,
) -> None:
    """The same conversation straight to Rasa's REST channel: each message waits for Rasa's answer."""
    await asyncio.sleep(delay)
    for text in script:
        started = time.perf_counter()
        tally.messages += 1
        try:
            async with http.post(
                f"{rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": text},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                answer = await response.json(content_type=None) if response.status == 200 else None
                if response.status != 200:
                    tally.errors[f"HTTP {response.status}"] += 1
                elif not answer:
                    tally.errors["empty answer"] += 1
                else:
                    tally.latencies.append(time.perf_counter() - started)
        except TimeoutError:
            tally.errors[f"no answer within {timeout:.0f} s"] += 1
        except aiohttp.ClientError as exc:
            tally.errors[f"request failed: {type(exc).__name__}"] += 1
        await asyncio.sleep(think)


async def background_load(
    emulator: EmulatorClient,
    phrases: Phrases,
    customers: int,
    stop: asyncio.Event,
    tally: Tally,
    *,
    think: float,
    timeout: float,
) -> None:
    """`customers` customers holding one scripted conversation after another until `stop` is set."""

    async def customer(index: int) -> None:
        for script in scripts(100, phrases, seed=index):  # one new customer after another in this slot
            if stop.is_set():
                return
            user = await new_customer(emulator, f"Load{index}")
            await frontline_customer(
                emulator,
                user,
                script,
                tally,
                think=think,
                timeout=timeout,
                delay=random.Random(index).uniform(0, START_SPREAD),
                stop=stop,
            )

    await asyncio.gather(*(customer(index) for index in range(customers)))


class CallLog:
    """Follows the emulator's Bot API call log, to count what it answered to the bot's sends."""

    def __init__(self, emulator: EmulatorClient) -> None:
        self._emulator = emulator
        self._after = 0

    async def skip(self) -> None:
        """Start counting from now."""
        calls = await self._emulator.calls(after=self._after)
        self._after = calls[-1]["seq"] if calls else self._after

    async def statuses(self) -> dict[str, Any]:
        """HTTP statuses of the sending calls since the last call, with the 429s by kind of chat."""
        await asyncio.sleep(0.5)  # let calls in flight be answered
        calls = await self._emulator.calls(after=self._after)
        self._after = calls[-1]["seq"] if calls else self._after
        sends = [call for call in calls if is_new_message(call)]
        refused = [call for call in sends if call["status"] == 429]
        return {
            "sends": len(sends),
            "statuses": dict(Counter(str(call["status"]) for call in sends)),
            "429": len(refused),
            "429_private": sum(1 for call in refused if int(call["params"].get("chat_id", 0)) > 0),
            "429_group": sum(1 for call in refused if int(call["params"].get("chat_id", 0)) < 0),
        }
