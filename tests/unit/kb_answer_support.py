"""What the help-center answer tests share: the real MiniLM encoder (loaded once, counting what it is asked to
encode), a few of the shop's real articles, customers' conversations, and trackers as Rasa sends them."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from bot.content import articles
from bot.content.help_center import HelpArticle, read_folder
from bot.kb.encoder import load_encoder
from bot.storage.models import Conversation, Customer

ROOT = Path(__file__).resolve().parents[2]
# A few of the shop's articles: enough to rank and decide, small enough to encode in seconds.
SLUGS = ("care-clothes", "pair-aura-headphones", "international-delivery", "size-guide-clothing", "price-match")
WHO = "console:admin"


@cache
def _real_encoder() -> Any:
    return load_encoder()


_ENCODED: dict[str, np.ndarray] = {}  # the real vectors, computed once for the whole test run


class CountingEncoder:
    """The real encoder, counting the texts it is asked to encode (what a restart must not ask for again)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        self.asked.extend(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in _ENCODED]
        if todo:
            _ENCODED.update(zip(todo, _real_encoder().encode(todo), strict=True))
        return np.stack([_ENCODED[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


@cache
def shop_articles() -> dict[str, HelpArticle]:
    found = {item.slug: item for item in read_folder(ROOT / "help_center").articles}
    return {slug: found[slug] for slug in SLUGS}


def add_articles(session: Session, slugs: Sequence[str] = SLUGS) -> dict[str, int]:
    """The articles stored as an admin's import would; their ids by slug."""
    items = [shop_articles()[slug] for slug in slugs]
    articles.import_articles(session, WHO, items)
    return {row.slug: row.id for row in articles.all_articles(session)}


def add_conversation(session: Session, chat_id: int) -> int:
    customer = Customer(telegram_user_id=chat_id, first_name="Ada")
    session.add(customer)
    session.flush()
    conversation = Conversation(customer_id=customer.id, chat_id=chat_id)
    session.add(conversation)
    session.flush()
    return conversation.id


def user(text: str, intent: str, confidence: float = 0.9, entities: list[dict[str, Any]] | None = None) -> dict:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": entities or []},
    }


def tracker(
    events: list[dict[str, Any]], *, chat: int = 42, slots: dict[str, Any] | None = None, form: str | None = None
) -> Tracker:
    """A tracker of chat `chat` whose latest message is the last user event."""
    latest = next(e for e in reversed(events) if e["event"] == "user")
    return Tracker.from_dict(
        {
            "sender_id": f"tg-{chat}",
            "slots": {"ticket_id": None, "requested_slot": None, "help_article": None, **(slots or {})},
            "latest_message": {"text": latest["text"], **latest["parse_data"], "metadata": {}},
            "events": events,
            "active_loop": {"name": form} if form else {},
        }
    )


def button(intent: str, use_id: int | str) -> dict[str, Any]:
    """The user event of a Yes / No button naming an article use."""
    return user(
        f'/{intent}{{"article_use":"{use_id}"}}', intent, 1.0, [{"entity": "article_use", "value": str(use_id)}]
    )
