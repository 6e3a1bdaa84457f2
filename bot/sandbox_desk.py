"""`frontline desk`: act as the sandbox's agent from a terminal: see tickets, claim one, talk, close.

The desk acts through the emulator's control API, as the agent's Telegram app would: it writes messages and presses
buttons as the agent, and reads the agents' group and the agent's private chat for what to show (what customers
write, the notices) and for the buttons to press. Where things stand (the tickets, their requests for a person, whom
the agent is helping) it reads from the database the sandbox runs on (bot/desk/board.py), never from the bot's
wording. It keeps nothing of its own beyond those, so it can be restarted at any time.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.desk import board
from bot.desk.cards import REASONS
from bot.emulator.client import EmulatorClient, EmulatorClientError
from bot.storage.db import Sessions, create_engine, create_sessionmaker
from bot.storage.models import HandoffStatus

POLL_SECONDS = 25.0
START_SECONDS = 15.0
ANSWER_SECONDS = 10.0
SETTLE_SECONDS = 2.0  # how long a look waits for the bot to record what it has just delivered to the agent
CLAIM = "Claim"  # the button that takes a ticket, in its topic
CONTROLS = "Return to bot"  # a button only the message that opens a conversation in the agent's chat carries

HELP = """Commands:
  tickets [all]        the tickets in the agents' group (all: closed ones too)
  claim T000001        take a ticket; the customer's messages then arrive here
  to T000001           whom your messages go to, when you are helping several customers
  <any other text>     a message to that customer
  close [note]         close the conversation (the customer is asked for a rating)
  return               hand the customer back to the bot
  note <text>          an internal note on the ticket, never shown to the customer
  transfer             pass the customer to another agent or back to the queue (then `press <n>`)
  press <n>            press button n of the bot's last message with buttons here
  queue                who is waiting for a person
  /<command>           any of the bot's agent commands (/promise, /promises, /kept…), for the current customer
  help, quit"""


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


def reference(text: str) -> str:
    """A ticket number as typed ("T000001", "t1", "1") in the bot's spelling."""
    number = text.strip().upper().removeprefix("T")
    return f"T{int(number):06d}" if number.isdigit() else text.strip().upper()


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


class AgentDesk:
    """The agent's view of the desk and what they can do there, through the emulator."""

    def __init__(self, emulator: EmulatorClient, sessions: Sessions, agent_id: int, group_id: int | None = None) -> None:
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
        return {t.reference: Ticket(t.reference, t.topic, t.thread_id, status(t), t.ended, self._claims.get(t.thread_id),
                                    self._cards.get(t.thread_id, "")) for t in self._board.tickets}

    @property
    def talks(self) -> dict[str, Talk]:
        """The conversations the agent holds, oldest claim first."""
        return {t.reference: Talk(t.reference, t.customer, t.reply_to, self._controls.get(t.handoff_id, {}))
                for t in self._board.talks}

    # --- starting and following the two chats --------------------------------------------------------------

    async def start(self, timeout: float = START_SECONDS) -> None:
        """Open the private chat with the bot (/start makes a group member an agent), then catch up on both chats."""
        after = (await self.emulator.sent(self.agent_id)).last
        await self.emulator.send_text(self.agent_id, "/start")
        try:
            await self.emulator.wait_for_text(self.agent_id, after, timeout=timeout)
        except TimeoutError:
            raise DeskError(f"The bot did not answer /start within {timeout:g} s. Is `make run` still starting?") from None
        await self.refresh()
        if self._board.agent is None or self._board.agent.private_chat_id is None:
            raise DeskError(f"User {self.agent_id} is not a member of the agents' group, so the bot treats them as a customer.")
        if self.group_id is None:
            self.group_id = await self._find_group()
        history = await self.emulator.sent(None, 0)
        self._after = history.last
        await self._take(history.messages)

    async def _find_group(self) -> int:
        """The agents' group: the one the bot checked this agent's membership in, else the sandbox's own."""
        for call in reversed(await self.emulator.calls("getChatMember")):
            params = call.get("params") or {}
            if str(params.get("user_id")) == str(self.agent_id) and str(params.get("chat_id", "")).lstrip("-").isdigit():
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
        ours = [e for e in entries if e.get("chat_id") in (self.group_id, self.agent_id)
                and not e.get("method", "").startswith("edit")]
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
        return Event(ticket.reference, f"New ticket in topic “{ticket.topic}”; `claim {ticket.reference}` takes it.\n"
                                       + textwrap.indent(text, "    | "))

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
        return text + "\n" + "  ".join(f"[{n}] {title}" for n, (title, _, _) in enumerate(self.choices, 1)) + "  (`press <n>`)"

    # --- what the agent does ---------------------------------------------------------------------------------

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
        """The tickets seen in the agents' group, with where they stand."""
        shown = [t for t in self.tickets.values() if everything or not t.ended]
        lines = []
        for ticket in shown:
            mine = " · yours" + (" (current)" if self.current and self.current.reference == ticket.reference else "")
            lines.append(f"{ticket.reference} · topic “{ticket.topic or ticket.reference}” · {ticket.status}"
                         + (mine if ticket.reference in self.talks else ""))
        hidden = len(self.tickets) - len(shown)
        if hidden:
            lines.append(f"({hidden} closed: `tickets all` lists them too)")
        return lines or ["No tickets yet. A customer asking for a person (`make chat`) opens one."]

    async def claim(self, ticket_ref: str) -> str | None:
        """Press the ticket's Claim button; the bot's refusal, if any (the conversation then arrives privately)."""
        ref = reference(ticket_ref)
        ticket = self.tickets.get(ref)
        if ticket is None or ticket.claim is None:
            return f"No ticket {ref} with a Claim button in the agents' group. `tickets` lists them."
        message_id, data = ticket.claim
        return await self._press(message_id, data, self.group_id)

    def choose(self, ticket_ref: str) -> str:
        """Whom the next messages go to."""
        ref = reference(ticket_ref)
        if ref not in self.talks:
            return f"You're not talking with the customer of {ref}. {self._yours()}"
        self.chosen = ref
        return f"Your messages now go to {self.talks[ref].customer} ({ref})."

    async def say(self, text: str) -> str | None:
        """A message to the current customer, as a reply to their newest message here so the bot knows whom."""
        return await self._to_current(text)

    async def close(self, note: str = "") -> str | None:
        """/close with an optional note, for the current customer."""
        return await self._to_current(f"/close {note}".strip())

    async def note(self, text: str) -> str | None:
        """An internal note on the current customer's ticket."""
        if not text.strip():
            return "Usage: note <text>"
        return await self._to_current(f"/note {text.strip()}")

    async def hand_back(self) -> str | None:
        """Press the current conversation's "Return to bot" button."""
        talk, problem = self._target()
        if talk is None:
            return problem
        if "Return to bot" not in talk.buttons:
            return await self._to_current("/return")
        message_id, data = talk.buttons["Return to bot"]
        return await self._press(message_id, data, self.agent_id)

    async def press(self, number: str) -> str | None:
        """Press one of the buttons of the bot's last message with buttons here (other than a conversation's)."""
        if not number.strip().isdigit() or not 0 < int(number) <= len(self.choices):
            return f"Usage: press <n>, n from 1 to {len(self.choices)}." if self.choices else "No buttons to press."
        _, message_id, data = self.choices[int(number) - 1]
        return await self._press(message_id, data, self.agent_id)

    async def queue(self) -> None:
        """Ask the bot who is waiting; the answer arrives in the private chat."""
        await self.emulator.send_text(self.agent_id, "/queue")

    async def handle(self, line: str) -> str | None:
        """One line typed by the agent; what to show them right away, if anything."""
        line = line.strip()
        command, _, rest = line.partition(" ")
        command = command.lower()
        if not line:
            return None
        if command in ("help", "?"):
            return HELP
        await self.refresh()
        if command == "tickets":
            return "\n".join(self.ticket_lines(everything=rest.strip().lower() == "all"))
        if command == "claim" and rest.strip():
            return await self.claim(rest)
        if command == "to" and rest.strip():
            return self.choose(rest)
        if command == "close":
            return await self.close(rest)
        if line.lower() == "return":
            return await self.hand_back()
        if command == "note":
            return await self.note(rest)
        if line.lower() == "queue":
            await self.queue()
            return None
        if line.lower() == "transfer":
            return await self._to_current("/transfer")
        if command == "press":
            return await self.press(rest)
        return await self.say(line)

    def _target(self) -> tuple[Talk | None, str]:
        talk = self.current
        if talk is not None:
            return talk, ""
        if not self.talks:
            return None, "You're not talking with any customer. `tickets` lists the tickets; `claim T000001` takes one."
        return None, f"You're helping {len(self.talks)} customers. {self._yours()}"

    def _yours(self) -> str:
        if not self.talks:
            return "You're not talking with anyone."
        names = ", ".join(f"{t.reference} ({t.customer})" for t in self.talks.values())
        return f"Yours: {names}. Choose with `to <ticket>`."

    async def _to_current(self, text: str) -> str | None:
        talk, problem = self._target()
        if talk is None:
            return problem
        await self.emulator.send_text(self.agent_id, text, reply_to_message_id=talk.reply_to)
        return None

    async def _press(self, message_id: int, data: str, chat_id: int | None) -> str | None:
        pressed = await self.emulator.press(self.agent_id, message_id, data, chat_id=chat_id)
        deadline = asyncio.get_running_loop().time() + ANSWER_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            record = await self.emulator.callback_answer(pressed["callback_query_id"])
            if record.get("answered"):
                return (record.get("answer") or {}).get("text") or None
            await asyncio.sleep(0.05)
        return "The bot has not answered the button yet."


# --- the terminal ------------------------------------------------------------------------------------------


@dataclass
class _Screen:
    """The terminal: prints events between prompts, and each prompt once."""

    desk: AgentDesk
    prompted: bool = False

    def show(self, text: str) -> None:
        print(f"\n{text}\n{self.desk.prompt()}", end="", flush=True)
        self.prompted = True

    def prompt(self) -> None:
        if not self.prompted:
            print(self.desk.prompt(), end="", flush=True)
        self.prompted = True


async def _print_events(screen: _Screen) -> None:
    while True:
        try:
            events = await screen.desk.pump()
        except aiohttp.ClientError:
            screen.show("(the sandbox does not answer; is `make run` still running?)")
            await asyncio.sleep(5)
            continue
        except SQLAlchemyError as exc:
            screen.show(f"(the sandbox's database cannot be read: {exc.__class__.__name__})")
            await asyncio.sleep(5)
            continue
        for event in events:
            screen.show(str(event))


async def _session(settings: Settings, sessions: Sessions, agent_id: int) -> None:
    base_url = f"http://{settings.emulator_host}:{settings.emulator_port}"
    async with EmulatorClient(base_url) as emulator:
        try:
            await emulator.health()
        except aiohttp.ClientError:
            sys.exit(f"The sandbox is not running at {base_url}. Start it with `make run` in another terminal.")
        desk = AgentDesk(emulator, sessions, agent_id, settings.agent_chat_id)
        try:
            await desk.start()
        except DeskError as exc:
            sys.exit(str(exc))
        except EmulatorClientError as exc:
            sys.exit(f"The sandbox refused to act as user {agent_id}: {exc.description}")
        except SQLAlchemyError as exc:
            sys.exit(f"The sandbox's database ({settings.database_url}) cannot be read: {exc}")
        print(f"You are {desk.name}, the sandbox's agent. New tickets and your customers' messages appear here.")
        print(HELP)
        print("\n".join(desk.ticket_lines()))
        screen = _Screen(desk)
        printer = asyncio.create_task(_print_events(screen))
        loop = asyncio.get_running_loop()
        try:
            while True:
                screen.prompt()
                line = await loop.run_in_executor(None, sys.stdin.readline)
                screen.prompted = False
                if not line or line.strip().lower() in ("quit", "exit"):
                    break
                try:
                    said = await desk.handle(line)
                except (aiohttp.ClientError, EmulatorClientError, SQLAlchemyError) as exc:
                    said = f"That did not reach the sandbox: {exc}"
                if said:
                    print(said)
                    screen.prompted = False
        finally:
            printer.cancel()


async def _run(settings: Settings, agent_id: int) -> None:
    """The terminal session, reading the desk's records from the database the sandbox runs on."""
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    try:
        await _session(settings, sessions, agent_id)
    finally:
        sessions.dispose()
        await engine.dispose()


def desk(settings: Settings, *, agent_id: int | None = None) -> None:
    """Act as the sandbox's agent (Sam unless `agent_id` is given) in this terminal."""
    if agent_id is None:
        from bot.app import SANDBOX_AGENT_ID

        agent_id = SANDBOX_AGENT_ID
    try:
        asyncio.run(_run(settings, agent_id))
    except KeyboardInterrupt:
        print()
