"""The desk as data, for a client that plays an agent (`frontline desk`): the tickets in the agents' group and where
their requests for a person stand, the conversations an agent holds, and what the bot's messages in an agent's chat
are about. Plain functions of a Session that return frozen dataclasses: nothing here depends on the desk's wording.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, joinedload

from bot.desk.cards import customer_name, topic_name
from bot.storage import handoffs
from bot.storage.models import (
    Agent,
    Conversation,
    DeliveryStatus,
    Direction,
    Handoff,
    HandoffStatus,
    Message,
    Ticket,
    TicketStatus,
)

SAID_AS_IS = ("text", "command", "button", "edited")  # kinds of customer message whose text is all they sent


@dataclass(frozen=True)
class AgentView:
    """An agent on record: their first name, and their private chat with the bot once they pressed Start."""

    telegram_user_id: int
    name: str
    private_chat_id: int | None


@dataclass(frozen=True)
class HandoffView:
    """A request for a person: where it stands, why, and who holds it (or closed it)."""

    id: int
    status: HandoffStatus
    reason: str
    agent: str | None  # the first name of the agent holding it, or who held it last
    requeued: bool  # claimed once, waiting again (passed back to the queue, released)
    resolution: str | None  # the close note
    csat: int | None  # the customer's rating, 1 to 5


@dataclass(frozen=True)
class TicketView:
    """A ticket the agents' group has (it has a topic), with its newest request for a person."""

    reference: str
    topic: str  # the forum topic's name
    thread_id: int  # the topic's id in the agents' group (0: the group has no topics)
    customer: str
    status: TicketStatus
    handoff: HandoffView | None  # None: a complaint nobody asked a person for yet

    @property
    def ended(self) -> bool:
        """Resolved or closed (a message from the customer may still reopen it)."""
        return self.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)


@dataclass(frozen=True)
class TalkView:
    """A conversation an agent holds: the bot relays it in their private chat."""

    reference: str
    customer: str
    handoff_id: int
    conversation_id: int
    reply_to: int | None  # the newest of the bot's messages about it in the agent's chat: replying to it picks them


@dataclass(frozen=True)
class Post:
    """One of the bot's messages in an agent's chat, as the desk recorded it: what it is about."""

    conversation_id: int
    customer: str
    reference: str | None  # the ticket of the request for a person it belongs to
    handoff_id: int | None
    said: str | None = None  # a customer's message relayed: what they sent ("[photo] caption" for media)
    continued: bool = False  # a later part of a long message relayed (`said` comes with the first)


@dataclass(frozen=True)
class Board:
    """All an agent's client needs to know, read in one transaction."""

    agent: AgentView | None
    tickets: list[TicketView] = field(default_factory=list)
    talks: list[TalkView] = field(default_factory=list)
    posts: dict[int, Post] = field(default_factory=dict)  # by Telegram message id, for the ids asked about
    settled: bool = True  # nothing recorded for the agent's chat is still on its way there


def agent(session: Session, telegram_user_id: int) -> AgentView | None:
    """The agent with this Telegram account, if they ever acted on the desk."""
    found = session.scalar(select(Agent).where(Agent.telegram_user_id == telegram_user_id))
    return None if found is None else AgentView(found.telegram_user_id, found.first_name, found.private_chat_id)


def tickets(session: Session) -> list[TicketView]:
    """The tickets that have a topic in the agents' group, oldest first."""
    found = list(
        session.scalars(
            select(Ticket).where(Ticket.topic_id.is_not(None)).order_by(Ticket.id).options(joinedload(Ticket.customer))
        )
    )
    newest = (
        select(func.max(Handoff.id)).where(Handoff.ticket_id.in_([t.id for t in found])).group_by(Handoff.ticket_id)
    )
    requests = {
        h.ticket_id: h
        for h in session.scalars(select(Handoff).where(Handoff.id.in_(newest)).options(joinedload(Handoff.agent)))
    }
    return [
        TicketView(
            t.reference,
            topic_name(t, t.customer),
            t.topic_id or 0,
            customer_name(t.customer),
            t.status,
            _handoff(requests.get(t.id)),
        )
        for t in found
    ]


def _handoff(handoff: Handoff | None) -> HandoffView | None:
    if handoff is None:
        return None
    requeued = handoff.status is HandoffStatus.QUEUED and handoff.claimed_at is not None
    return HandoffView(
        handoff.id,
        handoff.status,
        handoff.reason,
        handoff.agent.first_name if handoff.agent else None,
        requeued,
        handoff.resolution,
        handoff.csat,
    )


def talks(session: Session, telegram_user_id: int) -> list[TalkView]:
    """The conversations the agent with this Telegram account holds, oldest claim first."""
    me = session.scalar(select(Agent).where(Agent.telegram_user_id == telegram_user_id))
    if me is None or me.private_chat_id is None:
        return []
    held = handoffs.claimed_by(session, me.id)
    newest = dict(
        session.execute(
            select(Message.conversation_id, func.max(Message.telegram_message_id))
            .where(
                Message.chat_id == me.private_chat_id, Message.conversation_id.in_([h.conversation_id for h in held])
            )
            .group_by(Message.conversation_id)
        )
        .tuples()
        .all()
    )
    return [
        TalkView(
            h.ticket.reference,
            customer_name(h.conversation.customer),
            h.id,
            h.conversation_id,
            newest.get(h.conversation_id),
        )
        for h in held
    ]


def posts(session: Session, chat_id: int, telegram_message_ids: Iterable[int]) -> dict[int, Post]:
    """What the bot's messages in a chat (by Telegram message id) are about; messages it never recorded (answers to
    commands, the help) are left out."""
    ids = sorted(set(telegram_message_ids))
    if not ids:
        return {}
    found = list(
        session.scalars(
            select(Message).where(Message.chat_id == chat_id, Message.telegram_message_id.in_(ids)).order_by(Message.id)
        )
    )
    conversations = {
        c.id: c
        for c in session.scalars(
            select(Conversation)
            .where(Conversation.id.in_({m.conversation_id for m in found}))
            .options(joinedload(Conversation.customer))
        )
    }
    requests: dict[int, list[Handoff]] = {}
    for handoff in session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id.in_(conversations))
        .order_by(Handoff.id)
        .options(joinedload(Handoff.ticket))
    ):
        requests.setdefault(handoff.conversation_id, []).append(handoff)
    relayed = {m.update_id for m in found if m.kind == "relay" and m.update_id is not None}
    incoming = {
        m.update_id: m
        for m in session.scalars(
            select(Message).where(Message.update_id.in_(relayed), Message.direction == Direction.IN)
        )
    }
    first_parts = set(
        session.scalars(
            select(func.min(Message.id))
            .where(Message.chat_id == chat_id, Message.kind == "relay", Message.update_id.in_(relayed))
            .group_by(Message.update_id)
        )
    )
    result = {}
    for message in found:
        # The request it belongs to: the newest one opened before it was written.
        of = [h for h in requests.get(message.conversation_id, []) if h.created_at <= message.created_at]
        handoff = of[-1] if of else None
        source = incoming.get(message.update_id) if message.kind == "relay" else None
        result[message.telegram_message_id] = Post(
            message.conversation_id,
            customer_name(conversations[message.conversation_id].customer),
            handoff.ticket.reference if handoff else None,
            handoff.id if handoff else None,
            said=_said(source) if source is not None and message.id in first_parts else None,
            continued=source is not None and message.id not in first_parts,
        )
    return result


def _said(message: Message) -> str:
    """A customer's message in a line: its text, or its kind and caption."""
    return message.text if message.kind in SAID_AS_IS else f"[{message.kind}] {message.text}".strip()


def in_flight(session: Session, chat_id: int) -> bool:
    """Whether a message recorded for the chat is not yet marked delivered (it may be on its way)."""
    return bool(
        session.scalar(select(exists().where(Message.chat_id == chat_id, Message.status == DeliveryStatus.PENDING)))
    )


def board(session: Session, telegram_user_id: int, message_ids: Iterable[int] = ()) -> Board:
    """The desk as the agent with this Telegram account sees it, with what the given messages of their private chat
    with the bot are about (a private chat's id is its user's)."""
    # Asked first: a database may answer each query as of its own moment (SQLite's reads outside a write), and once
    # nothing is on its way, what the agent's chat showed before is all marked delivered for the queries after.
    settled = not in_flight(session, telegram_user_id)
    return Board(
        agent(session, telegram_user_id),
        tickets(session),
        talks(session, telegram_user_id),
        posts(session, telegram_user_id, message_ids),
        settled,
    )
