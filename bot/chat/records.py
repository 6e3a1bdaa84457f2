"""What the customer chat records: the kind of an attachment and what the transcript keeps of it, the claim of
the one trip to Rasa, and Rasa's answer queued to be sent. Plain functions: the database work runs as one
transaction (see DEVELOPERS.md, Storage)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from telegram import Update

from bot.rasa import RasaReply
from bot.storage import buttons, inbox, transcript
from bot.storage.models import Conversation
from bot.telegram.formatting import split_text

MEDIA_KINDS = ("photo", "sticker", "voice", "video_note", "video", "audio", "document", "location", "contact")


def media_kind(update: Update) -> str:
    """The kind of non-text content a message carries."""
    message = update.effective_message
    return next((kind for kind in MEDIA_KINDS if message is not None and getattr(message, kind, None)), "other")


def is_picture(update: Update, kind: str) -> bool:
    """A photo, or an image sent as a file (uncompressed), which is a photo to the customer."""
    document = update.effective_message.document if kind == "document" else None
    return kind == "photo" or bool(document and (document.mime_type or "").startswith("image/"))


def _file(update: Update, kind: str) -> Any:
    attachment = getattr(update.effective_message, kind, None)
    if isinstance(attachment, tuple):
        attachment = attachment[-1] if attachment else None
    return attachment


def file_id_of(update: Update, kind: str) -> str | None:
    return getattr(_file(update, kind), "file_id", None)


def attachment_record(update: Update, kind: str) -> dict[str, Any]:
    """What the transcript keeps of an attachment, for the agents to find it: the file, its album, or what a
    location or contact says."""
    message, attachment = update.effective_message, _file(update, kind)
    record: dict[str, Any] = {"file_id": getattr(attachment, "file_id", None)}
    if unique := getattr(attachment, "file_unique_id", None):
        record["file_unique_id"] = unique
    if message.media_group_id:
        record["media_group_id"] = message.media_group_id
    if message.location is not None:
        record["detail"] = f"{message.location.latitude:.6f}, {message.location.longitude:.6f}"
    elif message.contact is not None:
        contact = message.contact
        record["detail"] = " ".join(p for p in (contact.first_name, contact.last_name or "", contact.phone_number) if p)
    return record


def claim_trip(session: Session, update_id: int) -> tuple[bool, bool]:
    """Claim the one trip to Rasa for an update; (claimed, answered: replies to it are recorded already)."""
    claimed = inbox.mark_sent_to_rasa(session, update_id, unless_answered=True)
    return claimed, not claimed and bool(transcript.replies_to(session, update_id))


def record_answer(
    session: Session, conversation: Conversation, update_id: int, answer: list[RasaReply], *, unanswered: bool
) -> None:
    """Rasa's messages to an update recorded (unless they are already), and the update marked done: what is left is
    the outbox's, which delivers whatever is recorded, after a restart too."""
    if unanswered or not transcript.replies_to(session, update_id):
        for reply in answer:
            queue_reply(session, conversation, update_id, reply)
    inbox.mark_done(session, update_id)


def queue_reply(session: Session, conversation: Conversation, update_id: int, reply: RasaReply) -> None:
    """A reply's text (split to Telegram's length) and buttons, recorded to be sent."""
    parts = split_text(reply.get("text") or "")
    if not parts and reply.get("buttons"):
        parts = ["Please choose:"]
    for index, part in enumerate(parts):
        payload = None
        if reply.get("buttons") and index == len(parts) - 1:
            payload = {
                "buttons": [
                    {
                        "title": b["title"],
                        "callback_data": buttons.register(
                            session, chat_id=conversation.chat_id, title=b["title"], payload=b["payload"]
                        ),
                    }
                    for b in reply["buttons"]
                ]
            }
        transcript.queue_outgoing(session, conversation=conversation, text=part, update_id=update_id, payload=payload)


def metadata(update: Update) -> dict[str, Any]:
    """What Rasa is told about the sender with each message (DEVELOPERS.md: message metadata)."""
    user = update.effective_user
    return {
        "update_id": update.update_id,
        "telegram": {
            "user_id": user.id,
            "chat_id": update.effective_chat.id,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "username": user.username,
            "language_code": user.language_code,
        },
    }
