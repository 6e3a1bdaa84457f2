"""What agents read: the context card of a ticket, and the short lines the desk posts. Pure text, no Telegram."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.storage.memory import CustomerMemory
from bot.storage.models import Customer, Direction, Handoff, Message, Ticket

CARD_MESSAGES = 10  # transcript lines in the card; the whole transcript is attached when longer
LINE_CHARS = 300
TOPIC_NAME_CHARS = 128  # Telegram's limit for a forum topic name
REASONS = {
    "customer_request": "asked for a person",
    "fallbacks": "the bot did not understand them several times",
    "frustration": "frustrated with the bot",
    "complaint": "wants a person for their complaint",
    "bot_unavailable": "the bot was unavailable",
    "followup": "the next-day check: not sorted yet",
    "agent": "picked up by an agent",
}
CATEGORIES = {
    "delivery": "delivery", "damaged_or_wrong_item": "damaged or wrong item", "billing": "billing", "service": "service",
    "other": "other",
}
RESOLUTIONS = {
    "refund": "a refund", "replacement": "a replacement", "repair": "a repair", "just_informing": "just letting us know",
    "talk_to_person": "to talk to a person",
}
COLLECTED = (
    ("complaint_description", "What happened"), ("order_number", "Order"), ("complaint_category", "About"),
    ("desired_resolution", "Wants"), ("contact", "Contact"),
)


def customer_name(customer: Customer | None) -> str:
    """First and last name, or a placeholder for a forgotten customer."""
    if customer is None:
        return "(customer deleted)"
    return " ".join(part for part in (customer.first_name, customer.last_name) if part) or "(no name)"


def topic_name(ticket: Ticket, customer: Customer | None) -> str:
    """The forum topic's title: ticket number and customer, within Telegram's limit."""
    return f"{ticket.reference} · {customer_name(customer)}"[:TOPIC_NAME_CHARS]


def clip(text: str, limit: int = LINE_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wait_text(wait: timedelta | None) -> str:
    """A wait in words, rounded up to what a customer can plan with."""
    if wait is None:
        return ""
    minutes = max(1, round(wait.total_seconds() / 60))
    if minutes < 60:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60, 1)
    return f"about {hours:g} hour{'s' if hours != 1 else ''}"


def transcript_line(message: Message, customer_first_name: str) -> str | None:
    """One line of the transcript as agents read it; None for records that are not messages."""
    if message.direction is Direction.IN:
        who = customer_first_name or "Customer"
        body = message.text or f"[{message.kind}]"
        if message.kind not in ("text", "edited", "command", "button") and message.text:
            body = f"[{message.kind}] {message.text}"
        if message.kind == "edited":
            body = f"(edited) {body}"
        return f"{who}: {body}"
    if message.kind in ("text", "document"):
        return f"Bot: {message.text}"
    if message.kind == "agent":
        return message.text  # already "Name: text", as the customer saw it
    return None


def transcript(messages: list[Message], customer_first_name: str) -> list[str]:
    """The conversation as lines, oldest first."""
    return [line for m in messages if (line := transcript_line(m, customer_first_name)) is not None]


@dataclass(frozen=True)
class CardFacts:
    """Everything a card is made of, gathered by the desk."""

    ticket: Ticket
    customer: Customer | None
    memory: CustomerMemory | None
    handoff: Handoff | None
    lines: list[str]


def card(facts: CardFacts) -> str:
    """The context card: who, why, what the bot collected and understood, and the last messages."""
    ticket, customer, memory, handoff = facts.ticket, facts.customer, facts.memory, facts.handoff
    username = f" (@{customer.username})" if customer is not None and customer.username else ""
    out = [f"🎫 {ticket.reference} · {customer_name(customer)}{username}"]
    if memory is None or not memory.returning:
        out.append("New customer" + (" · regular" if memory is not None and memory.regular else ""))
    else:
        out.append(f"Returning customer ({memory.earlier_visits} earlier day(s))" + (" · regular" if memory.regular else ""))
    if handoff is not None:
        out.append(f"Needs a person: {REASONS.get(handoff.reason, handoff.reason)}")
    else:
        out.append("Complaint: no person asked for yet; answer in this topic or claim it")
    out.append(f"Priority: {ticket.priority.value.lower()} · opened {ticket.created_at:%d %b %H:%M} UTC")
    others = [t for t in (memory.open_tickets if memory else []) if t.id != ticket.id]
    if others:
        out.append("Other open tickets: " + ", ".join(f"{t.reference} ({CATEGORIES.get(t.category, t.category)})" for t in others))
    if memory is not None and memory.earlier_tickets > 1:
        out.append(f"Tickets in all: {memory.earlier_tickets}")
    out += ["", "Collected:"]
    collected = _collected(ticket, handoff)
    out += [f"• {label}: {clip(str(value))}" for label, value in collected]
    intents = (handoff.context.get("intents") if handoff else None) or []
    if intents:
        out += ["", "Understood: " + ", ".join(
            f"{i.get('name')} {float(i.get('confidence') or 0):.2f}" for i in intents[-5:] if isinstance(i, dict))]
    if facts.lines:
        shown = facts.lines[-CARD_MESSAGES:]
        out += ["", "Last messages:" if len(facts.lines) > len(shown) else "Conversation:"]
        out += [clip(line) for line in shown]
        if len(facts.lines) > len(shown):
            out.append(f"(the whole transcript, {len(facts.lines)} messages, is attached below)")
    return "\n".join(out)[:4000]


def _collected(ticket: Ticket, handoff: Handoff | None) -> list[tuple[str, Any]]:
    """The ticket's details, with anything newer the bot collected for the handoff."""
    values: dict[str, Any] = {
        "complaint_description": ticket.description,
        "order_number": ticket.order_number,
        "complaint_category": CATEGORIES.get(ticket.category, ticket.category),
        "desired_resolution": RESOLUTIONS.get(ticket.desired_resolution, ticket.desired_resolution),
        "contact": ticket.contact,
    }
    for slot, value in ((handoff.context.get("collected") if handoff else None) or {}).items():
        if slot in values and value not in (None, "none", ""):
            values[slot] = CATEGORIES.get(value, RESOLUTIONS.get(value, value)) if isinstance(value, str) else value
    rows = [(label, values[slot]) for slot, label in COLLECTED if values.get(slot) not in (None, "none", "")]
    photos = len(ticket.photos or [])
    if photos:
        rows.append(("Photos", f"{photos} (below)"))
    return rows


def full_transcript(ticket: Ticket, customer: Customer | None, lines: list[str], now: datetime) -> str:
    """The transcript file attached to a long card."""
    header = f"{ticket.reference} · {customer_name(customer)} · transcript as of {now:%Y-%m-%d %H:%M} UTC"
    return "\n".join([header, "", *lines]) + "\n"
