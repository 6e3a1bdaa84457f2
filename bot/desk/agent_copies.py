"""What an agent sends a customer from their private chat: texts, copies of their photos, files, voice notes,
videos, audio, stickers, locations and albums; and their edits, which edit the customer's copy. Each is recorded in
the customer's transcript (the outbox delivers it in order), with the agent's message it came from (`source`), so an
edit finds its copies again and a copy Telegram refuses is explained to the agent who sent it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telegram import Message

from bot.desk.texts import EDIT_NOT_SENT, REFUSED
from bot.desk.unit import Unit
from bot.storage import alerts, copies, handoffs
from bot.storage.models import Agent, Conversation, Handoff, utcnow
from bot.storage.models import Message as Record
from bot.telegram.formatting import split_text

ALBUM_WAIT = timedelta(seconds=1)  # an album's parts arrive one update each: its first waits this long for the rest
CAPTION_CHARS = 1024
KINDS = (
    "photo",
    "document",
    "voice",
    "video",
    "video_note",
    "audio",
    "animation",
    "sticker",
    "location",
    "venue",
    "contact",
)


def kind_of(message: Message) -> str:
    """What an agent's message is, in a word ("message" for a text or anything else)."""
    return next((kind for kind in KINDS if getattr(message, kind, None)), "message")


def send(u: Unit, agent: Agent, conversation: Conversation, handoff: Handoff | None, message: Message) -> None:
    """One message of an agent to a customer, recorded in the customer's transcript."""
    source = {"chat_id": message.chat_id, "message_id": message.message_id}
    meta: dict[str, Any] = {
        "agent_id": agent.id,
        "agent_name": agent.first_name,
        "source": source,
        "what": kind_of(message),
    }
    if message.text:
        for part in split_text(f"{agent.first_name}: {message.text}"):  # the name may push it past one message
            u.queue(conversation, conversation.chat_id, part, dict(meta), kind="agent")
    else:
        payload = {**meta, "copy": {"from_chat_id": message.chat_id, "message_id": message.message_id}}
        if message.media_group_id:
            # Copied together, as one album (copyMessages keeps each part's caption), once its parts are all here.
            payload["album"] = f"{message.chat_id}:{message.media_group_id}"
            payload["not_before"] = (utcnow() + ALBUM_WAIT).timestamp()
            text = message.caption or ""
        else:
            text = _caption(agent, message.caption)
        u.queue(conversation, conversation.chat_id, text, payload, kind="agent")
    if handoff is not None and handoff.first_reply_at is None:
        handoff.first_reply_at = utcnow()
    if handoff is not None:
        alerts.agent_replied(handoff)


def edit(u: Unit, agent_id: int, message: Message) -> str:
    """An agent edited a message they sent a customer: the customer's copy is edited the same way. What to tell the
    agent when there is no copy to edit ("" when the edit is on its way)."""
    agent = u.session.get(Agent, agent_id)
    mine = {h.conversation_id: h for h in handoffs.claimed_by(u.session, agent_id)}
    found = copies.of_agent_message(u.session, mine, chat_id=message.chat_id, message_id=message.message_id)
    if agent is None or not found:
        return EDIT_NOT_SENT
    conversation = mine[found[0].conversation_id].conversation
    u.chats.add(conversation.chat_id)
    if u.answered():
        return ""
    if message.text:
        parts = split_text(f"{agent.first_name}: {message.text}")
    else:
        album = (found[0].payload or {}).get("album")
        parts = [message.caption or "" if album else _caption(agent, message.caption)]
    meta = {k: v for k, v in (found[0].payload or {}).items() if k in ("agent_id", "agent_name", "source", "what")}
    for copy, part in zip(found, parts, strict=False):
        edit_of = {"of": copy.id, "caption": not message.text}
        u.queue(conversation, conversation.chat_id, part, {**meta, "edit": edit_of}, kind="agent_edit")
    for part in parts[len(found) :]:  # an edited text grown past what its copies hold: the rest as new messages
        u.queue(conversation, conversation.chat_id, part, dict(meta), kind="agent")
    return ""


def _caption(agent: Agent, caption: str | None) -> str:
    """The caption of a copy: the agent's name, then theirs (Telegram ignores it on a sticker or a location)."""
    return (f"{agent.first_name}: {caption}" if caption else f"{agent.first_name}:")[:CAPTION_CHARS]


def tell_refused(u: Unit, conversation_id: int, agent_id: int, record: Record, reason: str) -> None:
    """The agent hears which of their messages Telegram refused to deliver, and why."""
    conversation, agent = u.session.get(Conversation, conversation_id), u.session.get(Agent, agent_id)
    if conversation is None:
        return
    active = handoffs.active_for(u.session, conversation_id)
    ticket = active.ticket.reference if active is not None else "their ticket"
    what = str((record.payload or {}).get("what") or "message")
    what = f"edit of a {what}" if record.kind == "agent_edit" else what
    u.to_agent(agent, conversation, REFUSED.format(what=what, name=u.name(conversation), ticket=ticket, reason=reason))
