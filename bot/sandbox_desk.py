"""`frontline desk`: act as the sandbox's agent from a terminal: see tickets, claim one, talk, close.

Everything goes through the emulator's control API, as the agent's Telegram app would: the desk reads what the bot
posts in the agents' group and in the agent's private chat, and writes messages or presses buttons as the agent.
It keeps nothing of its own beyond what those two chats show, so it can be restarted at any time.
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.config import Settings
from bot.desk import texts
from bot.emulator.client import EmulatorClient, EmulatorClientError

POLL_SECONDS = 25.0
START_SECONDS = 15.0
ANSWER_SECONDS = 10.0
REFERENCE = re.compile(r"\bT\d{6,}\b")
MEDIA = ("photo", "document", "voice", "video", "audio", "animation", "sticker", "location", "contact")

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


def _template(text: str) -> re.Pattern[str]:
    """One of the desk's message templates as a pattern whose groups are its fields."""
    pattern = re.sub(r"\\\{(\w+)\\\}", lambda field: f"(?P<{field.group(1)}>.*?)", re.escape(text))
    return re.compile(pattern + r"\Z", re.DOTALL)


RELAY = _template(texts.RELAY_HEADER)
INTRO = _template(texts.CLAIMED_INTRO)
CLOSED = _template(texts.CLOSED_AGENT)
RETURNED = _template(texts.RETURNED_AGENT)
TRANSFERRED = _template(texts.TRANSFERRED_AGENT)
CLAIMED_NOTICE = _template(texts.CLAIMED_NOTICE)
CLOSED_NOTICE = _template(texts.CLOSED_NOTICE.replace("{note}", ""))  # "{agent}" then takes ": note" too
RETURNED_NOTICE = _template(texts.RETURNED_NOTICE)
CANCELLED_NOTICE = _template(texts.CANCELLED_NOTICE)
HANDOFF_NOTICE = _template(texts.HANDOFF_NOTICE)
TRANSFERRED_NOTICE = _template(texts.TRANSFERRED_NOTICE)
REQUEUED_NOTICE = _template(texts.REQUEUED_NOTICE)
RELEASED_NOTICE = _template(texts.RELEASED_NOTICE)
REOPENED_NOTICE = _template(texts.REOPENED_NOTICE)
CSAT_NOTICE = _template(texts.CSAT_NOTICE)


class DeskError(Exception):
    """The desk cannot start: the bot did not answer, or the user is not an agent."""


@dataclass
class Ticket:
    """A ticket as the agents' group shows it."""

    reference: str
    topic: str = ""  # the forum topic's name
    thread_id: int | None = None
    status: str = "open"
    ended: bool = False
    claim: tuple[int, str] | None = None  # the newest Claim button: message id, callback data
    card: str = ""


@dataclass
class Talk:
    """A conversation the agent holds, as their private chat shows it."""

    reference: str
    customer: str
    reply_to: int  # the newest message about it in the agent's chat: replying to it picks this customer
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


def _buttons(entry: dict[str, Any]) -> dict[str, tuple[int, str]]:
    rows = (entry.get("reply_markup") or {}).get("inline_keyboard") or []
    return {b["text"]: (entry["message_id"], b["callback_data"]) for row in rows for b in row if b.get("callback_data")}


def _media(entry: dict[str, Any]) -> str | None:
    message = entry.get("message") or {}
    return next((kind for kind in MEDIA if kind in message), None)


class AgentDesk:
    """The agent's view of the desk and what they can do there, through the emulator."""

    def __init__(self, emulator: EmulatorClient, agent_id: int, group_id: int | None = None) -> None:
        self.emulator = emulator
        self.agent_id = agent_id
        self.group_id = group_id
        self.name = "Agent"
        self.tickets: dict[str, Ticket] = {}
        self.talks: dict[str, Talk] = {}
        self.chosen: str | None = None
        self.choices: list[tuple[str, int, str]] = []  # the buttons of the bot's last other message here
        self._topics: dict[int, str] = {}
        self._after = 0

    # --- starting and following the two chats --------------------------------------------------------------

    async def start(self, timeout: float = START_SECONDS) -> None:
        """Open the private chat with the bot (/start makes a group member an agent), then catch up on both chats."""
        after = (await self.emulator.sent(self.agent_id)).last
        await self.emulator.send_text(self.agent_id, "/start")
        try:
            answered = await self.emulator.wait_for_text(self.agent_id, after, timeout=timeout)
        except TimeoutError:
            raise DeskError(f"The bot did not answer /start within {timeout:g} s. Is `make run` still starting?") from None
        welcome = answered[-1]
        if texts.AGENT_WELCOME not in (welcome.get("text") or ""):
            raise DeskError(f"User {self.agent_id} is not a member of the agents' group, so the bot treats them as a customer.")
        self.name = (welcome.get("message") or {}).get("chat", {}).get("first_name") or self.name
        if self.group_id is None:
            self.group_id = await self._find_group()
        history = await self.emulator.sent(None, 0)
        for entry in history.messages:
            self.observe(entry)
        self._after = history.last

    async def _find_group(self) -> int:
        """The agents' group: the one the bot checked this agent's membership in, else the sandbox's own."""
        for call in reversed(await self.emulator.calls("getChatMember")):
            params = call.get("params") or {}
            if str(params.get("user_id")) == str(self.agent_id) and str(params.get("chat_id", "")).lstrip("-").isdigit():
                return int(params["chat_id"])
        # A registered agent's /start is not checked again; the sandbox creates its agents' group first.
        from bot.emulator.control import SUPERGROUP_ID_BASE

        return -int(f"100{SUPERGROUP_ID_BASE + 1}")

    async def pump(self, wait: float = POLL_SECONDS) -> list[Event]:
        """What the bot posted in the two chats since the last look (waiting up to `wait` for something new)."""
        batch = await self.emulator.sent(None, self._after, wait=wait)
        self._after = batch.last
        return [event for entry in batch.messages if (event := self.observe(entry)) is not None]

    def observe(self, entry: dict[str, Any]) -> Event | None:
        """Take one message of the sent log into account; the event to show, if it is for this agent."""
        if entry.get("method", "").startswith("edit"):
            return None  # the desk's buttons stay; edits only remove customers' keyboards
        text = entry.get("text") or entry.get("caption") or ""
        if entry.get("chat_id") == self.group_id:
            return self._in_group(entry, text)
        if entry.get("chat_id") == self.agent_id:
            return self._in_private(entry, text)
        return None

    def _in_group(self, entry: dict[str, Any], text: str) -> Event:
        thread = entry.get("message_thread_id")
        created = ((entry.get("message") or {}).get("reply_to_message") or {}).get("forum_topic_created") or {}
        ref = self._topics.get(thread) if thread else None
        if ref is None:
            found = REFERENCE.search(created.get("name") or text)
            if found is None:
                return Event(None, f"(agents' group) {text}")
            ref = found.group()
            if thread:
                self._topics[thread] = ref
        ticket = self.tickets.setdefault(ref, Ticket(ref))
        ticket.topic = created.get("name") or ticket.topic
        ticket.thread_id = thread or ticket.thread_id
        ticket.claim = _buttons(entry).get("Claim", ticket.claim)
        if text.startswith("🎫"):
            return self._card(ticket, text)
        if match := CLAIMED_NOTICE.match(text):
            ticket.status = f"claimed by {match['agent']}"
        elif match := CLOSED_NOTICE.match(text):
            ticket.status, ticket.ended = f"closed by {match['agent']}", True
            self._end(ref)
        elif match := RETURNED_NOTICE.match(text):
            ticket.status = "back with the bot"
            self._end(ref)
        elif CANCELLED_NOTICE.match(text):
            ticket.status = "left the queue, back with the bot"
        elif match := HANDOFF_NOTICE.match(text):
            ticket.status, ticket.ended = f"waiting: {match['reason']}", False
        elif match := CSAT_NOTICE.match(text):
            ticket.status = f"{ticket.status}, rated {match['score']}/5"
        elif match := TRANSFERRED_NOTICE.match(text):
            ticket.status = f"claimed by {match['new']}"
        elif match := RELEASED_NOTICE.match(text):
            ticket.status = f"waiting: back in the queue, released from {match['agent']}"
            if match["agent"] == self.name:
                self._end(ref)
        elif REQUEUED_NOTICE.match(text):
            ticket.status = "waiting: back in the queue"
        elif REOPENED_NOTICE.match(text):
            ticket.status, ticket.ended = "reopened", False
        return Event(ref, f"(topic) {text}")

    def _card(self, ticket: Ticket, text: str) -> Event:
        lines = text.splitlines()
        ticket.card, ticket.ended = text, False
        ticket.topic = ticket.topic or lines[0].removeprefix("🎫 ")
        reason = next((line.removeprefix("Needs a person: ") for line in lines if line.startswith("Needs a person: ")), None)
        ticket.status = f"waiting: {reason}" if reason else "complaint, no person asked for yet"
        return Event(ticket.reference, f"New ticket in topic “{ticket.topic}”; `claim {ticket.reference}` takes it.\n"
                                       + textwrap.indent(text, "    | "))

    def _in_private(self, entry: dict[str, Any], text: str) -> Event:
        header, _, body = text.partition("\n")
        if match := RELAY.match(header):
            ref, name = match["ticket"], match["name"]
            talk = self.talks.setdefault(ref, Talk(ref, name, entry["message_id"]))
            talk.reply_to = entry["message_id"]
            self._held(ref)
            kind = _media(entry)
            return Event(ref, f"{name}: " + (f"[{kind}] {body}".strip() if kind else body))
        if match := INTRO.match(text):
            ref = match["ticket"]
            self.talks[ref] = Talk(ref, match["name"], entry["message_id"], _buttons(entry))
            self.chosen = ref
            self._held(ref)
            return Event(ref, f"{text}\n(your messages now go to {match['name']}; `help` lists the commands)")
        for ended in (CLOSED, RETURNED, TRANSFERRED):
            if match := ended.match(text):
                self._end(match["ticket"])
                return Event(match["ticket"], text)
        found = REFERENCE.search(text)
        buttons = _buttons(entry)
        if buttons:
            self.choices = [(title, message_id, data) for title, (message_id, data) in buttons.items()]
            text += "\n" + "  ".join(f"[{n}] {title}" for n, (title, _, _) in enumerate(self.choices, 1)) + "  (`press <n>`)"
        return Event(found.group() if found else None, text)

    def _held(self, ref: str) -> None:
        """The bot talks to this agent about the ticket, so it is theirs (again, after a reopening)."""
        ticket = self.tickets.setdefault(ref, Ticket(ref))
        ticket.status, ticket.ended = f"claimed by {self.name}", False

    def _end(self, ref: str) -> None:
        self.talks.pop(ref, None)

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
        for event in events:
            screen.show(str(event))


async def _session(base_url: str, agent_id: int, group_id: int | None) -> None:
    async with EmulatorClient(base_url) as emulator:
        try:
            await emulator.health()
        except aiohttp.ClientError:
            sys.exit(f"The sandbox is not running at {base_url}. Start it with `make run` in another terminal.")
        desk = AgentDesk(emulator, agent_id, group_id)
        try:
            await desk.start()
        except DeskError as exc:
            sys.exit(str(exc))
        except EmulatorClientError as exc:
            sys.exit(f"The sandbox refused to act as user {agent_id}: {exc.description}")
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
                except (aiohttp.ClientError, EmulatorClientError) as exc:
                    said = f"That did not reach the sandbox: {exc}"
                if said:
                    print(said)
                    screen.prompted = False
        finally:
            printer.cancel()


def desk(settings: Settings, *, agent_id: int | None = None) -> None:
    """Act as the sandbox's agent (Sam unless `agent_id` is given) in this terminal."""
    if agent_id is None:
        from bot.app import SANDBOX_AGENT_ID

        agent_id = SANDBOX_AGENT_ID
    try:
        asyncio.run(_session(f"http://{settings.emulator_host}:{settings.emulator_port}", agent_id, settings.agent_chat_id))
    except KeyboardInterrupt:
        print()
