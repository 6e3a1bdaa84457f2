"""Empathy first, through the real stack: every complaint opening is apologised for, by name, in the first reply.

Each opening of tests/data/complaints.yml goes to a chat of its own (many chats at once). The bot's first message
must apologise and name the problem with its category's plain words; the next missing detail is asked in that
message or the next one; a repeat hears that it happened again; an angry customer is offered a person within the
first two replies and hears nothing cheerful. No look-alike is apologised for or turned into a complaint.
The sealed set (tests/data/complaints_sealed.yml) is only reported: printed and written to var/results/empathy.json.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from bot.emulator.client import EmulatorClient
from devstack.stack import ROOT
from tests.e2e.helpers import variations

DATA = ROOT / "tests" / "data"
RESULTS = ROOT / "var" / "results" / "empathy.json"
AT_ONCE = 12  # chats talking to the bot at the same time
QUESTION_WAIT = 20.0  # seconds an opening's next question may take after the apology
BATCH_WAIT = 1.5  # seconds after a look-alike's answer in which more of it may arrive
# The plain words the first reply names each problem with (actions/categories.py holds the same).
PHRASES = {
    "damaged": "your item arriving damaged",
    "wrong_item": "being sent the wrong item",
    "wrong_size": "the wrong size",
    "missing_parts": "parts missing from your order",
    "late": "your order arriving late",
    "not_arrived": "your order never arriving",
    "delivered_not_received": "your order showing as delivered when it never reached you",
    "charged_twice": "being charged twice",
    "refund_missing": "your refund not reaching you",
    "rude_staff": "the way you were treated by our staff or courier",
    "no_reply": "not getting a reply from us",
    "stopped_working": "a product that stopped working",
    "other": "what you've been through",
}
APOLOGY = re.compile(r"\b(sorry|apologi[sz]e)", re.IGNORECASE)
AGAIN = re.compile(r"\bagain\b", re.IGNORECASE)
CHEERFUL = re.compile(
    r"\b(great|no problem|awesome|perfect|happy to|good news|wonderful|excellent|lovely)\b", re.IGNORECASE
)
PERSON_BUTTON = "Talk to a person"
FORM_QUESTIONS = (
    "utter_ask_complaint_description",
    "utter_ask_order_number",
    "utter_ask_complaint_category",
    "utter_ask_desired_resolution",
    "utter_ask_complaint_photos",
    "utter_ask_contact",
)


@dataclass
class Outcome:
    text: str
    replies: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DATA / name).read_text())


def _texts(messages: list[dict]) -> list[str]:
    return [(m.get("text") or "").strip() for m in messages]


def _buttons(message: dict) -> list[str]:
    return [b["text"] for row in (message.get("reply_markup") or {}).get("inline_keyboard") or [] for b in row]


async def _replies(emulator: EmulatorClient, user: int, text: str, *, question: bool) -> list[dict]:
    """The bot's messages to one message: up to a question (an opening) or all of the first batch (a look-alike)."""
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, text)
    found: list[dict] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while loop.time() < deadline:
        # An opening's question may follow its apology a while later when many chats are busy; a look-alike's
        # answer comes in one batch.
        quiet = QUESTION_WAIT if question else BATCH_WAIT
        batch = await emulator.sent(user, after, wait=deadline - loop.time() if not found else quiet)
        after = batch.last
        new = [m for m in batch.messages if m["method"] == "sendMessage"]
        if found and not new:
            return found  # nothing more within a moment of the last message
        found += new
        if question and any("?" in t for t in _texts(found)):
            return found
    return found


async def _opening(emulator: EmulatorClient, user: int, case: dict[str, Any]) -> Outcome:
    await emulator.add_user("Maya", user_id=user, last_name="Lind", language_code="en")
    outcome = Outcome(case["text"], await _replies(emulator, user, case["text"], question=True))
    texts = _texts(outcome.replies)
    if not texts:
        return Outcome(case["text"], problems=["no reply"])
    first, phrase = texts[0], PHRASES[case["category"]]
    if not APOLOGY.search(first):
        outcome.problems.append("no apology in the first reply")
    if phrase not in first:
        outcome.problems.append(f"the first reply does not name {phrase!r}")
    if not any("?" in t for t in texts[:2]):
        outcome.problems.append("no question for the next detail in the first two replies")
    if case.get("repeat") and not AGAIN.search(first):
        outcome.problems.append("a repeat not told it happened again")
    if case.get("angry"):
        if not any(PERSON_BUTTON in _buttons(m) for m in outcome.replies[:2]):
            outcome.problems.append("an angry customer not offered a person in the first two replies")
        if any(CHEERFUL.search(t) for t in texts):
            outcome.problems.append("cheerful words to an angry customer")
    return outcome


async def _lookalike(emulator: EmulatorClient, user: int, text: str) -> Outcome:
    await emulator.add_user("Maya", user_id=user, last_name="Lind", language_code="en")
    outcome = Outcome(text, await _replies(emulator, user, text, question=False))
    texts = _texts(outcome.replies)
    questions = {q for response in FORM_QUESTIONS for q in variations(response)}
    if not texts:
        outcome.problems.append("no reply")
    if any(APOLOGY.search(t) for t in texts):
        outcome.problems.append("apologised for")
    if any(t in questions for t in texts):
        outcome.problems.append("turned into a complaint")
    return outcome


async def _run(emulator: EmulatorClient, data: dict[str, Any], first_user: int) -> tuple[list[Outcome], list[Outcome]]:
    gate = asyncio.Semaphore(AT_ONCE)

    async def gated(work: Awaitable[Outcome]) -> Outcome:
        async with gate:
            return await work

    openings = [_opening(emulator, first_user + n, case) for n, case in enumerate(data["openings"])]
    base = first_user + len(openings)
    lookalikes = [_lookalike(emulator, base + n, text) for n, text in enumerate(data["lookalikes"])]
    results = await asyncio.gather(*(gated(w) for w in [*openings, *lookalikes]))
    return results[: len(openings)], results[len(openings) :]


def _figures(name: str, openings: list[Outcome], lookalikes: list[Outcome]) -> dict[str, Any]:
    apologised = sum(not o.problems for o in openings)
    false = sum(bool(o.problems) for o in lookalikes)
    figures = {
        "openings": len(openings),
        "apologised_in_first_reply": round(apologised / len(openings), 4),
        "lookalikes": len(lookalikes),
        "false_apology_or_form": round(false / len(lookalikes), 4),
        "missed": {o.text: o.problems for o in openings if o.problems},
        "false": {o.text: [*o.problems, *_texts(o.replies)[:1]] for o in lookalikes if o.problems},
        "first_replies": {o.text: _texts(o.replies)[:2] for o in openings},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    saved[name] = figures
    RESULTS.write_text(json.dumps(saved, indent=2))
    print(
        f"\n{name}: {apologised}/{len(openings)} openings apologised for in the first reply "
        f"({figures['apologised_in_first_reply']:.1%}); {false}/{len(lookalikes)} look-alikes apologised for "
        f"or made a complaint ({figures['false_apology_or_form']:.1%})"
    )
    return figures


async def test_every_complaint_opening_is_apologised_for_and_no_lookalike_is(emulator: EmulatorClient) -> None:
    openings, lookalikes = await _run(emulator, _load("complaints.yml"), 780_001)
    figures = _figures("complaints.yml", openings, lookalikes)
    assert not figures["missed"], json.dumps(figures["missed"], indent=1)
    assert not figures["false"], json.dumps(figures["false"], indent=1)


async def test_the_sealed_set_is_reported(emulator: EmulatorClient, capsys: pytest.CaptureFixture[str]) -> None:
    """Reported, never asserted: the sealed set is never tuned on (its header says so)."""
    openings, lookalikes = await _run(emulator, _load("complaints_sealed.yml"), 782_001)
    with capsys.disabled():
        _figures("complaints_sealed.yml", openings, lookalikes)
