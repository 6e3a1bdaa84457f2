"""Faults under load, on loopback only and bounded in time: PostgreSQL restarted, Rasa stopped for half a minute.

Several customers converse while the fault strikes; afterwards every message they sent has its answer, recorded
and delivered, and nothing waits in the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from bot import replies as replies_module
from bot.emulator.client import EmulatorClient
from bot.storage import tickets, transcript
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import DeliveryStatus, Direction, InboxStatus, InboxUpdate
from devstack.stack import Stack, running_stack
from tests.e2e.helpers import last_text, press, replies_after, variations
from tests.e2e.pgserver import PostgresServer

QUESTIONS = [
    ("how long does delivery take", "utter_faq/delivery_time"),
    ("what are your opening hours", "utter_faq/opening_hours"),
    ("how do i return something", "utter_faq/returns_policy"),
    ("can i pay with paypal", "utter_faq/payment_methods"),
]
TICKET = re.compile(r"T\d{6}")
ANSWER_TIMEOUT = 90  # one answer, however slow the machine (a bound, not a measure)


@pytest.fixture(scope="module")
def pg_stack(throwaway_postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack on the throwaway PostgreSQL: the app, the action server and Rasa's tracker store."""
    with running_stack(tmp_path_factory.mktemp("pg-stack"), database=throwaway_postgres.url()) as stack:
        yield stack


class Customer:
    """One customer's side of the conversation: what they sent, and the bot's new messages after each."""

    def __init__(
        self, emulator: EmulatorClient, user_id: int, recovered: asyncio.Event, answered_after: asyncio.Event
    ) -> None:
        self.emulator = emulator
        self.id = user_id
        self.recovered = recovered  # set once the fault is over
        self.answered_after = answered_after  # set once any customer had an answer to what they sent after it
        self.answers: list[tuple[str, list[str], bool]] = []  # what they said, the replies, sent after the fault?

    async def ask(self, question: str, until: str | None = None) -> list[dict]:
        after = (await self.emulator.sent(self.id)).last
        recovered = self.recovered.is_set()
        await self.emulator.send_text(self.id, question)
        replies = await replies_after(self.emulator, self.id, after, until=until, timeout=ANSWER_TIMEOUT)
        return self.note(question, replies, recovered)

    async def press(self, messages: list[dict], title: str, until: str, timeout: float = ANSWER_TIMEOUT) -> list[dict]:
        message = next(m for m in reversed(messages) if (m.get("reply_markup") or {}).get("inline_keyboard"))
        recovered = self.recovered.is_set()
        return self.note(
            title, await press(self.emulator, self.id, message, title, until=until, timeout=timeout), recovered
        )

    def note(self, said: str, messages: list[dict], recovered: bool) -> list[dict]:
        self.answers.append((said, [m.get("text") or "" for m in messages], recovered))
        if recovered:
            self.answered_after.set()
        return messages


async def _faq_customer(customer: Customer, rounds: int, halfway: asyncio.Event) -> None:
    try:
        for number in range(rounds):
            if number == 2:
                halfway.set()
            question, _ = QUESTIONS[number % len(QUESTIONS)]
            replies = await customer.ask(question)
            if replies[-1].get("text") == replies_module.TROUBLE:
                await customer.ask(question)  # "please try again", as the bot asked
    finally:
        halfway.set()  # (failed early: the fault need not wait for this customer)


async def _complaint_to_summary(customer: Customer) -> list[dict]:
    """A complaint up to the read-back and its buttons."""
    await customer.ask("hello")
    await customer.ask("my order A12345 arrived broken and I want a refund")
    after = (await customer.emulator.sent(customer.id)).last
    await customer.emulator.send_media(customer.id, "photo", content=b"\x89PNG the cracked lid")
    contact = customer.note(
        "(photo)",
        await replies_after(customer.emulator, customer.id, after, until="email", timeout=ANSWER_TIMEOUT),
        False,
    )
    return await customer.press(contact, "No need, this chat is fine", until="A12345")


async def _complaint_customer(customer: Customer, halfway: asyncio.Event) -> None:
    try:
        summary = await _complaint_to_summary(customer)
    finally:
        halfway.set()
    await customer.press(summary, "Yes, that's right", until="T0")


async def _writes_while_down(customer: Customer, down: asyncio.Event) -> None:
    """A message that arrives while the database is down: it cannot be stored yet, so it is fetched again later."""
    await down.wait()
    await customer.ask(QUESTIONS[0][0])


async def test_postgresql_restarted_under_load_loses_no_message_and_no_ticket(
    pg_stack: Stack, throwaway_postgres: PostgresServer
) -> None:
    users = [771_001, 771_002, 771_003, 771_004]
    complainer, latecomer = 771_010, 771_020
    rounds = 8
    async with EmulatorClient(pg_stack.emulator_url) as emulator:
        for user in [*users, complainer, latecomer]:
            await emulator.add_user("Robin", user_id=user, last_name="Vale", language_code="en")
        down, restarted, answered_after = asyncio.Event(), asyncio.Event(), asyncio.Event()
        customers = {
            user: Customer(emulator, user, restarted, answered_after) for user in [*users, complainer, latecomer]
        }
        halfway = {user: asyncio.Event() for user in [*users, complainer]}

        async def restart_postgres() -> None:
            await asyncio.gather(*(event.wait() for event in halfway.values()))
            await asyncio.to_thread(throwaway_postgres.stop, "fast")  # every client's connection is cut
            down.set()
            await asyncio.sleep(4)  # customers go on writing to a bot without its database
            await asyncio.to_thread(throwaway_postgres.start)
            restarted.set()

        talks = [_faq_customer(customers[user], rounds, halfway[user]) for user in users]
        talks += [
            _complaint_customer(customers[complainer], halfway[complainer]),
            _writes_while_down(customers[latecomer], down),
        ]
        results = await asyncio.wait_for(asyncio.gather(restart_postgres(), *talks, return_exceptions=True), 420)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{failures!r}\n{_answers(customers)}\n{_logs(pg_stack)}"
        assert restarted.is_set()

    for user in users:
        # Every question answered by the bot. Only a message that was with Rasa as the database went away may get
        # "trouble, please try again" (Rasa could not read the conversation): then asked again, it is answered.
        answered = [
            (said, replies) for said, replies, _ in customers[user].answers if replies[-1] != replies_module.TROUBLE
        ]
        assert [said for said, _ in answered] == [QUESTIONS[n % len(QUESTIONS)][0] for n in range(rounds)], _answers(
            customers
        )
        for number, (question, replies) in enumerate(answered):
            expected = variations(QUESTIONS[number % len(QUESTIONS)][1])
            assert replies[-1] in expected, (
                f"{user} asked {question!r}, the bot answered {replies}\n{_answers(customers)}"
            )
        late = [
            said
            for said, replies, recovered in customers[user].answers
            if recovered and replies[-1] == replies_module.TROUBLE
        ]
        assert not late, f"{user}: trouble after the database was back: {late}"
    [(_, latecomer_replies, sent_after)] = customers[latecomer].answers
    assert latecomer_replies[-1] in variations(QUESTIONS[0][1]) and not sent_after
    done = customers[complainer].answers[-1][1]
    reference = TICKET.search(" ".join(done))[0]

    engine = create_engine(pg_stack.database_url)
    sessions = create_sessionmaker(engine)
    try:
        for _ in range(80):  # an update is marked handled just after its reply went out
            async with sessions() as session:
                pending = await session.scalar(
                    select(func.count()).select_from(InboxUpdate).where(InboxUpdate.status == InboxStatus.PENDING)
                )
                unsent = len(await session.run_sync(transcript.outbox))
            if not pending and not unsent:
                break
            await asyncio.sleep(0.25)
        assert (pending, unsent) == (0, 0), "nothing is left waiting in the inbox or the outbox"
        async with sessions() as session:
            for user, customer in customers.items():
                stored = await session.run_sync(transcript.messages, user)
                incoming = [m for m in stored if m.direction is Direction.IN]
                assert len(incoming) == len(customer.answers), f"every message of {user} is in the transcript once"
                for message in incoming:
                    answers = await session.run_sync(transcript.replies_to, message.update_id)
                    assert any(a.status is DeliveryStatus.SENT for a in answers), f"{user}: {message.text!r} answered"
            conversation = await session.run_sync(transcript.find_conversation, complainer)
            [ticket] = await session.run_sync(tickets.for_customer, conversation.customer_id)
        assert (ticket.reference, ticket.order_number, ticket.photos and len(ticket.photos)) == (reference, "A12345", 1)
    finally:
        await engine.dispose()


async def test_a_complaint_confirmed_after_a_postgresql_restart_becomes_a_ticket(
    pg_stack: Stack, throwaway_postgres: PostgresServer
) -> None:
    async with EmulatorClient(pg_stack.emulator_url) as emulator:
        await emulator.add_user("Robin", user_id=772_001, last_name="Vale", language_code="en")
        customer = Customer(emulator, 772_001, asyncio.Event(), asyncio.Event())
        summary = await _complaint_to_summary(customer)
        throwaway_postgres.stop("fast")
        throwaway_postgres.start()
        done = await customer.press(summary, "Yes, that's right", until="T0", timeout=30)
    assert TICKET.search(" ".join(m["text"] for m in done))


def _logs(stack: Stack) -> str:
    return "\n".join(f"--- {name} ---\n{stack.log(name)}" for name in ("app", "rasa", "actions"))


def _answers(customers: dict[int, Customer]) -> str:
    return "\n".join(f"{user}: {customer.answers}" for user, customer in customers.items())


RASA_DOWN_SECONDS = 30
BOT_DOWN_TOLD = replies_module.HANDOFF_BOT_DOWN + replies_module.HANDOFF_QUEUED.split("{position}")[0]


async def _keeps_writing(
    emulator: EmulatorClient, user: int, started: asyncio.Event, down: asyncio.Event, back: asyncio.Event
) -> dict:
    """A customer asks question after question before, during and after Rasa's absence: what they were told."""
    seen: dict = {"before": [], "told": None, "queued": [], "after": []}

    async def ask(text: str, until: str | None = None) -> str:
        after = (await emulator.sent(user)).last
        await emulator.send_text(user, text)
        return last_text(await replies_after(emulator, user, after, until=until, timeout=ANSWER_TIMEOUT))

    number = 0
    while not down.is_set():  # the bot answers, until Rasa goes (a question with Rasa as it dies is handed over)
        question, response = QUESTIONS[number % len(QUESTIONS)]
        number += 1
        answer = await ask(question)
        started.set()
        if answer.startswith(BOT_DOWN_TOLD):
            seen["told"] = answer
            break
        seen["before"].append((answer, response))
    if seen["told"] is None:
        seen["told"] = await ask(QUESTIONS[number % len(QUESTIONS)][0], until=replies_module.HANDOFF_BOT_DOWN)
    # While they wait for a person, what they write goes to the agents and the bot stays quiet.
    number = 0
    while not back.is_set():
        number += 1
        seen["queued"].append((await emulator.send_text(user, f"still there? note {number} from {user}"))["update_id"])
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(back.wait(), 8)
    seen["cancelled"] = await ask("/cancel", until="left the queue")
    for question, response in QUESTIONS:
        seen["after"].append((await ask(question), response))
    return seen


async def test_rasa_stopped_under_load_customers_are_told_handed_over_and_served_again_without_an_app_restart(
    stack: Stack, emulator: EmulatorClient, db
) -> None:
    names = {773_001: "Ines", 773_002: "Jonah", 773_003: "Kerstin"}
    for user, name in names.items():
        await emulator.add_user(name, user_id=user, last_name="Okafor", language_code="en")
    app = stack.processes["app"]
    group_start = (await emulator.sent(stack.agent_chat_id)).last
    started = {user: asyncio.Event() for user in names}
    down, back = asyncio.Event(), asyncio.Event()
    writing = [asyncio.create_task(_keeps_writing(emulator, user, started[user], down, back)) for user in names]
    try:
        # Rasa dies while everyone is in a conversation with the bot.
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started.values())), 2 * ANSWER_TIMEOUT)
        stack.kill("rasa")
        down.set()
        await asyncio.sleep(RASA_DOWN_SECONDS)  # they go on writing meanwhile
    finally:
        await asyncio.to_thread(stack.start_rasa)  # (whatever happened: the next tests need Rasa)
        back.set()
    try:
        seen = dict(zip(names, await asyncio.wait_for(asyncio.gather(*writing), 8 * ANSWER_TIMEOUT)))
    finally:
        for task in writing:
            task.cancel()

    assert stack.processes["app"] is app and app.poll() is None, "the app was not restarted"
    for user, story in seen.items():
        for text, response in story["before"] + story["after"]:
            assert text in variations(response), f"{names[user]} is answered by the bot, before and after: {story}"
        assert story["told"].startswith(BOT_DOWN_TOLD), f"{names[user]} was told the bot is down: {story}"
        assert story["queued"], "they kept writing while Rasa was down"
        assert story["cancelled"].startswith("Okay, you've left the queue"), story
        assert len(story["after"]) == len(QUESTIONS)
    # Each customer's card is in the agents' group (filtered by name: other tests' cards may come and go there).
    for name in names.values():
        await emulator.wait_for_text(
            stack.agent_chat_id,
            group_start,
            timeout=ANSWER_TIMEOUT,
            predicate=lambda t, name=name: "the bot was unavailable" in t and f"{name}: " in t,
        )
    # Nothing they wrote while waiting was lost: each message is stored and relayed to the agents (sent, or queued
    # behind the agents' group limit of 20 messages a minute).
    async with db() as session:
        for user, story in seen.items():
            for update_id in story["queued"]:
                relays = [m for m in await session.run_sync(transcript.replies_to, update_id) if m.kind == "relay"]
                assert relays and relays[0].chat_id != user, f"{names[user]}'s message {update_id} reached the agents"
