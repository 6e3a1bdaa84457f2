"""Conversations: find a customer's transcript (by name or username, ticket number, or words said) and read it,
with its handoffs (who, why, how long, rating) and tickets. The reading is plain functions of a Session, run with
`sessions.read`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from bot.admin.pages import deps, render, url
from bot.desk.cards import CATEGORIES, REASONS, agent_line, customer_name
from bot.storage.desk_models import Flag
from bot.storage.figures import duration
from bot.storage.models import (
    Agent,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Handoff,
    Message,
    Ticket,
)
from bot.storage.tickets import REFERENCE

NAV = ("Conversations", "/conversations")
routes = web.RouteTableDef()
PER_PAGE = 25
LINES_PER_PAGE = 100
STATES = {
    ConversationState.BOT: "with the bot",
    ConversationState.QUEUED: "waiting for a person",
    ConversationState.HUMAN: "with an agent",
    ConversationState.CLOSED: "with the bot (just rated)",
}


@dataclass
class Found:
    """A conversation in the search results."""

    conversation: Conversation
    customer: Customer
    messages: int
    last: datetime
    tickets: list[str]
    match: str  # the newest message with the words searched for, if searched by words


def _like(words: str) -> str:
    return "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _customer_visible(query: Select[Any]) -> Select[Any]:
    """Only the customer's own chat: what the desk copied to agents is kept with the conversation too."""
    return query.where(Message.chat_id == Conversation.chat_id)


def search(session: Session, words: str, page: int = 1) -> tuple[list[Found], int]:
    """Conversations whose customer's name or username, ticket number (T000123) or messages hold `words`; the
    newest first. Without words, every conversation. Returns one page and the total."""
    words = " ".join(words.split())
    matching = select(Conversation.id)
    pattern = _like(words.lstrip("@"))
    if number := REFERENCE.match(words):
        matching = select(Ticket.conversation_id).where(Ticket.id == int(number.group(1)))
    elif words:
        named = (
            select(Conversation.id)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(
                or_(
                    Customer.first_name.ilike(pattern, escape="\\"),
                    Customer.last_name.ilike(pattern, escape="\\"),
                    Customer.username.ilike(pattern, escape="\\"),
                    (Customer.first_name + " " + func.coalesce(Customer.last_name, "")).ilike(pattern, escape="\\"),
                )
            )
        )
        said = _customer_visible(
            select(Message.conversation_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.text.ilike(_like(words), escape="\\"))
        )
        matching = named.union(said)
    listed = _customer_visible(
        select(Conversation.id, func.count(Message.id).label("messages"), func.max(Message.created_at).label("last"))
        .join(Message, Message.conversation_id == Conversation.id)
        .where(Conversation.id.in_(matching))
        .group_by(Conversation.id)
    )
    total = session.scalar(select(func.count()).select_from(listed.subquery())) or 0
    rows = session.execute(
        listed.order_by(func.max(Message.created_at).desc(), Conversation.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    ).all()
    found = []
    for row in rows:
        conversation = session.get(Conversation, row.id)
        refs = session.scalars(select(Ticket.id).where(Ticket.conversation_id == row.id).order_by(Ticket.id))
        match = ""
        if words and not REFERENCE.match(words):
            match = (
                session.scalar(
                    select(Message.text)
                    .where(
                        Message.conversation_id == row.id,
                        Message.chat_id == conversation.chat_id,
                        Message.text.ilike(_like(words), escape="\\"),
                    )
                    .order_by(Message.id.desc())
                    .limit(1)
                )
                or ""
            )
        found.append(
            Found(
                conversation=conversation,
                customer=session.get(Customer, conversation.customer_id),
                messages=row.messages,
                last=row.last,
                tickets=[f"T{n:06d}" for n in refs],
                match=match,
            )
        )
    return found, total


@dataclass
class Line:
    """One line of a transcript as the console shows it."""

    when: datetime
    who: str
    text: str
    kind: str  # customer, bot, agent, event


def line(message: Message, first_name: str) -> Line:
    """A transcript record for people: who said it, and what (requests for a person and notes as events)."""
    payload = message.payload or {}
    if message.direction is Direction.IN:
        text = message.text or f"[{message.kind}]"
        if message.kind not in ("text", "command", "button"):
            text = f"[{message.kind}] {message.text}".strip()
        return Line(message.created_at, first_name or "Customer", text, "customer")
    if message.kind in ("agent", "agent_edit"):
        said = agent_line(message).split(": ", 1)[-1]
        return Line(
            message.created_at,
            str(payload.get("agent_name") or "Agent"),
            f"(edited) {said}" if message.kind == "agent_edit" else said,
            "agent",
        )
    if message.kind == "note":
        return Line(
            message.created_at,
            str(payload.get("agent_name") or "Agent"),
            f"(internal note) {payload.get('text', '')}",
            "event",
        )
    if message.kind == "handoff":
        reason = str((payload.get("handoff") or {}).get("reason") or "")
        return Line(message.created_at, "Bot", f"(asked for a person: {REASONS.get(reason, reason)})", "event")
    if message.kind == "custom":
        return Line(message.created_at, "Bot", "(a decision for the app)", "event")
    return Line(message.created_at, "Bot", message.text or f"[{message.kind}]", "bot")


@routes.get("/conversations")
async def conversation_list(request: web.Request) -> web.Response:
    """Search transcripts; the newest conversations first."""
    words = request.query.get("q", "").strip()[:200]
    page = _page(request)
    found, total = await deps(request).sessions.read(search, words, page)
    return await render(
        request,
        "conversations.html",
        title="Conversations",
        found=found,
        total=total,
        words=words,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        name=customer_name,
    )


@dataclass
class Shown:
    """One conversation as its page shows it: a page of the transcript, and what belongs to the conversation."""

    conversation: Conversation
    customer: Customer
    messages: list[Message]  # the page's
    total: int  # messages in the transcript
    tickets: list[Ticket]
    handoffs: list[dict[str, Any]]
    flags: list[Flag]


def conversation(session: Session, conversation_id: int, page: int = 1) -> Shown | None:
    """A conversation with a page (LINES_PER_PAGE) of its customer's own chat; None when there is no such one."""
    found = session.get(Conversation, conversation_id)
    if found is None:
        return None
    visible = select(Message).where(Message.conversation_id == found.id, Message.chat_id == found.chat_id)
    handoffs = []
    for handoff in session.scalars(
        select(Handoff).where(Handoff.conversation_id == found.id).order_by(Handoff.id)
    ).all():
        agent = session.get(Agent, handoff.agent_id) if handoff.agent_id else None
        handoffs.append(_handoff(handoff, agent, session.get(Ticket, handoff.ticket_id)))
    return Shown(
        conversation=found,
        customer=session.get(Customer, found.customer_id),
        messages=list(
            session.scalars(visible.order_by(Message.id).offset((page - 1) * LINES_PER_PAGE).limit(LINES_PER_PAGE))
        ),
        total=session.scalar(select(func.count()).select_from(visible.subquery())) or 0,
        tickets=list(session.scalars(select(Ticket).where(Ticket.conversation_id == found.id).order_by(Ticket.id))),
        handoffs=handoffs,
        flags=list(session.scalars(select(Flag).where(Flag.conversation_id == found.id).order_by(Flag.id))),
    )


@routes.get("/conversation")
async def conversation_page(request: web.Request) -> web.Response:
    """One conversation: the customer, their tickets and handoffs, flags, and the transcript a page at a time."""
    number = request.query.get("id", "")
    page = _page(request)
    shown = await deps(request).sessions.read(conversation, int(number), page) if number.isdigit() else None
    if shown is None:
        return await render(
            request,
            "missing.html",
            status=404,
            title="Not found",
            what=f"There is no conversation {number}.",
            back=url("/conversations"),
        )
    customer = shown.customer
    return await render(
        request,
        "conversation.html",
        title=customer_name(customer),
        conversation=shown.conversation,
        customer=customer,
        name=customer_name(customer),
        state=STATES.get(shown.conversation.state, ""),
        lines=[line(m, customer.first_name) for m in shown.messages],
        tickets=shown.tickets,
        categories=CATEGORIES,
        handoffs=shown.handoffs,
        flags=shown.flags,
        page=page,
        pages=max(1, -(-shown.total // LINES_PER_PAGE)),
        total=shown.total,
    )


def _handoff(handoff: Handoff, agent: Agent | None, ticket: Ticket | None) -> dict[str, Any]:
    def at(moment: datetime | None) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "–"

    def between(start: datetime | None, end: datetime | None) -> str:
        return duration((end - start).total_seconds()) if start and end else "–"

    return {
        "ticket": ticket.reference if ticket else "",
        "reason": REASONS.get(handoff.reason, handoff.reason),
        "status": handoff.status.value.lower(),
        "agent": agent.first_name if agent else "–",
        "queued": at(handoff.queued_at),
        "wait": between(handoff.queued_at, handoff.claimed_at),
        "first_reply": between(handoff.claimed_at, handoff.first_reply_at),
        "closed": at(handoff.closed_at),
        "csat": handoff.csat,
        "comment": handoff.csat_comment or "",
        "resolution": handoff.resolution or "",
    }


def _page(request: web.Request) -> int:
    return max(1, int(request.query["page"])) if request.query.get("page", "").isdigit() else 1
