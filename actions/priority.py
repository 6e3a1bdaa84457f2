"""How urgent a new ticket is: the whole rule, in one place."""

from __future__ import annotations

import re

from bot.storage.models import TicketPriority

LEVELS = [TicketPriority.LOW, TicketPriority.NORMAL, TicketPriority.HIGH, TicketPriority.URGENT]
ANGRY = re.compile(
    r"\b(furious|fuming|livid|angry|outraged|disgust(ed|ing)|disgraceful|unacceptable|ridiculous|useless|worst|scam|joke"
    r"|fed up|sick of|appalling|pathetic|seriously)\b|!{2,}|\?{2,}",
    re.IGNORECASE,
)
SHOUTED_WORD = re.compile(r"\b[A-Z]{4,}\b")  # "AGAIN": letters only, so an order number is not shouting


def angry_tone(text: str) -> bool:
    """Strong words, repeated exclamation or question marks, or a message (or a word) shouted in capitals."""
    letters = [c for c in text if c.isalpha()]
    shouting = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.7
    return shouting or bool(ANGRY.search(text) or SHOUTED_WORD.search(text))


def ticket_priority(*, repeat: bool, desired_resolution: str, description: str, angry: bool = False) -> TicketPriority:
    """NORMAL, one step up for each of: the same problem again, a refund asked for, an angry tone (`angry`: heard
    earlier in the complaint, e.g. in its opening)."""
    steps = sum([repeat, desired_resolution == "refund", angry or angry_tone(description)])
    return LEVELS[min(1 + steps, len(LEVELS) - 1)]
