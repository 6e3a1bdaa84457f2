"""The tables of the agents' tools: flags on the bot's answers, saved replies, blocked customers; the desk round's
marks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.base import Base


class Flag(Base):
    """An agent's report that the bot answered a customer wrongly: the answer, the ticket, the agent's note."""

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The bot's answer that was wrong (its customer's message is the incoming one of the same update).
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(255))


class SavedReply(Base):
    """A reply agents send with /r: its name, its text with placeholders, a category, and how often it was sent."""

    __tablename__ = "saved_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64), default="")
    uses: Mapped[int] = mapped_column(default=0)


class Block(Base):
    """A customer an agent blocked for abuse: kept by Telegram user id alone, so /forget does not lift it."""

    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    reason: Mapped[str] = mapped_column(Text)
    blocked_by: Mapped[str] = mapped_column(String(255))  # the agent's first name
    blocked_by_user_id: Mapped[int | None] = mapped_column(BigInteger)  # the agent's Telegram user id


class RoundMark(Base):
    """When the desk's round last did something it does every so often (its summary, its housekeeping, a
    re-announcement slot), for every process and machine alike: whichever runs the round reads and moves it."""

    __tablename__ = "round_marks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime | None] = mapped_column()
