"""What an agent sent a customer, found again: the customer's copies of one of the agent's messages (to edit them
when the agent edits theirs), and the Telegram message a recorded reply was delivered as."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.models import DeliveryStatus, Direction, Message


def of_agent_message(
    session: Session, conversation_ids: Iterable[int], *, chat_id: int, message_id: int
) -> list[Message]:
    """The records of what an agent's message (in their chat `chat_id`) became in these customers' chats, in order:
    each carries its `source` in its payload."""
    ids = list(conversation_ids)
    if not ids:
        return []
    found = session.scalars(
        select(Message)
        .where(Message.conversation_id.in_(ids), Message.direction == Direction.OUT, Message.kind == "agent")
        .order_by(Message.id)
    )
    wanted = {"chat_id": chat_id, "message_id": message_id}
    return [m for m in found if (m.payload or {}).get("source") == wanted]


def delivered_as(session: Session, record_id: int) -> int | None:
    """The Telegram message id a recorded reply was delivered as; None while it is not (or never will be) sent."""
    message = session.get(Message, record_id)
    if message is None or message.status is not DeliveryStatus.SENT:
        return None
    return message.telegram_message_id
