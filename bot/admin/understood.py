"""How well the examples are understood, for the console's pages: an intent's quick cross-validation (its page,
right after every save) and the nearest intent for each question the bot did not understand (the dashboard).

The work (bot/content/understanding.py) is pure Python and takes the CPU for a moment: it runs in a thread, one
check at a time, so the bot's customers are not held up.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.admin.insights import Unanswered
from bot.content import understanding
from bot.content.files import Content

_one_at_a_time = threading.Lock()
T = TypeVar("T")


def _alone(work: Callable[..., T], *args: object) -> T:
    """The work, when no other check runs (in the thread it was given)."""
    with _one_at_a_time:
        return work(*args)


def examples_of(content: Content) -> dict[str, list[str]]:
    """Every intent's examples (intents without any are left out: the model cannot learn them)."""
    return {name: list(intent.examples) for name, intent in content.intents.items() if intent.examples}


async def check(content: Content, name: str) -> understanding.Check:
    """Intent `name` cross-validated against every intent of the content."""
    return await asyncio.to_thread(_alone, understanding.check, examples_of(content), name)


@dataclass(frozen=True)
class Suggestion:
    """The intent a question most likely belongs to: its name, a score from 0 to 1, and who says so."""

    intent: str
    score: float
    source: str  # "model": the live model's confidence, recorded by Rasa; "check": the console's quick check


def from_rasa(ranking: Sequence[tuple[str, float]], known: Mapping[str, object]) -> Suggestion | None:
    """The best intent of Rasa's ranking the content still has (never nlu_fallback or out_of_scope)."""
    for name, confidence in ranking:
        if name in known and name not in understanding.NOT_SUGGESTED:
            return Suggestion(name, max(0.0, min(1.0, confidence)), "model")
    return None


def suggest(intents: Mapping[str, Sequence[str]], questions: Sequence[Unanswered]) -> list[Suggestion | None]:
    """Each question's suggestion: Rasa's own ranking where it recorded one, else the quick check's nearest intent."""
    nearest: understanding.Nearest | None = None
    found: list[Suggestion | None] = []
    for question in questions:
        suggestion = from_rasa(question.ranking, intents)
        if suggestion is None:
            nearest = nearest or understanding.Nearest(intents)
            best = nearest.nearest(question.text)
            suggestion = Suggestion(best[0], best[1], "check") if best else None
        found.append(suggestion)
    return found


async def suggestions(content: Content, questions: Sequence[Unanswered]) -> list[Suggestion | None]:
    """`suggest` for the content's intents, in a thread."""
    if not questions:
        return []
    return await asyncio.to_thread(_alone, suggest, examples_of(content), questions)
