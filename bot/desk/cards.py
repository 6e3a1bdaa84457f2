"""The words agents read: names, reasons, categories, transcript lines, short lines the desk posts. Pure text."""

from __future__ import annotations

from bot.storage.models import Customer, Direction, Message, Ticket

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
# A ticket's category as agents read it (actions/categories.py recognises them; the first four are earlier tickets').
CATEGORIES = {
    "delivery": "delivery",
    "damaged_or_wrong_item": "damaged or wrong item",
    "billing": "billing",
    "service": "service",
    "damaged": "damaged item",
    "wrong_item": "wrong item",
    "wrong_size": "wrong size",
    "missing_parts": "missing parts",
    "late": "late delivery",
    "not_arrived": "never arrived",
    "delivered_not_received": "marked delivered, not received",
    "charged_twice": "charged twice",
    "refund_missing": "refund not received",
    "rude_staff": "rude staff or courier",
    "no_reply": "no reply to emails",
    "stopped_working": "stopped working",
    "other": "other",
}
RESOLUTIONS = {
    "refund": "a refund",
    "replacement": "a replacement",
    "repair": "a repair",
    "just_informing": "just letting us know",
    "talk_to_person": "to talk to a person",
}


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
    if message.kind in ("agent", "agent_edit"):
        body = agent_line(message)
        return f"(edited) {body}" if message.kind == "agent_edit" else body
    return None


def agent_line(message: Message) -> str:
    """What an agent sent, as "Name: text" (as the customer saw it); a copy of their media as "Name: [photo] …"."""
    payload = message.payload or {}
    name = str(payload.get("agent_name") or "Agent")
    if "copy" not in payload:
        return message.text  # already "Name: text", as the customer saw it
    caption = message.text.removeprefix(f"{name}:").strip()
    return f"{name}: [{payload.get('what') or 'attachment'}] {caption}".strip()


def transcript(messages: list[Message], customer_first_name: str) -> list[str]:
    """The conversation as lines, oldest first."""
    return [line for m in messages if (line := transcript_line(m, customer_first_name)) is not None]
