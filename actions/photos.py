"""The customer's photos as the actions take them from a slot: at most MAX_PHOTOS well-formed Telegram file ids.

The `complaint_photos` slot is only as trustworthy as whoever set it: a forged tracker (or a slot set through Rasa's
HTTP API) may hold thousands of ids, or anything else. Every action that takes photos from the slot takes them through
`capped`, so a ticket never holds more than MAX_PHOTOS, nor the agents' group receive more copies.
"""

from __future__ import annotations

import re
from typing import Any

MAX_PHOTOS = 10
FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def capped(value: Any) -> list[str]:
    """The first MAX_PHOTOS distinct well-formed file ids in a slot's value, in order (none when it is no list)."""
    kept: list[str] = []
    if not isinstance(value, list):
        return kept
    for item in value:
        if isinstance(item, str) and FILE_ID.fullmatch(item) and item not in kept:
            kept.append(item)
            if len(kept) == MAX_PHOTOS:
                break
    return kept
