"""Scripted customers for the stack benchmarks: what they say, how they talk to the bot or to bare Rasa, what is counted.

A script is a greeting, two or three questions from the held-out FAQ phrasings, and for every other customer a complaint
begun and dropped ("never mind"); each step knows its intent, and so its expected answer (bench/answers.py). A customer
through the emulator waits, after each of its messages, for the message that answers it (the latency, on the
emulator's clock; the bot's first new message is kept apart); one straight to Rasa's REST channel waits for Rasa's
answer, which must hold the expected one. A customer handed to a person because Rasa was too slow is a failure,
counted apart. bench/chat.py runs them many at once; bench/handoff.py keeps them as background load.
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

from bench._common import held_by_flood, heldout, is_new_message, peak_in_window, summary
from bench.answers import Step, answers
from bench.hops import Answered
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
    questions: list[Step]  # each FAQ question with its `faq/<topic>` intent
    complaints: list[str]
    drops: list[str]


def heldout_phrases() -> Phrases:
    """All held-out phrasings of the intents the scripts use."""
    data = heldout()
    return Phrases(
        greetings=data["greet"],
        questions=[Step(text, intent) for intent, texts in data.items() if intent.startswith("faq/") for text in texts],
        complaints=data["complain"],
        drops=data["stop"],
    )


def scripts(count: int, phrases: Phrases, seed: int = 5) -> list[list[Step]]:
    """`count` conversations: greeting, 2–3 questions, and for every other one a complaint begun and dropped."""
    rng = random.Random(seed)
    conversations = []
    for index in range(count):
        turns = [Step(rng.choice(phrases.greetings), "greet"), *rng.sample(phrases.questions, rng.choice((2, 3)))]
        if index % 2 and phrases.complaints and phrases.drops:
            turns += [Step(rng.choice(phrases.complaints), "complain"), Step(rng.choice(phrases.drops), "stop")]
        conversations.append(turns)
    return conversations


async def understood_phrases(http: aiohttp.ClientSession, rasa_url: str, phrases: Phrases, token: str) -> Phrases:
    """Only the phrasings the trained model puts in their intent (a question: in its FAQ topic), so that no script
    drifts into a handoff or another answer (`token`: RASA_TOKEN, which Rasa's HTTP API reads from the query string)."""

    async def understood(step: Step) -> bool:
        async with http.post(f"{rasa_url}/model/parse", json={"text": step.text}, params={"token": token}) as response:
            parsed = await response.json()
        name = (parsed.get("intent") or {}).get("name") or ""
        if "/" not in step.intent:
            return name == step.intent
        selected = ((parsed.get("response_selector") or {}).get(name) or {}).get("response") or {}
        return selected.get("intent_response_key") == step.intent

    async def kept(steps: list[Step]) -> list[Step]:
        return [step for step in steps if await understood(step)]

    return Phrases(
        [step.text for step in await kept([Step(text, "greet") for text in phrases.greetings])],
        await kept(phrases.questions),
        [step.text for step in await kept([Step(text, "complain") for text in phrases.complaints])],
        [step.text for step in await kept([Step(text, "stop") for text in phrases.drops])],
    )


@dataclass
class Tally:
    """What one phase measured."""

    latencies: list[float] = field(default_factory=list)  # to the expected answer
    first_message: list[float] = field(default_factory=list)  # to the bot's first new message (the old yardstick)
    errors: Counter[str] = field(default_factory=Counter)
    handoffs: int = 0  # customers handed to a person because Rasa did not answer in time: failures
    messages: int = 0
    answered: int = 0
    steps: list[Answered] = field(default_factory=list)  # through the emulator: for bench/hops.py

    def report(self, customers: int, seconds: float) -> dict[str, Any]:
        return {
            "customers": customers,
            "messages": self.messages,
            "answered": self.answered,
            "seconds": round(seconds, 2),
            "messages_per_second": round(self.messages / seconds, 2) if seconds else None,
            "answers_per_second": round(self.answered / seconds, 2) if seconds else None,
            "latency": summary(self.latencies),
            "first_message_latency": summary(self.first_message),
            "handoffs": self.handoffs,
            "errors": dict(self.errors),
        }


@dataclass
class Awaited:
    """What came after a customer's message: the first new message, the expected answer, a bot-down handoff."""

    first: dict | None = None
    answer: dict | None = None
    handed_off: bool = False


async def await_answer(emulator: EmulatorClient, chat_id: int, after: int, step: Step, timeout: float) -> Awaited:
    """The bot's new messages in a chat after a seq, up to the expected answer of `step` or a bot-down handoff."""
    seen = Awaited()
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        batch = await emulator.sent(chat_id, after, wait=remaining)
        for entry in batch.messages:
            if not is_new_message(entry):
                continue
            seen.first = seen.first or entry
            text = entry.get("text") if entry.get("text") is not None else entry.get("caption")
            if (text or "").startswith(HANDOFF_BOT_DOWN):
                seen.handed_off = True
                return seen
            if answers(step, text):
                seen.answer = entry
                return seen
        after = batch.last
    return seen


async def frontline_customer(
    emulator: EmulatorClient,
    user_id: int,
    script: list[Step],
    tally: Tally,
    *,
    think: float,
    timeout: float,
    delay: float = 0.0,
    stop: asyncio.Event | None = None,
) -> None:
    """One customer through the emulator: each message waits for its expected answer, then `think` seconds."""
    await asyncio.sleep(delay)
    for step in script:
        if stop is not None and stop.is_set():
            return
        after = (await emulator.sent(user_id)).last
        sending = time.time()
        try:
            await emulator.send_text(user_id, step.text)
        except (EmulatorClientError, aiohttp.ClientError) as exc:
            tally.errors[f"send failed: {exc}"[:80]] += 1
            continue
        accepted = time.time()
        tally.messages += 1
        seen = await await_answer(emulator, user_id, after, step, timeout)
        if seen.first is not None:
            tally.first_message.append(max(0.0, seen.first["time"] - accepted))
        if seen.handed_off:
            # Rasa did not answer within RASA_TIMEOUT: the app handed the customer to a person, who now holds the
            # conversation; the bot stays silent for the rest of the script. A failure, counted apart.
            tally.handoffs += 1
            return
        if seen.answer is None:
            what = "no expected answer" if seen.first is not None else "no reply"
            tally.errors[f"{what} within {timeout:.0f} s"] += 1
        else:
            tally.answered += 1
            tally.latencies.append(max(0.0, seen.answer["time"] - accepted))
            tally.steps.append(Answered(user_id, sending, seen.answer["time"]))
        await asyncio.sleep(think)


async def rasa_customer(
    http: aiohttp.ClientSession,
    rasa_url: str,
    sender: str,
    script: list[Step],
    tally: Tally,
    *,
    think: float,
    timeout: float,
    delay: float = 0.0,
) -> None:
    """The same conversation straight to Rasa's REST channel: each message waits for Rasa's answer, which must
    hold the step's expected answer (all of Rasa's messages come at once: its first message is its answer's time)."""
    await asyncio.sleep(delay)
    for step in script:
        started = time.perf_counter()
        tally.messages += 1
        try:
            async with http.post(
                f"{rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": step.text},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                answer = await response.json(content_type=None) if response.status == 200 else None
                elapsed = time.perf_counter() - started
                if response.status != 200:
                    tally.errors[f"HTTP {response.status}"] += 1
                elif not answer:
                    tally.errors["empty answer"] += 1
                else:
                    tally.first_message.append(elapsed)
                    if any(answers(step, message.get("text")) for message in answer):
                        tally.answered += 1
                        tally.latencies.append(elapsed)
                    else:
                        tally.errors["no expected answer"] += 1
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
        self.last: list[dict[str, Any]] = []  # the calls the last `statuses` read

    async def skip(self) -> None:
        """Start counting from now."""
        calls = await self._emulator.calls(after=self._after)
        self._after = calls[-1]["seq"] if calls else self._after

    async def statuses(self) -> dict[str, Any]:
        """HTTP statuses of the sending calls since the last call, with the 429s by kind of chat."""
        await asyncio.sleep(0.5)  # let calls in flight be answered
        calls = await self._emulator.calls(after=self._after)
        self._after = calls[-1]["seq"] if calls else self._after
        self.last = calls
        sends = [call for call in calls if is_new_message(call)]
        refused = [call for call in sends if call["status"] == 429]
        return {
            "sends": len(sends),
            "statuses": dict(Counter(str(call["status"]) for call in sends)),
            "methods": dict(Counter(call["method"] for call in calls if call["method"] != "getUpdates")),
            "429": len(refused),
            "retry_after_s": sum(call.get("retry_after") or 0 for call in refused),
            "429_private": sum(1 for call in refused if int(call["params"].get("chat_id", 0)) > 0),
            "429_group": sum(1 for call in refused if int(call["params"].get("chat_id", 0)) < 0),
            "held_by_429": summary(held_by_flood(calls)),
            # Telegram counts 30 messages a second overall: the most that reached it in any second, and with the
            # chat actions (which python-telegram-bot's limiter in the app counts too).
            "peak_sends_per_second": peak_in_window([call["time"] for call in sends]),
            "peak_calls_per_second": peak_in_window(
                [call["time"] for call in calls if call["params"].get("chat_id") is not None]
            ),
            "private_held_by_429": summary(
                held_by_flood([call for call in calls if int(call["params"].get("chat_id", 0) or 0) > 0])
            ),
        }
