"""What the customer controls: a copy of everything stored about them, and forgetting them."""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

from bot.storage import forget_log, inbox
from bot.storage.desk_models import Block
from bot.storage.kb_models import Article, ArticleUse
from bot.storage.models import (
    ACTIVE_HANDOFF,
    CallbackPayload,
    Conversation,
    ConversationState,
    Customer,
    DeliveryStatus,
    Direction,
    Handoff,
    Message,
    Promise,
    Ticket,
    TicketStatus,
)

# What stays of a forgotten customer's complaint: the customer's own words may name them,
# their order or their contact, so only the business facts (category, resolution, status…) are kept.
FORGOTTEN_DESCRIPTION = "[removed at the customer's request]"
EXPIRED_DESCRIPTION = "[removed after the retention period]"
EXPORT_FORMAT = "frontline-export/1"
# The team's own words about a customer (an agent's /note; the /close note is the handoff's resolution): kept
# with the transcript for the team, never shown to the customer, so not in their copy either.
INTERNAL = ("note",)


def _plain(value: Any) -> Any:
    """A value as JSON can hold it: times in ISO 8601, enums by value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _row(obj: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    """Selected columns of a row as a JSON-ready dict."""
    return {name: _plain(getattr(obj, name)) for name in columns}


def _message(message: Message) -> dict[str, Any]:
    """One transcript entry; an earlier export's file content is left out so exports don't nest."""
    exported = _row(
        message, ("id", "direction", "kind", "text", "payload", "update_id", "status", "created_at", "sent_at")
    )
    if message.kind == "document" and message.payload:
        exported["payload"] = {k: v for k, v in message.payload.items() if k != "json"}
    return exported


def _customer(session: Session, telegram_user_id: int) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.telegram_user_id == telegram_user_id))


def _conversations(session: Session, customer: Customer) -> list[Conversation]:
    rows = session.scalars(
        select(Conversation).where(Conversation.customer_id == customer.id).order_by(Conversation.id)
    )
    return list(rows)


def export_customer(session: Session, telegram_user_id: int) -> dict[str, Any]:
    """Everything stored about one Telegram user, as a JSON-ready document (empty lists when unknown)."""
    customer = _customer(session, telegram_user_id)
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "telegram_user_id": telegram_user_id,
        "customer": None,
        "conversations": [],
        "tickets": [],
        "block": None,
    }
    # A block is kept by user id alone and outlives /forget (bot/storage/blocks.py): shown whether or not a profile is.
    block = session.scalar(select(Block).where(Block.telegram_user_id == telegram_user_id))
    if block is not None:
        document["block"] = {"blocked_at": _plain(block.created_at), "reason": block.reason}
    if customer is None:
        return document
    document["customer"] = _row(
        customer,
        ("telegram_user_id", "first_name", "last_name", "username", "language_code", "created_at", "updated_at"),
    )
    for conversation in _conversations(session, customer):
        # The customer's own chat; copies the desk sent to agents repeat what is here.
        rows = session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.chat_id == conversation.chat_id,
                Message.kind.not_in(INTERNAL),
            )
            .order_by(Message.id)
        )
        handoffs = session.scalars(
            select(Handoff).where(Handoff.conversation_id == conversation.id).order_by(Handoff.id)
        )
        promises = session.scalars(
            select(Promise).where(Promise.conversation_id == conversation.id).order_by(Promise.id)
        )
        # The questions the bot answered from a help-center article, with the article and the customer's Yes / No.
        article_queries = session.execute(
            select(ArticleUse.asked_at, ArticleUse.query, Article.title, ArticleUse.helpful)
            .join(Article, Article.id == ArticleUse.article_id)
            .where(ArticleUse.conversation_id == conversation.id)
            .order_by(ArticleUse.id)
        ).all()
        document["conversations"].append(
            {
                **_row(conversation, ("chat_id", "state", "created_at", "updated_at")),
                "messages": [_message(m) for m in rows],
                "handoffs": [
                    _row(
                        h,
                        (
                            "reason",
                            "status",
                            "queued_at",
                            "claimed_at",
                            "first_reply_at",
                            "closed_at",
                            "csat",
                            "csat_comment",
                        ),
                    )
                    for h in handoffs
                ],
                "promises": [_row(p, ("what", "due_at", "kept_at")) for p in promises],
                "article_queries": [
                    {"asked_at": _plain(asked_at), "query": query, "article": title, "helpful": helpful}
                    for asked_at, query, title, helpful in article_queries
                ],
            }
        )
    tickets = session.scalars(select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id))
    document["tickets"] = [
        {
            "reference": t.reference,
            **_row(
                t,
                (
                    "category",
                    "description",
                    "order_number",
                    "desired_resolution",
                    "contact",
                    "photos",
                    "status",
                    "priority",
                    "created_at",
                    "updated_at",
                ),
            ),
        }
        for t in tickets
    ]
    return document


def ticket_topics(session: Session, telegram_user_id: int) -> list[int]:
    """The agents' group topics of a customer's tickets (their cards quote the customer)."""
    customer = _customer(session, telegram_user_id)
    if customer is None:
        return []
    rows = session.scalars(
        select(Ticket.topic_id).where(Ticket.customer_id == customer.id, Ticket.topic_id.is_not(None))
    )
    return [topic for topic in rows if topic]


def forget_customer(
    session: Session,
    telegram_user_id: int,
    description: str = FORGOTTEN_DESCRIPTION,
    *,
    spare_after: int | None = None,
) -> list[int]:
    """Delete a customer and their chats' records, anonymise their tickets (their complaint's words replaced by
    `description`); return the chat ids forgotten. With `spare_after` (the update that asked for the forget), the
    chats' updates that came after it and are still to be handled stay: the customer wrote them once the forget
    had begun, so they are a new conversation's first words, not the old one's records."""
    customer = _customer(session, telegram_user_id)
    if customer is None:
        return []
    conversations = _conversations(session, customer)
    chat_ids = [c.chat_id for c in conversations]
    conversation_ids = [c.id for c in conversations]
    tickets = list(
        session.scalars(
            select(Ticket).where((Ticket.customer_id == customer.id) | Ticket.conversation_id.in_(conversation_ids))
        )
    )
    topics = {ticket.topic_id for ticket in tickets if ticket.topic_id}
    for ticket in tickets:
        # The key holds the Rasa sender id (the chat id): it would tie the ticket back to the person.
        ticket.idempotency_key = f"forgotten:{ticket.id}"
        ticket.customer_id = None
        ticket.conversation_id = None
        ticket.contact = None
        ticket.order_number = None
        ticket.description = description
        ticket.photos = []
    session.flush()
    theirs = Message.chat_id.in_(chat_ids) | Message.conversation_id.in_(conversation_ids)
    # The raw updates: theirs, and the agents' that quote them or caused a message of theirs (a reply, a claim).
    sent = session.execute(select(Message.update_id, Message.chat_id, Message.telegram_message_id).where(theirs)).all()
    inbox.scrub(
        session,
        chats=chat_ids,
        update_ids={u for u, _, _ in sent if u is not None},
        messages={(c, t) for _, c, t in sent},
        topics=topics,
        spare_after=spare_after,
    )
    # Explicit deletes rather than relying on ON DELETE CASCADE: SQLite only cascades with the pragma on.
    session.execute(delete(Message).where(theirs))
    session.execute(delete(CallbackPayload).where(CallbackPayload.chat_id.in_(chat_ids)))
    session.execute(delete(Conversation).where(Conversation.id.in_(conversation_ids)))
    session.execute(delete(Customer).where(Customer.id == customer.id))
    session.expunge_all()
    return chat_ids


def forget_logged(session: Session, secret: bytes, digests: set[str]) -> list[int]:
    """Forget again every customer whose user id hashes (bot/storage/forget_log.py) to one of `digests`: after a
    restore, the forgets made since the backup. Returns the chat ids forgotten (for Rasa's tracker store)."""
    if not digests:
        return []
    users = [
        user
        for user in session.scalars(select(Customer.telegram_user_id))
        if forget_log.digest(secret, user) in digests
    ]
    return [chat for user in users for chat in forget_customer(session, user)]


def drop_confirmation(session: Session, chat_id: int, text: str) -> bool:
    """Once the confirmation of a forget (`text`) is delivered, the bare records that carried it go too, when they
    hold nothing else (the customer has not written again since: no message recorded, no update of the chat
    waiting in the inbox to be handled); True when they went. Only the chat's handled updates leave the inbox with
    them: one stored meanwhile is never lost."""
    conversation = session.scalar(select(Conversation).where(Conversation.chat_id == chat_id))
    if conversation is None:
        return False
    if inbox.unhandled(session, chat_id):
        return False  # the customer wrote again: the update is in hand, and its records will hold it
    held = list(session.scalars(select(Message).where(Message.conversation_id == conversation.id)))
    if not held or any(
        (m.direction, m.text, m.status) != (Direction.OUT, text, DeliveryStatus.SENT) or m.chat_id != chat_id
        for m in held
    ):
        return False
    session.execute(delete(Message).where(Message.conversation_id == conversation.id))
    session.execute(delete(CallbackPayload).where(CallbackPayload.chat_id == chat_id))
    inbox.drop_handled(session, chat_id)
    customer_id = conversation.customer_id
    session.execute(delete(Conversation).where(Conversation.id == conversation.id))
    if session.scalar(select(Conversation.id).where(Conversation.customer_id == customer_id).limit(1)) is None:
        session.execute(delete(Customer).where(Customer.id == customer_id))
    session.expunge_all()
    return True


def bare_chats(session: Session) -> list[int]:
    """The chats of bare customer records (no name: Telegram always gives one), like those that carried the
    confirmation of a forget."""
    rows = session.scalars(select(Conversation.chat_id).join(Customer).where(Customer.first_name == ""))
    return list(rows)


def expired(session: Session, cutoff: datetime) -> list[int]:
    """The customers (Telegram user ids) nothing has happened with since `cutoff`, with nothing open: no request
    for a person waiting or in hand, no open ticket, no promise to keep. Their records may go (RETENTION_DAYS)."""
    last = func.max(func.coalesce(Message.created_at, Conversation.updated_at))
    idle = (
        select(Customer.id, Customer.telegram_user_id)
        .join(Conversation, Conversation.customer_id == Customer.id)
        .outerjoin(Message, Message.conversation_id == Conversation.id)
        .group_by(Customer.id, Customer.telegram_user_id)
        .having(last < cutoff, func.max(Conversation.updated_at) < cutoff)
    )
    busy = (
        select(Conversation.customer_id)
        .where(Conversation.state.in_((ConversationState.QUEUED, ConversationState.HUMAN)))
        .union(
            select(Ticket.customer_id).where(Ticket.status.in_((TicketStatus.OPEN, TicketStatus.IN_PROGRESS))),
            select(Conversation.customer_id).join(Handoff).where(Handoff.status.in_(ACTIVE_HANDOFF)),
            select(Conversation.customer_id).join(Promise).where(Promise.kept_at.is_(None)),
        )
    )
    held = {row[0] for row in session.execute(busy)}
    return [user for customer, user in session.execute(idle) if customer not in held]


async def forget_rasa_tracker(tracker_url: str, sender_id: str) -> int:
    """Delete one conversation's events from Rasa's SQL tracker store (SQLite or PostgreSQL); return how many rows went."""
    if tracker_url.startswith("sqlite") and not Path(tracker_url.split(":///", 1)[1]).exists():
        return 0
    # A plain engine, not ours: our SQLite pragmas (WAL) would change Rasa's file for good.
    engine = create_async_engine(
        tracker_url, **({"connect_args": {"timeout": 10}} if tracker_url.startswith("sqlite") else {})
    )
    try:
        async with engine.begin() as connection:
            if not await connection.run_sync(lambda sync: inspect(sync).has_table("events")):
                return 0
            # Only Rasa's SQLTrackerStore table `events`, keyed by `sender_id` (Rasa's conversation id).
            result = await connection.execute(
                text("DELETE FROM events WHERE sender_id = :sender"), {"sender": sender_id}
            )
            return result.rowcount or 0
    finally:
        await engine.dispose()
