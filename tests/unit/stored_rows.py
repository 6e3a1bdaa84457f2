"""Every row the app stores, searched for what a forgotten customer must no longer be found by."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.base import Base


def _values(value: Any) -> Iterator[Any]:
    """Every scalar inside a value, JSON documents (dicts, lists, JSON text) opened up."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _values(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _values(inner)
    elif isinstance(value, str) and value[:1] in ("{", "["):
        try:
            yield from _values(json.loads(value))
        except ValueError:
            yield value
    elif isinstance(value, enum.Enum):
        yield value.value
    elif isinstance(value, datetime):
        return
    else:
        yield value


def traces(session: Session, words: tuple[str, ...], ids: tuple[int, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The rows (table, row) holding any of `words` (case-insensitive, inside any text) or any of `ids` (as a
    number, or as the whole of a text), in every table the app has."""
    found = []
    lowered = tuple(w.lower() for w in words)
    as_text = {str(i) for i in ids}
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)).mappings():
            for value in _values(dict(row)):
                hit = (
                    isinstance(value, str)
                    and (any(w in value.lower() for w in lowered) or value in as_text)
                    or (isinstance(value, int) and not isinstance(value, bool) and value in ids)
                )
                if hit:
                    found.append((table.name, dict(row)))
                    break
    return found
