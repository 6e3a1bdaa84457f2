"""What the sandbox's agent sees (`frontline desk`): where things stand, and what the bot posts for them.

Where things stand (the tickets, their requests for a person, whom the agent is helping) is read from the database
the sandbox runs on (bot/desk/board.py), never from the bot's wording. The agents' group and the agent's private
chat, read through the emulator as the agent's Telegram app would, give what to show (what customers write, the
notices) and the buttons to press. Nothing else is kept, so the desk can be restarted at any time.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.desk import board
from bot.desk.cards import REASONS
from bot.emulator.client import EmulatorClient
from bot.storage.db import Sessions
from bot.storage.models import HandoffStatus

POLL_SECONDS = 25.0
START_SECONDS = 15.0
SETTLE_SECONDS = 2.0  # how long a look waits for the bot to record what it has just delivered to the agent
CLAIM = "Claim"  # the button that takes a ticket, in its topic
CONTROLS = "Return to bot"  # a button only the message that opens a conversation in the agent's chat carries


class DeskError(Exception):
    """The desk cannot start: the bot did not answer, or the user is not an agent."""


@dataclass
class Ticket:
    """A ticket in the agents' group: where it stands (the desk's records), its card and Claim button (its topic)."""

    reference: str
    topic: str = ""  # the forum topic's name
    thread_id: int | None = None
    status: str = "open"
    ended: bool = False
    claim: tuple[int, str] | None = None  # the newest Claim button: message id, callback data
    card: str = ""


@dataclass
class Talk:
    """A conversation the agent holds."""

    reference: str
    customer: str
    reply_to: int | None  # the newest message about it in the agent's chat: replying to it picks this customer
    buttons: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """Something the bot posted that the agent should see."""

    ticket: str | None
    text: str

    def __str__(self) -> str:
        return f"[{self.ticket or 'desk'}] {self.text}"


def status(ticket: board.TicketView) -> str:
    """Where a ticket stands, in a few words."""
    request = ticket.handoff
    if request is None:
        return "complaint, no person asked for yet"
    agent = request.agent or "someone"
    if request.status is HandoffStatus.QUEUED:
        return "waiting: " + ("back in the queue" if request.requeued else REASONS.get(request.reason, request.reason))
    if request.status is HandoffStatus.CLAIMED:
        return f"claimed by {agent}"
    if request.status is HandoffStatus.CLOSED:
        note = f": {request.resolution}" if request.resolution else ""
        return f"closed by {agent}{note}" + (f", rated {request.csat}/5" if request.csat else "")
    if request.status is HandoffStatus.RETURNED:
        return "back with the bot"
    return "left the queue, back with the bot"


def _buttons(entry: dict[str, Any]) -> dict[str, tuple[int, str]]:
    rows = (entry.get("reply_markup") or {}).get("inline_keyboard") or []
    return {b["text"]: (entry["message_id"], b["callback_data"]) for row in rows for b in row if b.get("callback_data")}


class DeskView:
    """The agent's view of the desk, through the emulator and the desk's records."""

    def __init__(
        self, emulator: EmulatorClient, sessions: Sessions, agent_id: int, group_id: int | None = None
    ) -> None:
        self.emulator = emulator
        self.sessions = sessions
        self.agent_id = agent_id
        self.group_id = group_id
        self.name = "Agent"
        self.chosen: str | None = None
        self.choices: list[tuple[str, int, str]] = []  # the buttons of the bot's last other message here
        self._board = board.Board(None)
        self._claims: dict[int, tuple[int, str]] = {}  # topic -> its newest Claim button
        self._cards: dict[int, str] = {}  # topic -> its card: the first message in it
        self._controls: dict[int, dict[str, tuple[int, str]]] = {}  # handoff -> the buttons opening it here
        self._after = 0

    @property
    def tickets(self) -> dict[str, Ticket]:
        """The tickets in the agents' group, oldest first."""
        return {
            t.reference: Ticket(
                t.reference,
                t.topic,
                t.thread_id,
                status(t),
                t.ended,
                self._claims.get(t.thread_id),
                self._cards.get(t.thread_id, ""),
            )
            for t in self._board.tickets
        }

    @property
    def talks(self) -> dict[str, Talk]:
        """The conversations the agent holds, oldest claim first."""
        return {
            t.reference: Talk(t.reference, t.customer, t.reply_to, self._controls.get(t.handoff_id, {}))
            for t in self._board.talks
        }

    # --- starting and following the two chats --------------------------------------------------------------

    async def start(self, timeout: float = START_SECONDS) -> None:
        """Open the private chat with the bot (/start makes a group member an agent), then catch up on both chats."""
        after = (await self.emulator.sent(self.agent_id)).last
        await self.emulator.send_text(self.agent_id, "/start")
        try:
            await self.emulator.wait_for_text(self.agent_id, after, timeout=timeout)
        except TimeoutError:
            raise DeskError(
                f"The bot did not answer /start within {timeout:g} s. Is `make run` still starting?"
            ) from None
        await self.refresh()
        if self._board.agent is None or self._board.agent.private_chat_id is None:
            raise DeskError(
                f"User {self.agent_id} is not a member of the agents' group, so the bot treats them as a customer."
            )
        if self.group_id is None:
            self.group_id = await self._find_group()
        history = await self.emulator.sent(None, 0)
        self._after = history.last
        await self._take(history.messages)

    async def _find_group(self) -> int:
        """The agents' group: the one the bot checked this agent's membership in, else the sandbox's own."""
        for call in reversed(await self.emulator.calls("getChatMember")):
            params = call.get("params") or {}
            if (
                str(params.get("user_id")) == str(self.agent_id)
                and str(params.get("chat_id", "")).lstrip("-").isdigit()
            ):
                return int(params["chat_id"])
        # A registered agent's /start is not checked again; the sandbox creates its agents' group first.
        from bot.emulator.control import SUPERGROUP_ID_BASE

        return -int(f"100{SUPERGROUP_ID_BASE + 1}")

    async def refresh(self, message_ids: Iterable[int] = ()) -> None:
        """Read where things stand from the desk's records, and what the given messages of the agent's chat are
        about (waiting a moment for the bot to record what it has just delivered there)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        ids = list(message_ids)
        seen = await self.sessions.read(board.board, self.agent_id, ids)
        while not seen.settled and loop.time() < deadline:
            await asyncio.sleep(0.05)
            seen = await self.sessions.read(board.board, self.agent_id, ids)
        held = {t.reference for t in self._board.talks}
        taken = [t.reference for t in seen.talks if t.reference not in held]
        if taken:
            self.chosen = taken[-1]  # a conversation just claimed (or passed to this agent) is the current one
        self.name = seen.agent.name if seen.agent and seen.agent.name else self.name
        self._board = seen

    async def pump(self, wait: float = POLL_SECONDS) -> list[Event]:
        """What the bot posted in the two chats since the last look (waiting up to `wait` for something new)."""
        batch = await self.emulator.sent(None, self._after, wait=wait)
        self._after = batch.last
        return await self._take(batch.messages)

    async def _take(self, entries: list[dict[str, Any]]) -> list[Event]:
        """Messages of the sent log: the desk's records read for them, then the events to show the agent."""
        # Edits are left out: the desk's buttons stay; edits only remove customers' keyboards.
        ours = [
            e
            for e in entries
            if e.get("chat_id") in (self.group_id, self.agent_id) and not e.get("method", "").startswith("edit")
        ]
        await self.refresh(e["message_id"] for e in ours if e["chat_id"] == self.agent_id)
        return [event for entry in ours if (event := self._observe(entry)) is not None]

    def _observe(self, entry: dict[str, Any]) -> Event | None:
        text = entry.get("text") or entry.get("caption") or ""
        return self._in_group(entry, text) if entry["chat_id"] == self.group_id else self._in_private(entry, text)

    def _in_group(self, entry: dict[str, Any], text: str) -> Event:
        thread = entry.get("message_thread_id")
        ticket = next((t for t in self._board.tickets if thread and t.thread_id == thread), None)
        if ticket is None:
            return Event(None, f"(agents' group) {text}")
        self._claims[thread] = _buttons(entry).get(CLAIM, self._claims.get(thread))
        if thread in self._cards:
            return Event(ticket.reference, f"(topic) {text}")
        self._cards[thread] = text  # the desk opens a ticket's topic with its card
        return Event(
            ticket.reference,
            f"New ticket in topic “{ticket.topic}”; `claim {ticket.reference}` takes it.\n"
            + textwrap.indent(text, "    | "),
        )

    def _in_private(self, entry: dict[str, Any], text: str) -> Event | None:
        post = self._board.posts.get(entry["message_id"])
        buttons = _buttons(entry)
        if post is None:  # not about a customer: the help, the queue, a note saved
            return Event(None, self._offer(text, buttons))
        if post.continued:
            return None  # a later part of a long message, shown whole with the first
        if post.said is not None:
            return Event(post.reference, f"{post.customer}: {post.said}")
        if CONTROLS in buttons and post.handoff_id is not None:  # a conversation opens here, with Close, Return…
            self._controls[post.handoff_id] = buttons
            if post.reference is not None and post.reference == self.chosen:
                text += f"\n(your messages now go to {post.customer}; `help` lists the commands)"
            return Event(post.reference, text)
        return Event(post.reference, self._offer(text, buttons))

    def _offer(self, text: str, buttons: dict[str, tuple[int, str]]) -> str:
        """A message with buttons other than a conversation's: they are the ones `press <n>` presses."""
        if not buttons:
            return text
        self.choices = [(title, message_id, data) for title, (message_id, data) in buttons.items()]
        return (
            text
            + "\n"
            + "  ".join(f"[{n}] {title}" for n, (title, _, _) in enumerate(self.choices, 1))
            + "  (`press <n>`)"
        )

    # --- whom the agent talks with ----------------------------------------------------------------------------

    @property
    def current(self) -> Talk | None:
        """The customer a message goes to: the one chosen (or claimed last), or the only one."""
        if self.chosen in self.talks:
            return self.talks[self.chosen]
        return next(iter(self.talks.values())) if len(self.talks) == 1 else None

    def prompt(self) -> str:
        """The input prompt, naming whom a message goes to."""
        talk = self.current
        return f"{self.name} → {talk.customer} ({talk.reference})> " if talk else f"{self.name}> "

    def ticket_lines(self, everything: bool = False) -> list[str]:
        """The tickets in the agents' group, with where they stand."""
        shown = [t for t in self.tickets.values() if everything or not t.ended]
        lines = []
        for ticket in shown:
            mine = " · yours" + (" (current)" if self.current and self.current.reference == ticket.reference else "")
            lines.append(
                f"{ticket.reference} · topic “{ticket.topic or ticket.reference}” · {ticket.status}"
                + (mine if ticket.reference in self.talks else "")
            )
        hidden = len(self.tickets) - len(shown)
        if hidden:
            lines.append(f"({hidden} closed: `tickets all` lists them too)")
        return lines or ["No tickets yet. A customer asking for a person (`make chat`) opens one."]
