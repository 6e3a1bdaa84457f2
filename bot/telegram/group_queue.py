"""The order a group's messages go out in: Telegram lets a bot post only about 20 a minute in one group, so when
they queue up, who goes first matters.

Cards first (a new ticket is what the team must see), then the customers in turn, one message each (round robin),
so one customer's album or stream of messages cannot hold back another's card. Each customer's own messages keep
their order. A waiting customer's texts relayed to the group go out together, as one message, at most once every
RELAY_MERGE_SECONDS (each relay carries the moment it may go: `not_before`).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.storage.models import Message

MESSAGE_CHARS = 4096


def is_group(chat_id: int) -> bool:
    """Groups and channels have negative ids in the Bot API; private chats positive."""
    return chat_id < 0


def next_batch(pending: Sequence[Message], now: float, last_served: int | None) -> list[Message]:
    """The message(s) to send next: one, or a waiting customer's relayed texts merged into one; [] when none is due."""
    heads: dict[int, Message] = {}
    for message in pending:  # oldest first: each customer's first pending message
        heads.setdefault(message.conversation_id, message)
    due = [m for m in heads.values() if due_now(m, now)]
    if not due:
        return []
    cards = [m for m in due if m.kind == "card"]
    if cards:
        return [min(cards, key=lambda m: m.id)]
    order = sorted(due, key=lambda m: m.conversation_id)
    chosen = next((m for m in order if last_served is not None and m.conversation_id > last_served), order[0])
    return _with_followers(chosen, [m for m in pending if m.conversation_id == chosen.conversation_id])


def messages_in(message: Message) -> int:
    """How many messages Telegram counts for sending this: a copy of an album is one per item, a topic renamed and
    closed two service messages."""
    payload = message.payload or {}
    if "copy_many" in payload:
        return max(1, len(payload["copy_many"].get("message_ids") or []))
    if "topic" in payload:
        return max(1, ("name" in payload["topic"]) + ("closed" in payload["topic"]))
    return 1


def merged_text(batch: Sequence[Message]) -> str:
    """One text of several relays: their common header line once, then each text."""
    first = batch[0].text
    header = first.split("\n", 1)[0]
    parts = [first] + [m.text.removeprefix(header + "\n") for m in batch[1:]]
    return "\n".join(parts)


def due_now(message: Message, now: float) -> bool:
    """Whether a message may go now (a relay paced for the group, an album's part waiting for the rest)."""
    not_before = (message.payload or {}).get("not_before")
    return not_before is None or float(not_before) <= now


def _mergeable(message: Message) -> bool:
    payload = message.payload or {}
    return message.kind == "relay" and not ({"copy", "copy_many", "buttons", "topic"} & payload.keys())


def _with_followers(first: Message, theirs: list[Message]) -> list[Message]:
    """A relayed text with the same customer's relayed texts right after it, as long as one message holds them."""
    if not _mergeable(first):
        return [first]
    batch = [first]
    for message in theirs[1:]:
        if not _mergeable(message) or (message.payload or {}).get("thread_id") != (first.payload or {}).get(
            "thread_id"
        ):
            break
        if len(merged_text([*batch, message])) > MESSAGE_CHARS:
            break
        batch.append(message)
    return batch
