"""How urgent a new ticket is: the whole rule, in one place."""

from __future__ import annotations

import re

from bot.storage.models import TicketPriority

LEVELS = [TicketPriority.LOW, TicketPriority.NORMAL, TicketPriority.HIGH, TicketPriority.URGENT]
ANGRY = re.compile(
    r"\b(furious|angry|outraged|disgusting|disgraceful|unacceptable|ridiculous|useless|worst|scam|joke|fed up|sick of)\b|!{2,}",
    re.IGNORECASE,
)


def angry_tone(text: str) -> bool:
    """Strong words, repeated exclamation marks, or a message shouted in capitals."""
    letters = [c for c in text if c.isalpha()]
    shouting = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.7
    return shouting or bool(ANGRY.search(text))


def ticket_priority(*, repeat: bool, desired_resolution: str, description: str) -> TicketPriority:
    """NORMAL, one step up for each of: the same problem again, a refund asked for, an angry tone."""
    steps = sum([repeat, desired_resolution == "refund", angry_tone(description)])
    return LEVELS[min(1 + steps, len(LEVELS) - 1)]
