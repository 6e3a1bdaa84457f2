"""Customers, their conversations, and every message in and out (the outbox is the pending part).

What every message does on its way is written as plain functions of a Session, run in one transaction by
`Sessions.run` (bot/storage/db.py), or inside an async session with `await session.run_sync(function, …)`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.orm import Session

from bot.faults import failpoint
from bot.storage.base import affected
from bot.storage.models import Conversation, Customer, DeliveryStatus, Direction, Message, utcnow

_MESSAGES = Message.__table__
# Built once, with parameters (why: bot/storage/inbox.py).
_ARRIVAL = (
    select(Conversation, Customer)
    .join(Customer, Customer.id == Conversation.customer_id)
    .where(Conversation.chat_id == bindparam("chat_id"))
)
_INCOMING = (
    "conversation_id",
    "chat_id",
    "direction",
    "kind",
    "text",
    "payload",
    "update_id",
    "telegram_message_id",
    "created_at",
    "updated_at",
)
_RECORD_INCOMING = insert(_MESSAGES).from_select(  # INSERT … SELECT … WHERE NOT EXISTS (the update's message)
    list(_INCOMING),
    select(*(bindparam(name, type_=_MESSAGES.c[name].type).label(name) for name in _INCOMING)).where(
        ~exists().where(_MESSAGES.c.update_id == bindparam("update_id"), _MESSAGES.c.direction == Direction.IN)
    ),
)
_INSERT_MESSAGE = insert(_MESSAGES)
_REPLIES_TO = (
    select(Message)
    .where(Message.update_id == bindparam("update_id"), Message.direction == Direction.OUT)
    .order_by(Message.id)
)
_OUTBOX = select(Message).where(Message.status == DeliveryStatus.PENDING).order_by(Message.id)
_OUTBOX_OF_CHAT = _OUTBOX.where(Message.chat_id == bindparam("chat_id"))
_DELIVERED = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("message"), _MESSAGES.c.kind != "document")
    .values(status=DeliveryStatus.SENT, telegram_message_id=bindparam("sent_as"), sent_at=bindparam("now"))
)


def upsert_customer(
    session: Session,
    *,
    telegram_user_id: int,
    first_name: str,
    last_name: str | None = None,
    username: str | None = None,
    language_code: str | None = None,
) -> Customer:
    """The customer for a Telegram user, created or refreshed with the newest profile."""
    customer = session.scalar(select(Customer).where(Customer.telegram_user_id == telegram_user_id))
    if customer is None:
        customer = Customer(telegram_user_id=telegram_user_id)
        session.add(customer)
    _refresh(customer, first_name=first_name, last_name=last_name, username=username, language_code=language_code)
    session.flush()
    return customer


def _refresh(customer: Customer, **profile: str | None) -> None:
    """The customer's profile as Telegram shows it now (the session writes only what changed)."""
    for name, value in profile.items():
        setattr(customer, name, value)


def arrival(
    session: Session,
    *,
    chat_id: int,
    telegram_user_id: int,
    first_name: str,
    last_name: str | None = None,
    username: str | None = None,
    language_code: str | None = None,
) -> Conversation:
    """The conversation in a private chat, with its customer's profile refreshed: one query when both exist (the
    usual case), else created as upsert_customer and conversation_for_chat do."""
    profile = {"first_name": first_name, "last_name": last_name, "username": username, "language_code": language_code}
    row = session.execute(_ARRIVAL, {"chat_id": chat_id}).first()
    if row is not None and row.Customer.telegram_user_id == telegram_user_id:
        _refresh(row.Customer, **profile)
        return row.Conversation
    customer = upsert_customer(session, telegram_user_id=telegram_user_id, **profile)
    return conversation_for_chat(session, chat_id=chat_id, customer=customer)


def conversation_for_chat(session: Session, *, chat_id: int, customer: Customer) -> Conversation:
    """The customer's conversation in this chat, opened on first contact."""
    conversation = session.scalar(select(Conversation).where(Conversation.chat_id == chat_id))
    if conversation is None:
        conversation = Conversation(chat_id=chat_id, customer_id=customer.id)
        session.add(conversation)
        session.flush()
    return conversation


def find_conversation(session: Session, chat_id: int) -> Conversation | None:
    """The conversation in a chat, if the chat ever wrote to us."""
    return session.scalar(select(Conversation).where(Conversation.chat_id == chat_id))


def record_incoming(
    session: Session,
    *,
    conversation: Conversation,
    update_id: int,
    kind: str,
    text: str,
    payload: dict[str, Any] | None = None,
    telegram_message_id: int | None = None,
) -> None:
    """Store what the customer sent, unless this update is stored already (one INSERT … SELECT … WHERE NOT EXISTS:
    an update is handled by one task at a time, its chat's)."""
    now = utcnow()
    session.execute(
        _RECORD_INCOMING,
        {
            "conversation_id": conversation.id,
            "chat_id": conversation.chat_id,
            "direction": Direction.IN,
            "kind": kind,
            "text": storable(text),
            "payload": payload,
            "update_id": update_id,
            "telegram_message_id": telegram_message_id,
            "created_at": now,
            "updated_at": now,
        },
    )


def queue_outgoing(
    session: Session,
    *,
    conversation: Conversation,
    text: str,
    update_id: int | None,
    payload: dict[str, Any] | None = None,
    kind: str = "text",
    chat_id: int | None = None,
) -> int:
    """Record a reply before it is sent: it is in the outbox until marked sent (a document's text is its caption).

    `chat_id` sends it elsewhere than the customer's chat (to agents) while keeping it with their conversation.
    """
    if update_id is not None:
        failpoint(None, "before-record-reply", conversation.chat_id)  # tests: an answer in hand, none of it stored
    return _add(
        session,
        conversation,
        direction=Direction.OUT,
        kind=kind,
        text=text,
        payload=payload,
        update_id=update_id,
        status=DeliveryStatus.PENDING,
        chat_id=chat_id if chat_id is not None else conversation.chat_id,
    )


def record_event(
    session: Session, *, conversation: Conversation, kind: str, payload: dict[str, Any], update_id: int | None
) -> int:
    """Store something the bot decided that is not a message to send (a handoff request, say)."""
    if update_id is not None:
        failpoint(None, "before-record-reply", conversation.chat_id)
    return _add(
        session, conversation, direction=Direction.OUT, kind=kind, text="", payload=payload, update_id=update_id
    )


def storable(text: str) -> str:
    """Text as the transcript keeps it: PostgreSQL's text cannot hold NUL, so a NUL becomes U+FFFD (�)."""
    return text.replace("\x00", "\ufffd")


def _add(session: Session, conversation: Conversation, **fields: Any) -> int:
    """One INSERT, no ORM unit of work (two or more of these on every message's way: make bench-profile). Its id."""
    fields.setdefault("chat_id", conversation.chat_id)
    fields["text"] = storable(fields.get("text") or "")
    result = session.execute(_INSERT_MESSAGE, {"conversation_id": conversation.id, **fields})
    return result.inserted_primary_key[0]


def last_sent_to(session: Session, conversation_id: int, chat_id: int, kind: str) -> Message | None:
    """The newest message of this kind recorded for a chat about this conversation (sent or not)."""
    return session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.chat_id == chat_id,
            Message.kind == kind,
            Message.direction == Direction.OUT,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


def in_topic(session: Session, conversation_id: int, chat_id: int, thread_id: int) -> tuple[set[int], int]:
    """The customer's messages copied into a topic (their ids in the customer's chat), and how many of them were
    copied with a card (the rest were relayed as they came)."""
    copied: set[int] = set()
    with_cards = 0
    for payload, kind in session.execute(
        select(Message.payload, Message.kind).where(
            Message.conversation_id == conversation_id,
            Message.chat_id == chat_id,
            Message.kind.in_(("copies", "relay")),
        )
    ):
        if not payload or payload.get("thread_id") != thread_id:
            continue
        ids = (payload.get("copy_many") or {}).get("message_ids") or [(payload.get("copy") or {}).get("message_id")]
        found = {int(i) for i in ids if i is not None}
        copied |= found
        with_cards += len(found) if kind == "copies" else 0
    return copied, with_cards


def replies_to(session: Session, update_id: int) -> list[Message]:
    """Replies already recorded for an update, in order."""
    return list(session.scalars(_REPLIES_TO, {"update_id": update_id}))


def outbox(session: Session, chat_id: int | None = None) -> list[Message]:
    """Replies recorded but not yet delivered, oldest first, for one chat or all."""
    if chat_id is None:
        return list(session.scalars(_OUTBOX))
    return list(session.scalars(_OUTBOX_OF_CHAT, {"chat_id": chat_id}))


def mark_delivered(
    session: Session, message_id: int, *, telegram_message_id: int | None, file_id: str | None = None
) -> None:
    """Telegram accepted the reply; a sent document keeps only its name and Telegram's file id."""
    if file_id is None:  # the usual case, one statement (a document's payload is rewritten below)
        result = session.execute(_DELIVERED, {"message": message_id, "sent_as": telegram_message_id, "now": utcnow()})
        if affected(result):
            return
    message = session.get(Message, message_id)
    if message is not None:
        message.status = DeliveryStatus.SENT
        message.telegram_message_id = telegram_message_id
        message.sent_at = utcnow()
        if message.kind == "document" and message.payload:
            # The file's content was only needed until delivery; keeping it would store a second copy of everything.
            message.payload = {"file_name": message.payload.get("file_name"), "file_id": file_id}


def mark_undeliverable(session: Session, message_id: int) -> None:
    """Telegram refused the reply for good (blocked bot, chat gone): stop retrying it."""
    message = session.get(Message, message_id)
    if message is not None:
        message.status = DeliveryStatus.FAILED


def messages(session: Session, chat_id: int) -> list[Message]:
    """The whole transcript of a chat, in order."""
    return list(session.scalars(select(Message).where(Message.chat_id == chat_id).order_by(Message.id)))
