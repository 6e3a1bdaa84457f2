"""Fitting messages into Telegram's limits."""

from __future__ import annotations

MAX_MESSAGE_CHARS = 4096


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Split a text into Telegram-sized parts, preferring paragraph, line and word boundaries."""
    text = text.strip()
    parts: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts
