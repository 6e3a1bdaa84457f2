"""The help center's tables: articles (content admins edit, like intents and responses), each time one was
offered to a customer with how they rated it, and the passages' sentence vectors (so no restart re-encodes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.base import Base, utcnow


class Article(Base):
    """A help-center article: its slug (the file name it is written to), title, Markdown body, public URL, category.

    `revision` grows with every change to the text, so an index of passages rebuilds only the articles whose
    revision it has not seen (and drops the ids that are gone)."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(500))
    category: Mapped[str | None] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(default=1)
    # What the repository's help center said when last imported (None: made or last imported by an admin); a seed
    # upgrade replaces an article only while it still equals this, so admins' edits are kept.
    seed: Mapped[dict[str, Any] | None]


class ArticleUse(Base):
    """An article offered to a customer as an answer: what they asked, whether it helped, the handoff if one followed.

    Tied to the conversation, so forgetting the customer (or their retention running out) deletes it too."""

    __tablename__ = "article_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoffs.id", ondelete="SET NULL"), index=True)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    query: Mapped[str] = mapped_column(Text, default="")
    helpful: Mapped[bool | None]  # the customer's Yes (True) or No (False); None until they answer


class PassageVector(Base):
    """The sentence vector of one text an index encodes (an article's title, or "title. passage"), by the sha256 of
    the text and the encoder that made it: float32 bytes. Shared by every action server, so each text is encoded once
    (`bot.kb.index` keys its vectors the same way); rows no article uses any more are deleted by the action server's
    index after a change (`actions.kb_store.prune_vectors`)."""

    __tablename__ = "passage_vectors"

    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
