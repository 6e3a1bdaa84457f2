"""What the help-center answer tests share: the real MiniLM encoder (loaded once, counting what it is asked to
encode), a few of the shop's real articles, customers' conversations, trackers as Rasa sends them, and what the `shop`
fixture sets up (articles stored and indexed, the actions pointed at them)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import kb_answer
from actions.help_center import LiveHelpCenter
from bot.content import articles
from bot.content.help_center import HelpArticle, read_folder
from bot.kb.encoder import load_encoder
from bot.storage.kb_models import ArticleUse
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


async def stored_shop(sessions: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The articles and two customers' conversations stored, the index loaded, the actions pointed at both (the
    `shop` fixture of tests/unit/conftest.py)."""
    ids = await sessions.run(add_articles)
    conversations = {chat: await sessions.run(add_conversation, chat) for chat in (42, 43)}
    center = LiveHelpCenter(sessions, encoder=CountingEncoder, model_id="test-minilm")
    await center.load()
    monkeypatch.setattr(kb_answer, "help_center", lambda: center)
    monkeypatch.setattr(kb_answer, "database", lambda: sessions)
    return {"ids": ids, "conversations": conversations, "sessions": sessions}


async def run(action: Any, t: Any) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any] | None]:
    """The events, the messages said (not the handoff), and the handoff payload (if any) of one run."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {})
    handoffs = [m["custom"]["handoff"] for m in dispatcher.messages if (m.get("custom") or {}).get("handoff")]
    said = [m for m in dispatcher.messages if not m.get("custom")]
    return events, said, (handoffs or [None])[0]


async def uses(sessions) -> list[ArticleUse]:
    async with sessions() as session:
        return list((await session.scalars(select(ArticleUse).order_by(ArticleUse.id))).all())
