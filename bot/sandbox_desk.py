"""`frontline desk`: act as the sandbox's agent from a terminal: see tickets, claim one, talk, close.

The desk acts through the emulator's control API, as the agent's Telegram app would: it writes messages and presses
buttons as the agent. What it shows and knows is the agent's view (bot/sandbox_desk_view.py): where things stand,
from the desk's records; what customers write and the notices, from the agents' group and the agent's chat.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import aiohttp
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.emulator.client import EmulatorClient, EmulatorClientError
from bot.sandbox_desk_view import DeskError, DeskView, Event, Talk
from bot.storage.db import Sessions, create_engine, create_sessionmaker

__all__ = ["AgentDesk", "DeskError", "Event", "desk", "reference"]
ANSWER_SECONDS = 10.0

HELP = """Commands:
  tickets [all]        the tickets in the agents' group (all: closed ones too)
  claim T000001        take a ticket; the customer's messages then arrive here
  to T000001           whom your messages go to, when you are helping several customers
  <any other text>     a message to that customer
  close [note]         close the conversation (the customer is asked for a rating)
  return               hand the customer back to the bot
  note <text>          an internal note on the ticket, never shown to the customer
  r [name | words]     saved replies: `r` lists them, `r <name>` sends one, `r <words>` offers the best three
                       (then `press <n>`); to the current customer
  transfer             pass the customer to another agent or back to the queue (then `press <n>`)
  press <n>            press button n of the bot's last message with buttons here
  queue                who is waiting for a person, most urgent first
  next                 claim the top of the queue (highest priority, then longest waiting)
  online, away         whether new requests come to you (assigned, or offered with a Claim button: `press <n>`)
  pass                 hand the customer you were given to the next free agent, or back to the queue
  block <reason>       block the current customer for abuse: their tickets close, they are told once, and nothing
                       they send reaches the team or the bot any more
  unblock T000001      lift the block of that ticket's customer
  /<command>           any of the bot's agent commands (/promise, /promises, /kept…), for the current customer
  help, quit"""


def reference(text: str) -> str:
    """A ticket number as typed ("T000001", "t1", "1") in the bot's spelling."""
    number = text.strip().upper().removeprefix("T")
    return f"T{int(number):06d}" if number.isdigit() else text.strip().upper()


class AgentDesk(DeskView):
    """What the agent can do at the desk, through the emulator."""

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

    async def block(self, reason: str) -> str | None:
        """/block <reason>, for the current customer."""
        if not reason.strip():
            return "Usage: block <reason>"
        return await self._to_current(f"/block {reason.strip()}")

    async def unblock(self, ticket_ref: str) -> str | None:
        """/unblock T000001: the bot's answer arrives in the private chat."""
        if not ticket_ref.strip():
            return "Usage: unblock T000001"
        await self.emulator.send_text(self.agent_id, f"/unblock {reference(ticket_ref)}")
        return None

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
        if line.lower() in ("next", "online", "away"):
            await self.emulator.send_text(self.agent_id, f"/{line.lower()}")
            return None
        if line.lower() == "pass":
            return await self._to_current("/pass")
        if command == "r":
            return await self._to_current(f"/r {rest.strip()}".strip())
        if line.lower() == "transfer":
            return await self._to_current("/transfer")
        if command == "block":
            return await self.block(rest)
        if command == "unblock":
            return await self.unblock(rest)
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
