"""What answers a scripted customer's message: the expected answer of each step, from the domain's responses.

A step's latency ends at the message that answers it, never at an acknowledgement, a typing action or the follow-up
("Is there anything else I can help you with?"). The answer is a rendering of one of the responses its intent is
answered with (ANSWERED_BY): a FAQ question by `utter_faq/<topic>` or, when the classifier is not sure of the topic
(actions/faq.py), by a help-center article (`utter_help_center_answer…`); a greeting by one of the greetings, a
complaint by the apology that names the problem, a "never mind" during the complaint by `utter_complaint_stopped`. Both sides
of bench/chat.py use this one definition: through the emulator the latency runs to the first message in the chat
that is such a rendering; for Rasa's REST channel its answer must hold one, or the step is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from devstack.stack import ROOT

# An intent's answer: the responses that answer it (a name ending in "*": every response with that prefix).
ANSWERED_BY: dict[str, tuple[str, ...]] = {
    "greet": ("utter_greet", "utter_greet_name", "utter_greet_returning", "utter_greet_returning_name"),
    "complain": ("utter_complaint_ack*", "utter_complaint_resumed"),
    "stop": ("utter_complaint_stopped",),
}
FAQ_ALSO = ("utter_help_center_answer*",)  # a FAQ question the classifier is unsure of may get an article instead
_SLOT = re.compile(r"\{[a-z_][a-z0-9_]*\}")


@dataclass(frozen=True)
class Step:
    """One scripted message and the intent it is written in (which says what answers it)."""

    text: str
    intent: str


def template_pattern(template: str) -> re.Pattern[str]:
    """A response text as a pattern that matches its renderings: each `{slot}` stands for some text."""
    pieces = _SLOT.split(template.strip())
    return re.compile(".+?".join(re.escape(piece) for piece in pieces), re.DOTALL)


def response_names(intent: str, responses: dict[str, Any]) -> list[str]:
    """The names of the responses that answer `intent` (`faq/<topic>`: `utter_faq/<topic>`), KeyError if none."""
    wanted = (f"utter_{intent}", *FAQ_ALSO) if intent.startswith("faq/") else ANSWERED_BY[intent]
    names = [
        name
        for name in responses
        if any(name.startswith(one[:-1]) if one.endswith("*") else name == one for one in wanted)
    ]
    if not names or (intent.startswith("faq/") and f"utter_{intent}" not in names):
        raise KeyError(f"no response answers {intent!r}")
    return names


def answer_patterns(intent: str, responses: dict[str, Any]) -> tuple[re.Pattern[str], ...]:
    """Patterns of every text the answer to `intent` may have."""
    return tuple(
        template_pattern(variant["text"])
        for name in response_names(intent, responses)
        for variant in responses[name]
        if variant.get("text")
    )


@cache
def domain_responses() -> dict[str, Any]:
    """The responses of domain.yml (the database's content starts from them)."""
    return yaml.safe_load((ROOT / "domain.yml").read_text())["responses"]


@cache
def _patterns(intent: str) -> tuple[re.Pattern[str], ...]:
    return answer_patterns(intent, domain_responses())


def answers(step: Step, text: str | None, patterns: tuple[re.Pattern[str], ...] | None = None) -> bool:
    """Whether a message's text is the expected answer of `step` (`patterns`: instead of the domain's)."""
    if not text:
        return False
    return any(pattern.fullmatch(text.strip()) for pattern in patterns or _patterns(step.intent))
