"""The questions the bot did not understand, read from Rasa's tracker store, for the console's dashboard.

(The figures the dashboard shares with the agents' /stats, and agents' flags, are in bot/storage/figures.py and
bot/storage/flags.py.)
"""

from __future__ import annotations

import collections
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)
NOT_UNDERSTOOD = ("nlu_fallback", "out_of_scope")  # the intents Rasa gives what it did not understand
_NOT_UNDERSTOOD = text(
    "SELECT data, timestamp FROM events WHERE type_name = 'user' AND intent_name IN :intents AND timestamp >= :since"
).bindparams(bindparam("intents", expanding=True))


@dataclass
class Unanswered:
    """A question the bot did not understand, as customers wrote it (grouped by its normalised text)."""

    text: str  # the most frequent spelling
    count: int
    last_seen: datetime
    # Rasa's intent ranking of the newest one (a FAQ as its topic, faq/<topic>), nlu_fallback and out_of_scope left out
    ranking: tuple[tuple[str, float], ...] = ()


def normalised(question: str) -> str:
    """Lower case, single spaces, no punctuation around words: the key questions are grouped by."""
    words = (re.sub(r"^\W+|\W+$", "", word) for word in question.casefold().split())
    return " ".join(word for word in words if word)


async def not_understood(tracker_url: str, since: datetime, limit: int = 20) -> list[Unanswered]:
    """The questions Rasa classified as not understood since then, most frequent first."""
    if tracker_url.startswith("sqlite") and not Path(tracker_url.split(":///", 1)[1]).exists():
        return []  # Rasa has not written its store yet (and opening it would create the file)
    # A plain engine, not ours: our SQLite pragmas (WAL) would change Rasa's file for good.
    engine = create_async_engine(tracker_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.run_sync(_user_events, since)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("could not read Rasa's tracker store for the questions it did not understand: %s", exc)
        return []
    finally:
        await engine.dispose()
    events = (json.loads(data) for data, stamp in rows)
    return group_questions(
        (event.get("text") or "", stamp, rasa_ranking(event.get("parse_data")))
        for event, (_, stamp) in zip(events, rows, strict=True)
    )[:limit]


def rasa_ranking(parse_data: Any) -> tuple[tuple[str, float], ...]:
    """The intents Rasa ranked for a message, best first, with their confidence: a retrieval intent (faq) as the
    topic its response selector chose (faq/<topic>), and nlu_fallback and out_of_scope left out."""
    if not isinstance(parse_data, dict):
        return ()
    selector = parse_data.get("response_selector")
    selector = selector if isinstance(selector, dict) else {}
    ranking = []
    for item in parse_data.get("intent_ranking") or ():
        name, confidence = (item.get("name"), item.get("confidence")) if isinstance(item, dict) else (None, None)
        if not isinstance(name, str) or not isinstance(confidence, int | float) or name in NOT_UNDERSTOOD:
            continue
        chosen = selector.get(name)
        picked = chosen.get("response") if isinstance(chosen, dict) else None
        if isinstance(picked, dict) and isinstance(picked.get("intent_response_key"), str):
            name = picked["intent_response_key"]
            confidence = picked.get("confidence", confidence)
            confidence = confidence if isinstance(confidence, int | float) else 0.0
        ranking.append((name, float(confidence)))
    return tuple(ranking)


def _user_events(connection: Connection, since: datetime) -> list[tuple[str, float]]:
    """The customers' messages Rasa did not understand since then (none before Rasa made its table)."""
    if not inspect(connection).has_table("events"):
        return []
    return [
        (data, stamp)
        for data, stamp in connection.execute(
            _NOT_UNDERSTOOD, {"intents": list(NOT_UNDERSTOOD), "since": since.timestamp()}
        )
    ]


def group_questions(
    questions: Iterable[tuple[str, float] | tuple[str, float, tuple[tuple[str, float], ...]]],
) -> list[Unanswered]:
    """(text, unix time[, Rasa's ranking]) grouped by normalised text, each with the newest one's ranking; commands
    (/start, button payloads) left out."""
    spellings: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    newest: dict[str, float] = {}
    rankings: dict[str, tuple[tuple[str, float], ...]] = {}
    for question, stamp, *rest in questions:
        key = normalised(question)
        if not key or question.lstrip().startswith("/"):
            continue
        spellings[key][" ".join(question.split())] += 1
        if key not in newest or (stamp or 0.0) >= newest[key]:
            rankings[key] = rest[0] if rest else ()
        newest[key] = max(newest.get(key, 0.0), stamp or 0.0)
    found = [
        Unanswered(
            text=counter.most_common(1)[0][0],
            count=sum(counter.values()),
            last_seen=datetime.fromtimestamp(newest[key], UTC),
            ranking=rankings[key],
        )
        for key, counter in spellings.items()
    ]
    return sorted(found, key=lambda item: (-item.count, -item.last_seen.timestamp()))
