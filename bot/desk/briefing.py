"""Everything an agent is given when a ticket reaches the group: the context card, the customer's attachments to
copy after it, and (when the card could not hold it all) the complete transcript as a file. Pure, no Telegram.

The promise: every text the customer wrote, every detail the bot collected and every attachment reaches the agent
whole: on the card when it fits Telegram's 4,096 characters; otherwise the card says what it shortened and the
transcript file holds it all. Attachments are copied into the topic, up to COPIED_PER_TICKET (the group's budget
is 20 messages a minute); every one is listed in the transcript, copied or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.desk.cards import CATEGORIES, REASONS, RESOLUTIONS, clip, customer_name, transcript_line
from bot.storage.memory import CustomerMemory
from bot.storage.models import Customer, Direction, Handoff, Message, Ticket

MESSAGE_CHARS = 4096  # Telegram's limit for one message
COPIED_PER_TICKET = 10
SHORT_LINE = 300  # a line's length on a card that had to be shortened
ATTACHMENTS = (
    "photo",
    "document",
    "voice",
    "video",
    "video_note",
    "audio",
    "animation",
    "sticker",
    "location",
    "contact",
)
COLLECTED = (
    ("complaint_description", "What happened"),
    ("order_number", "Order"),
    ("complaint_category", "About"),
    ("desired_resolution", "Wants"),
    ("contact", "Contact"),
)


@dataclass(frozen=True)
class Attachment:
    """Something the customer sent that is not text: where it is (their chat, the message), and what it was."""

    message_id: int  # Telegram's, in the customer's chat
    kind: str
    at: datetime
    caption: str = ""
    file_unique_id: str | None = None
    album: str | None = None  # Telegram's media_group_id
    detail: str = ""  # a location's coordinates, a contact's name and number

    def listed(self) -> str:
        """One line of the transcript's list."""
        parts = [f"{self.at:%Y-%m-%d %H:%M:%S} UTC", self.kind]
        parts += [f"file {self.file_unique_id}"] if self.file_unique_id else []
        parts += [self.detail] if self.detail else []
        parts += [f"caption: {self.caption}"] if self.caption else []
        return " · ".join(parts)


@dataclass(frozen=True)
class Facts:
    """What a card is made of, gathered by the desk."""

    ticket: Ticket
    customer: Customer | None
    memory: CustomerMemory | None
    handoff: Handoff | None
    messages: list[Message]  # the customer's chat, oldest first
    since: datetime | None = None  # attachments before this went with an earlier ticket
    in_topic: frozenset[int] = frozenset()  # attachments (message ids) in the ticket's topic already
    copied_before: int = 0  # of those, how many an earlier card copied (they count toward COPIED_PER_TICKET)


@dataclass
class Briefing:
    """The card, the attachments to copy after it (Telegram message ids, albums kept together), and the file."""

    card: str
    copies: list[list[int]] = field(default_factory=list)
    transcript: str | None = None
    not_copied: list[Attachment] = field(default_factory=list)


def attachments(messages: list[Message], since: datetime | None = None) -> list[Attachment]:
    """The customer's attachments in their chat, oldest first (from `since` on, when given)."""
    found = []
    for message in messages:
        if (
            message.direction is not Direction.IN
            or message.kind not in ATTACHMENTS
            or message.telegram_message_id is None
        ):
            continue
        if since is not None and message.created_at < since:
            continue
        payload = message.payload or {}
        found.append(
            Attachment(
                message_id=message.telegram_message_id,
                kind=message.kind,
                at=message.created_at,
                caption=message.text or "",
                file_unique_id=payload.get("file_unique_id"),
                album=payload.get("media_group_id"),
                detail=str(payload.get("detail") or ""),
            )
        )
    return found


def in_groups(chosen: list[Attachment]) -> list[list[int]]:
    """Message ids to copy in one call each: an album's messages together, anything else on its own."""
    groups: list[list[int]] = []
    previous: str | None = None
    for attachment in chosen:
        if attachment.album is not None and attachment.album == previous:
            groups[-1].append(attachment.message_id)
        else:
            groups.append([attachment.message_id])
        previous = attachment.album
    return groups


def brief(facts: Facts, now: datetime) -> Briefing:
    """The card (whole when it fits, else shortened and saying so), the copies, and the transcript when needed."""
    ticket = facts.ticket
    first_name = facts.customer.first_name if facts.customer else ""
    lines = [line for m in facts.messages if (line := transcript_line(m, first_name)) is not None]
    everything = attachments(facts.messages)
    current = [a for a in attachments(facts.messages, facts.since) if a.message_id not in facts.in_topic]
    room = max(0, COPIED_PER_TICKET - facts.copied_before)
    copied, rest = current[:room], current[room:]
    head = _head(facts)
    details = _details(ticket, facts.handoff)
    media = _media_line(ticket, len(copied), len(rest), len(facts.in_topic))
    whole = _compose(head, [f"• {label}: {value}" for label, value in details], media, lines, None)
    if len(whole) <= MESSAGE_CHARS:
        card, shortened = whole, False
    else:
        card, shortened = _shortened(head, details, media, lines), True
    briefing = Briefing(card=card, copies=in_groups(copied), not_copied=rest)
    if shortened or rest:
        briefing.transcript = full_transcript(facts, lines, everything, set(map(_key, copied)) | facts.in_topic, now)
    return briefing


def _key(attachment: Attachment) -> int:
    return attachment.message_id


def _head(facts: Facts) -> list[str]:
    ticket, customer, memory, handoff = facts.ticket, facts.customer, facts.memory, facts.handoff
    username = f" (@{customer.username})" if customer is not None and customer.username else ""
    out = [f"🎫 {ticket.reference} · {customer_name(customer)}{username}"]
    if memory is None or not memory.returning:
        out.append("New customer" + (" · regular" if memory is not None and memory.regular else ""))
    else:
        out.append(
            f"Returning customer ({memory.earlier_visits} earlier day(s))" + (" · regular" if memory.regular else "")
        )
    if handoff is not None:
        out.append(f"Needs a person: {REASONS.get(handoff.reason, handoff.reason)}")
    else:
        out.append("Complaint: no person asked for yet; answer in this topic or claim it")
    out.append(f"Priority: {ticket.priority.value.lower()} · opened {ticket.created_at:%d %b %H:%M} UTC")
    others = [t for t in (memory.open_tickets if memory else []) if t.id != ticket.id]
    if others:
        out.append(
            "Other open tickets: "
            + ", ".join(f"{t.reference} ({CATEGORIES.get(t.category, t.category)})" for t in others)
        )
    if memory is not None and memory.earlier_tickets > 1:
        out.append(f"Tickets in all: {memory.earlier_tickets}")
    intents = (handoff.context.get("intents") if handoff else None) or []
    if intents:
        out.append(
            "Understood: "
            + ", ".join(
                f"{i.get('name')} {float(i.get('confidence') or 0):.2f}" for i in intents[-5:] if isinstance(i, dict)
            )
        )
    article = article_line(handoff)
    if article:
        out.append(article)
    return out


def article_line(handoff: Handoff | None) -> str | None:
    """The help-center article the bot offered before the handoff, and what the customer said of it."""
    article = handoff.context.get("article") if handoff else None
    if not isinstance(article, dict) or not article.get("title"):
        return None
    helpful = article.get("helpful")
    if helpful is None:
        verdict = "the customer did not say whether it helped"
    else:
        verdict = "the customer said it helped" if helpful else "the customer said it did not help"
    link = f" {article['url']}" if article.get("url") else ""
    return f"Help-center article offered: “{clip(str(article['title']), SHORT_LINE)}”{link} · {verdict}"


def _details(ticket: Ticket, handoff: Handoff | None) -> list[tuple[str, str]]:
    """The ticket's details, with anything newer the bot collected for the handoff, in words."""
    values: dict[str, Any] = {
        "complaint_description": ticket.description,
        "order_number": ticket.order_number,
        "complaint_category": CATEGORIES.get(ticket.category, ticket.category),
        "desired_resolution": RESOLUTIONS.get(ticket.desired_resolution, ticket.desired_resolution),
        "contact": ticket.contact,
    }
    for slot, value in _collected(handoff).items():
        if slot in values and value not in (None, "none", ""):
            values[slot] = CATEGORIES.get(value, RESOLUTIONS.get(value, value)) if isinstance(value, str) else value
    return [(label, _text(values[slot])) for slot, label in COLLECTED if values.get(slot) not in (None, "none", "")]


def _media_line(ticket: Ticket, copied: int, rest: int, before: int) -> str | None:
    if not copied and not rest:
        return None
    text = f"Attachments: {copied} (below)" + (f", {before} earlier in this topic" if before else "")
    if rest:
        text += f"; {rest} more are listed in the transcript: /media {ticket.reference} sends them to you"
    return text


def _compose(head: list[str], details: list[str], media: str | None, lines: list[str], note: str | None) -> str:
    out = list(head)
    if details:
        out += ["", "Collected:", *details]
    if media:
        out += ["", media]
    if lines:
        out += ["", "Conversation:", *lines]
    if note:
        out += ["", note]
    return "\n".join(out)


def _shortened(head: list[str], details: list[tuple[str, str]], media: str | None, lines: list[str]) -> str:
    """The card with long values cut and the oldest lines left out, until it fits; it says what it left out."""
    short_details = [f"• {label}: {clip(value, SHORT_LINE)}" for label, value in details]
    note = (
        "✂️ Shortened to fit one message: the last {shown} of {total} messages, long ones cut. "
        "The complete transcript is attached below."
    )
    room = MESSAGE_CHARS - len(
        _compose(head, short_details, media, ["x"], note.format(shown=len(lines), total=len(lines)))
    )
    kept: list[str] = []
    for line in reversed(lines):  # the newest first, as many as fit
        short = clip(line, SHORT_LINE)
        if len(short) + 1 > room:
            break
        kept.insert(0, short)
        room -= len(short) + 1
    card = _compose(head, short_details, media, kept, note.format(shown=len(kept), total=len(lines)))
    return card if len(card) <= MESSAGE_CHARS else card[: MESSAGE_CHARS - 1] + "…"


def full_transcript(
    facts: Facts,
    lines: list[str],
    everything: list[Attachment],
    copied: set[int],
    now: datetime,
    where: str = "the topic",
) -> str:
    """The file attached to a card that could not hold everything: nothing in it is cut."""
    ticket = facts.ticket
    out = [f"{ticket.reference} · {customer_name(facts.customer)} · transcript as of {now:%Y-%m-%d %H:%M} UTC", ""]
    out += ["Details:", *(f"{label}: {value}" for label, value in _details(ticket, facts.handoff))]
    collected = _collected(facts.handoff)
    if collected:
        out += [
            "",
            "Collected by the bot, as recorded:",
            *(f"{slot}: {_text(value)}" for slot, value in collected.items()),
        ]
    out += ["", f"Conversation ({len(lines)} messages):", *lines]
    if everything:
        out += ["", f"Attachments ({len(everything)}):"]
        out += [
            f"{n}. {a.listed()} · {f'copied to {where}' if a.message_id in copied else 'not copied'}"
            for n, a in enumerate(everything, 1)
        ]
    return "\n".join(out) + "\n"


def _collected(handoff: Handoff | None) -> dict[str, Any]:
    collected = (handoff.context.get("collected") if handoff else None) or {}
    return collected if isinstance(collected, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
