"""Database tables: customers, conversations, the inbox of updates, the transcript, button payloads."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.storage import (
    attempt_counts,  # noqa: F401  (registers the attempt counts' table with the others)
    base,
    desk_models,  # noqa: F401  (registers the agents' tools' tables with the others)
    kb_models,  # noqa: F401  (registers the help center's tables with the others)
    model_blobs,  # noqa: F401  (registers the stored models' tables with the others)
    senders,  # noqa: F401  (registers the sending processes' table with the others)
)
from bot.storage.base import enum_column

# Imported from here by the rest of the app too (named here, so that they are this module's as well).
Base = base.Base
utcnow = base.utcnow


class ConversationState(str, enum.Enum):
    """Who is answering the customer: the bot, nobody yet (waiting for a person), a person."""

    BOT = "BOT"
    QUEUED = "QUEUED"
    HUMAN = "HUMAN"
    CLOSED = "CLOSED"


class InboxStatus(str, enum.Enum):
    """Processing state of one Telegram update."""

    PENDING = "PENDING"
    DONE = "DONE"


class Direction(str, enum.Enum):
    """Which way a message travelled."""

    IN = "IN"
    OUT = "OUT"


class DeliveryStatus(str, enum.Enum):
    """Delivery state of an outgoing message: recorded before sending, marked after."""

    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class Customer(Base):
    """A Telegram user who wrote to the bot."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    first_name: Mapped[str] = mapped_column(String(255), default="")
    last_name: Mapped[str | None] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    language_code: Mapped[str | None] = mapped_column(String(16))


class Conversation(Base):
    """A customer's private chat with the bot, and who is answering it."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    state: Mapped[ConversationState] = mapped_column(enum_column(ConversationState), default=ConversationState.BOT)
    customer: Mapped[Customer] = relationship()

    @property
    def sender_id(self) -> str:
        """The conversation id Rasa knows this chat by."""
        return f"tg-{self.chat_id}"


class InboxUpdate(Base):
    """A Telegram update, stored before Telegram is told it arrived."""

    __tablename__ = "inbox_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    payload: Mapped[dict[str, Any]]
    status: Mapped[InboxStatus] = mapped_column(enum_column(InboxStatus), default=InboxStatus.PENDING, index=True)
    rasa_sent_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]


class Message(Base):
    """One message of the transcript, in or out; outgoing ones double as the outbox."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_outbox", "status", "chat_id", "id"),
        # Which delivered message an agent's reply answers.
        Index("ix_messages_chat_id_telegram_message_id", "chat_id", "telegram_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    kind: Mapped[str] = mapped_column(String(32), default="text")
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any] | None]
    update_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[DeliveryStatus | None] = mapped_column(enum_column(DeliveryStatus))
    sent_at: Mapped[datetime | None]


class CallbackPayload(Base):
    """What a button means, kept on the server; Telegram only carries its short id."""

    __tablename__ = "callback_payloads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    title: Mapped[str] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)


class TicketStatus(str, enum.Enum):
    """Where a complaint stands, as the customer is told."""

    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


class TicketPriority(str, enum.Enum):
    """How soon a person should look at a ticket."""

    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


class Ticket(Base):
    """A complaint the customer confirmed; kept for the business, anonymised if the customer asks us to forget them."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    order_number: Mapped[str | None] = mapped_column(String(64))
    desired_resolution: Mapped[str] = mapped_column(String(32))
    contact: Mapped[str | None] = mapped_column(String(255))
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[TicketStatus] = mapped_column(enum_column(TicketStatus), default=TicketStatus.OPEN)
    priority: Mapped[TicketPriority] = mapped_column(enum_column(TicketPriority), default=TicketPriority.NORMAL)
    # The ticket's forum topic in the agents' group, once the desk has opened it.
    topic_id: Mapped[int | None] = mapped_column(BigInteger)
    customer: Mapped[Customer | None] = relationship()
    conversation: Mapped[Conversation | None] = relationship()

    @property
    def reference(self) -> str:
        """The number the customer and the agents quote."""
        return f"T{self.id:06d}"


class HandoffStatus(str, enum.Enum):
    """Where a request for a person stands."""

    QUEUED = "QUEUED"  # waiting for an agent to claim it
    CLAIMED = "CLAIMED"  # an agent is talking to the customer
    CLOSED = "CLOSED"  # the agent closed it (resolved)
    RETURNED = "RETURNED"  # handed back to the bot without closing the ticket
    CANCELLED = "CANCELLED"  # the customer left the queue


ACTIVE_HANDOFF = (HandoffStatus.QUEUED, HandoffStatus.CLAIMED)


class Agent(Base):
    """A member of the agents' group who acted on the desk; their private chat with the bot carries live conversations."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    first_name: Mapped[str] = mapped_column(String(255), default="")
    username: Mapped[str | None] = mapped_column(String(255))
    # Set once the agent has started a private chat with the bot (only then can it write to them); cleared when they
    # leave the agents' group.
    private_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    # Their membership of the agents' group as Telegram last told it (a chat_member update, or getChatMember), and
    # when: who is an agent is read from here by every worker (bot/desk/members.py).
    in_group: Mapped[bool] = mapped_column(default=True, server_default=true())
    membership_checked_at: Mapped[datetime | None]
    # Presence (/online, /away, away after AWAY_AFTER_MINUTES idle) and the round robin's turn (bot/desk/assign.py).
    online: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_active_at: Mapped[datetime | None]
    last_assigned_at: Mapped[datetime | None]


class Handoff(Base):
    """One request for a person: why, who took it, and how long each step took."""

    __tablename__ = "handoffs"
    __table_args__ = (Index("ix_handoffs_status_queued_at", "status", "queued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[HandoffStatus] = mapped_column(enum_column(HandoffStatus), default=HandoffStatus.QUEUED)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # What Rasa knew when it asked for a person: collected slots, recent intents, the last message.
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    announced_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    holder_since: Mapped[datetime | None]  # when the agent holding it got it: their claim, or a transfer to them
    first_reply_at: Mapped[datetime | None]
    # The customer's unanswered stretch (from their first message no person answered) and its alerts, each sent once.
    waiting_since: Mapped[datetime | None] = mapped_column(default=utcnow)
    reminded_at: Mapped[datetime | None]
    noted_at: Mapped[datetime | None]
    held_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    csat: Mapped[int | None]
    csat_comment: Mapped[str | None] = mapped_column(Text)
    followup_due_at: Mapped[datetime | None] = mapped_column(index=True)
    followup_sent_at: Mapped[datetime | None]
    told_at: Mapped[datetime | None]  # when the customer was last told their place (told_position) and wait
    told_position: Mapped[int | None]
    # The wait the customer was last told, so a big change can be told too.
    told_wait_seconds: Mapped[int | None]
    # The agents it was offered or assigned to, in turn (never twice to one), and when the latest offer went.
    offered_to: Mapped[list[int]] = mapped_column(JSON, default=list)
    offered_at: Mapped[datetime | None]
    conversation: Mapped[Conversation] = relationship()
    ticket: Mapped[Ticket] = relationship()
    agent: Mapped[Agent | None] = relationship()


class Promise(Base):
    """Something an agent promised a customer by a date (a callback, a refund): tracked until kept."""

    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    what: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(index=True)
    reminded_at: Mapped[datetime | None]
    kept_at: Mapped[datetime | None]
    ticket: Mapped[Ticket] = relationship()
    conversation: Mapped[Conversation] = relationship()
    agent: Mapped[Agent | None] = relationship()


class ContentIntent(Base):
    """An intent admins edit: its examples, where it is written, and the seed's version of it."""

    __tablename__ = "content_intents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    examples: Mapped[list[str]] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    file: Mapped[str | None] = mapped_column(String(200))  # its nlu file; None when it has no examples
    listed: Mapped[bool] = mapped_column(default=False)  # in the domain's intents list
    domain_comment: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    # What the repository's seed said when last imported (None: made by an admin); a seed upgrade replaces
    # an item only while it still equals this, so admins' edits are kept.
    seed: Mapped[dict[str, Any] | None]
    removed: Mapped[bool] = mapped_column(default=False)  # deleted by an admin: a seed upgrade leaves it deleted


class ContentResponse(Base):
    """A response (`utter_*`): its variations as Rasa writes them (text, buttons, ...)."""

    __tablename__ = "content_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    variations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    seed: Mapped[dict[str, Any] | None]
    removed: Mapped[bool] = mapped_column(default=False)


class ContentLayout(Base):
    """One content file's layout: verbatim text (rules, stories, slots) and where each item is written."""

    __tablename__ = "content_layouts"

    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    segments: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class Setting(Base):
    """A named value the processes share: the content's version, the seed's fingerprint, the live model."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditEntry(Base):
    """Who changed what, with the value before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    who: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]


class ModelStatus(str, enum.Enum):
    """Where a model version stands."""

    TRAINING = "TRAINING"
    READY = "READY"
    FAILED = "FAILED"


class ModelVersion(Base):
    """A trained model (or an attempt): who asked, what changed, how well it understands, where its file is."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    file: Mapped[str] = mapped_column(String(255), default="")  # under the model store, e.g. <fingerprint>.tar.gz
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[ModelStatus] = mapped_column(enum_column(ModelStatus), default=ModelStatus.TRAINING)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    content_version: Mapped[int] = mapped_column(default=0)
    metrics: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    train_seconds: Mapped[float | None]
    live_since: Mapped[datetime | None]  # the last time it was put live
    stage: Mapped[str] = mapped_column(String(32), default="")  # while it trains: exporting, training, evaluating
    log: Mapped[str] = mapped_column(Text, default="")  # the last lines Rasa printed


class AdminAccount(Base):
    """A named account of the admin console: its scrypt password hash and its failed logins."""

    __tablename__ = "admin_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(128))  # hex of hashlib.scrypt
    salt: Mapped[str] = mapped_column(String(64))  # hex, one per account
    failed_logins: Mapped[int] = mapped_column(default=0)  # no longer used: sign-in is throttled by attempt_counts
    locked_until: Mapped[datetime | None]  # no longer used: there is no hard lock
    last_login_at: Mapped[datetime | None]


class AdminSession(Base):
    """A signed-in console session: the cookie's token (only its hash is kept), its CSRF token, when last used."""

    __tablename__ = "admin_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("admin_accounts.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    flash: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # messages for the next page: kind, text
