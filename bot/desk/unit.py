"""One step of the desk as a unit of work: its transaction, the messages it queues, and the chats to deliver to
once it has committed.

A step is a plain function of a `Unit`, run whole by `Desk.step` through `Sessions.run` (on SQLite, on the
database's thread): it touches only the database, never Telegram, and so it may not await. Everything it sends is
recorded in the customer's transcript first (the outbox delivers it, after a restart too); `Desk.step` flushes the
chats it names once the transaction has committed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.desk import cards
from bot.desk.texts import PREFIX
from bot.storage import buttons, transcript
from bot.storage.models import Agent, Conversation, Handoff, Ticket, TicketStatus

DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)  # a ticket closed: its topic is closed too


class Unit:
    """A desk step's transaction and what it sends: `tell` the customer, `to_agent`, `to_topic`."""

    def __init__(self, session: Session, settings: Settings, update_id: int | None = None) -> None:
        self.session = session
        self.settings = settings
        self.group = settings.agent_chat_id
        self.update_id = update_id  # the update this step answers; its replies carry it
        self.chats: set[int] = set()

    @property
    def enabled(self) -> bool:
        """Whether an agents' group is configured."""
        return self.group is not None

    def answered(self) -> bool:
        """Whether this step's update has replies recorded already (it ran before a restart: only delivery is left)."""
        return self.update_id is not None and bool(transcript.replies_to(self.session, self.update_id))

    def queue(
        self,
        conversation: Conversation,
        chat_id: int,
        text: str,
        payload: dict[str, Any] | None = None,
        kind: str = "text",
        *,
        reply: bool = True,
    ) -> int:
        """Record a message for any chat (the customer's, the group, an agent's) in the customer's transcript."""
        self.chats.add(chat_id)
        return transcript.queue_outgoing(
            self.session,
            conversation=conversation,
            text=text,
            update_id=self.update_id if reply else None,
            payload=payload,
            kind=kind,
            chat_id=chat_id,
        )

    def tell(self, conversation: Conversation, text: str, choices: list[tuple[str, str]] | None = None) -> None:
        """A message to the customer, with buttons when `choices` (title, payload) are given."""
        self.queue(
            conversation, conversation.chat_id, text, self.buttons(conversation.chat_id, choices) if choices else None
        )

    def to_agent(
        self,
        agent: Agent | None,
        conversation: Conversation,
        text: str,
        choices: list[tuple[str, str]] | None = None,
    ) -> bool:
        """A message to an agent's private chat, kept with the customer's conversation; False when they have none."""
        if agent is None or not agent.private_chat_id:
            return False
        chat = agent.private_chat_id
        self.queue(conversation, chat, text, self.buttons(chat, choices) if choices else None)
        return True

    def to_topic(
        self,
        conversation: Conversation,
        ticket: Ticket,
        text: str,
        claim: Handoff | Ticket | None = None,
        kind: str = "text",
    ) -> None:
        """A message in the ticket's topic, with a Claim button for `claim` (once the topic exists: the card, posted
        later, carries the story)."""
        if not self.enabled or ticket.topic_id is None:
            return
        payload = thread(ticket, {})
        if claim is not None:
            payload.update(self.buttons(self.group, [("Claim", f"{PREFIX}claim:{ticket.id}")]))
        self.queue(conversation, self.group, text, payload, kind=kind, reply=False)

    def set_status(self, conversation: Conversation, ticket: Ticket, status: TicketStatus) -> None:
        """A ticket's new status; its topic closes with it (marked ✅, so the group's list shows open work) and
        reopens with it."""
        was_closed, ticket.status = ticket.status in DONE, status
        if self.enabled and ticket.topic_id and was_closed != (status in DONE):
            name = cards.topic_name(ticket, conversation.customer)
            change = (
                {"closed": True, "name": cards.clip(f"✅ {name}", cards.TOPIC_NAME_CHARS)}
                if status in DONE
                else {"closed": False, "name": name}
            )
            self.queue(
                conversation, self.group, "", {"thread_id": ticket.topic_id, "topic": change}, kind="topic", reply=False
            )

    def buttons(self, chat_id: int, choices: list[tuple[str, str]]) -> dict[str, Any]:
        """Inline buttons for a chat: each payload kept on the server behind a short id issued to that chat only."""
        return {
            "buttons": [
                {
                    "title": title,
                    "callback_data": buttons.register(self.session, chat_id=chat_id, title=title, payload=payload),
                }
                for title, payload in choices
            ]
        }

    def name(self, conversation: Conversation) -> str:
        """The customer's name as agents see it."""
        return cards.customer_name(conversation.customer)


def thread(ticket: Ticket, payload: dict[str, Any]) -> dict[str, Any]:
    """A group message's payload, in the ticket's topic when it has one."""
    return {**payload, "thread_id": ticket.topic_id} if ticket.topic_id else dict(payload)


def record_number(text: str) -> int | None:
    """The number of a ticket or promise as typed (`000012`): ASCII digits only, in a database id's range.

    Python's `isdigit` and `int` take other scripts' digits too (and `int` refuses some, like "²"); a database refuses
    numbers beyond 64 bits: either would fail the command instead of saying how to use it.
    """
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > 18:
        return None
    return int(text) or None
