"""Reply-time alerts (bot/desk/alerts.py) as properties: for any sequence of a customer's messages, agents' replies,
claims, wait updates, the end of the handoff and the clock moving on, the agent is reminded exactly when an unanswered stretch
passes AGENT_REPLY_MINUTES, the admins are told at twice that, the customer gets one holding message once they have
heard nothing for CUSTOMER_HOLD_MINUTES; each at most once per stretch, and nothing after the end."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from telegram import Chat
from telegram import Message as TelegramMessage

from bot import replies
from bot.config import Settings, load_settings
from bot.desk import agent_copies, alerts, handoff, lifecycle, saved, waits
from bot.desk.texts import REPLY_OVERDUE_NOTICE, REPLY_REMINDER
from bot.desk.unit import Unit
from bot.storage import handoffs, saved_replies, tickets, transcript
from bot.storage.models import Base, Direction, Handoff, HandoffStatus, Message, TicketPriority

GROUP, TOPIC, ALEX_CHAT, CUSTOMER = -1001234567890, 77, 51, 4242
START = datetime(2027, 3, 3, 9, 0, tzinfo=UTC)  # a Wednesday
REPLY, HOLD = 5, 10  # the defaults, in minutes
HOLD_START = "Thank you for bearing with us"


@pytest.fixture(scope="module")
def engine() -> Iterator[object]:
    made = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(made)
    yield made
    made.dispose()


def config(tmp: object, **env: str) -> Settings:
    return load_settings({"FRONTLINE_VAR": str(tmp), "AGENT_CHAT_ID": str(GROUP), **env})


_ids = itertools.count(1000)


def telegram_message(chat_id: int, text: str, edit_date: datetime | None = None) -> TelegramMessage:
    return TelegramMessage(
        message_id=next(_ids), date=START, chat=Chat(id=chat_id, type="private"), text=text, edit_date=edit_date
    )


def waiting_customer(session: Session, *, claimed: bool) -> Handoff:
    """Robin asks for a person now (the clock's now): in line, or claimed by Alex at once; the ticket has its topic."""
    alex = handoffs.agent(session, telegram_user_id=ALEX_CHAT, first_name="Alex", username=None)
    alex.private_chat_id = ALEX_CHAT
    customer = transcript.upsert_customer(session, telegram_user_id=CUSTOMER, first_name="Robin")
    conversation = transcript.conversation_for_chat(session, chat_id=CUSTOMER, customer=customer)
    ticket, _ = tickets.create(
        session,
        idempotency_key="k1",
        conversation=conversation,
        category="other",
        description="help",
        desired_resolution="talk_to_person",
        priority=TicketPriority.NORMAL,
    )
    ticket.topic_id = TOPIC
    made, _ = handoffs.open_handoff(
        session, conversation=conversation, ticket=ticket, reason="customer_request", context={}
    )
    if claimed:
        assert handoffs.claim(session, made.id, alex)
    session.flush()
    session.refresh(made)
    return made


@dataclass
class Sent:
    reminders: list[str]
    notes: list[str]
    holds: list[str]


def sent_since(session: Session, after: int) -> Sent:
    rows = list(
        session.scalars(
            select(Message).where(Message.id > after, Message.direction == Direction.OUT).order_by(Message.id)
        )
    )
    return Sent(
        reminders=[m.text for m in rows if m.chat_id == ALEX_CHAT and m.text.startswith("⏰")],
        notes=[m.text for m in rows if m.chat_id == GROUP and m.text.startswith("⚠️")],
        holds=[m.text for m in rows if m.chat_id == CUSTOMER and m.text.startswith(HOLD_START)],
    )


def last_id(session: Session) -> int:
    return session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0


@dataclass
class Expected:
    """What the promise says, kept by hand alongside the run: the stretch, its alerts, and silence."""

    start: datetime | None  # the open stretch's first unanswered message (None: answered)
    claimed_at: datetime | None
    told: datetime | None = None  # the last message the customer got from us
    reminded: bool = False
    noted: bool = False
    held: bool = False
    ended: bool = False


actions = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(min_value=0, max_value=13).map(lambda m: m * 60)),
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=400)),
        st.tuples(st.sampled_from(["customer", "customer", "agent", "saved", "update", "claim", "end"]), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=actions, claimed=st.booleans())
def test_reminders_notes_and_holding_messages_fall_due_once_per_unanswered_stretch(
    engine, tmp_path_factory, clock, script: list[tuple[str, int]], claimed: bool
) -> None:
    clock.set_to(START, frozen=True)
    settings_ = config(tmp_path_factory.getbasetemp())
    with Session(engine) as session:
        made = waiting_customer(session, claimed=claimed)
        alex = made.agent or handoffs.agent(session, telegram_user_id=ALEX_CHAT, first_name="Alex", username=None)
        reply = saved_replies.save(session, "alice", None, "Hello", "Hi {first_name}.", "")
        hope = Expected(start=clock.now(), claimed_at=clock.now() if claimed else None)
        for kind, seconds in [*script, ("advance", 0)]:
            u = Unit(session, settings_, update_id=None)
            now = clock.now()
            if kind == "advance":
                clock.advance(timedelta(seconds=seconds))
            elif kind == "customer" and not hope.ended:
                handoff.relay(u, made, telegram_message(CUSTOMER, "hello?"))
                if hope.start is None:
                    hope.start, hope.reminded, hope.noted, hope.held = now, False, False, False
            elif kind in ("agent", "saved") and not hope.ended:
                if kind == "agent":
                    agent_copies.send(u, alex, made.conversation, made, telegram_message(ALEX_CHAT, "On it."))
                else:
                    saved.send(u, alex, made, reply)
                hope.start, hope.told = None, now
            elif kind == "update" and not hope.ended:  # the queue's wait update (bot/desk/round.py), or the like
                u.tell(made.conversation, replies.WAIT_UPDATE.format(position=1, wait=""))
                hope.told = now
            elif kind == "claim" and made.status is HandoffStatus.QUEUED:
                assert handoffs.claim(session, made.id, alex)
                session.refresh(made)
                hope.claimed_at = now
            elif kind == "end" and not hope.ended:
                handoffs.finish(session, made, HandoffStatus.CLOSED)
                hope.ended = True
            session.flush()
            before, now = last_id(session), clock.now()
            alerts.alert(Unit(session, settings_, update_id=None))
            session.flush()
            sent = sent_since(session, before)
            # What is due now, as the promise says it.
            open_stretch = hope.start is not None and not hope.ended
            since = max(t for t in (hope.start, hope.claimed_at) if t is not None) if open_stretch else None
            agent_due = since is not None and hope.claimed_at is not None and made.status is HandoffStatus.CLAIMED
            remind = agent_due and not hope.reminded and now - since >= timedelta(minutes=REPLY)
            note = agent_due and not hope.noted and now - since >= timedelta(minutes=2 * REPLY)
            silent = hope.told is None or now - hope.told >= timedelta(minutes=HOLD)
            hold = open_stretch and not hope.held and now - hope.start >= timedelta(minutes=HOLD) and silent
            waited = int((now - hope.start).total_seconds() // 60) if hope.start else 0
            ticket = made.ticket.reference
            assert sent.reminders == (
                [REPLY_REMINDER.format(name="Robin", ticket=ticket, minutes=waited)] if remind else []
            )
            assert sent.notes == (
                [REPLY_OVERDUE_NOTICE.format(name="Robin", agent="Alex", minutes=waited, ticket=ticket)] if note else []
            )
            assert len(sent.holds) == (1 if hold else 0)
            if hold and made.status is HandoffStatus.CLAIMED:
                assert sent.holds == [replies.HOLD_WITH_AGENT.format(agent="Alex")]
            elif hold:  # waiting 10 busy minutes or more with nobody picked up: no number is promised
                assert sent.holds == [replies.HOLD_QUEUED.format(position=1, wait=waits.wait_words(None))]
            hope.reminded |= remind
            hope.noted |= note
            hope.held |= hold
            if hold:
                hope.told = now
        session.rollback()


def test_agents_are_reminded_in_open_hours_only_and_counted_from_the_opening(engine, tmp_path, clock) -> None:
    """Wednesday 16:58 Robin writes; the team stops at 17:00. Robin is told at 17:08 when the team is back; Alex is
    reminded on Thursday at 09:05 (the wait counted from the opening), the admins at 09:10, each once."""
    settings_ = config(tmp_path, BUSINESS_HOURS="Mon-Fri 09:00-17:00", BUSINESS_TIMEZONE="UTC")
    clock.set_to(START.replace(hour=16, minute=50), frozen=True)
    with Session(engine) as session:
        made = waiting_customer(session, claimed=True)
        agent_copies.send(
            Unit(session, settings_), made.agent, made.conversation, made, telegram_message(ALEX_CHAT, "Hi Robin")
        )
        clock.set_to(START.replace(hour=16, minute=58), frozen=True)
        handoff.relay(Unit(session, settings_), made, telegram_message(CUSTOMER, "Still there?"))
        seen = []
        for moment in ("17:07", "17:08", "17:30", "08:59", "09:00", "09:04", "09:05", "09:09", "09:10", "10:00"):
            hour, minute = map(int, moment.split(":"))
            day = START if hour >= 17 else START + timedelta(days=1)
            clock.set_to(day.replace(hour=hour, minute=minute), frozen=True)
            before = last_id(session)
            alerts.alert(Unit(session, settings_))
            session.flush()
            sent = sent_since(session, before)
            seen += [(moment, kind) for kind in ("reminders", "notes", "holds") for _ in getattr(sent, kind)]
            if sent.holds:
                assert sent.holds == [
                    replies.HOLD_AFTER_HOURS.format(back="tomorrow at 09:00 (UTC time)", ticket=made.ticket.reference)
                ]
            if sent.reminders:
                assert sent.reminders == [
                    REPLY_REMINDER.format(name="Robin", ticket=made.ticket.reference, minutes=16 * 60 + 7)
                ]
        assert seen == [("17:08", "holds"), ("09:05", "reminders"), ("09:10", "notes")]
        session.rollback()


def test_an_edit_starts_no_stretch_and_the_end_of_the_handoff_stops_everything(engine, tmp_path, clock) -> None:
    settings_ = config(tmp_path)
    clock.set_to(START, frozen=True)
    with Session(engine) as session:
        made = waiting_customer(session, claimed=True)
        agent_copies.send(
            Unit(session, settings_), made.agent, made.conversation, made, telegram_message(ALEX_CHAT, "Hi")
        )
        edited = telegram_message(CUSTOMER, "hello (edited)", edit_date=START)
        handoff.relay(Unit(session, settings_), made, edited)
        assert made.waiting_since is None, "an edit of an answered message leaves it answered"
        handoff.relay(Unit(session, settings_), made, telegram_message(CUSTOMER, "and another thing"))
        assert made.waiting_since == START
        handoffs.finish(session, made, HandoffStatus.RETURNED)
        session.flush()
        before = last_id(session)
        for minutes in (5, 10, 20, 60):
            clock.set_to(START + timedelta(minutes=minutes), frozen=True)
            assert not handoffs.due_work(session, clock.now()).alerts
            alerts.alert(Unit(session, settings_))
        session.flush()
        assert sent_since(session, before) == Sent([], [], [])
        session.rollback()


def test_a_customer_in_line_is_held_with_their_place_and_wait_remembered_for_the_wait_updates(
    engine, tmp_path, clock
) -> None:
    settings_ = config(tmp_path)
    clock.set_to(START, frozen=True)
    with Session(engine) as session:
        made = waiting_customer(session, claimed=False)
        alex = handoffs.agent(session, telegram_user_id=ALEX_CHAT, first_name="Alex", username=None)
        for number in range(3):  # earlier customers in the last hour, picked up after 4 minutes each
            earlier = Handoff(
                conversation_id=made.conversation_id,
                ticket_id=made.ticket_id,
                reason="x",
                status=HandoffStatus.CLOSED,
                agent_id=alex.id,
                queued_at=START - timedelta(minutes=40 - 10 * number),
                claimed_at=START - timedelta(minutes=36 - 10 * number),
            )
            session.add(earlier)
        session.flush()
        clock.set_to(START + timedelta(minutes=10), frozen=True)
        before = last_id(session)
        alerts.alert(Unit(session, settings_))
        session.flush()
        # 22 busy minutes in the last hour (12 of theirs, 10 of this customer's) for 3 pick-ups: 7 min 20 s a place
        wait = waits.wait_words(timedelta(seconds=440))
        assert sent_since(session, before).holds == [replies.HOLD_QUEUED.format(position=1, wait=wait)]
        assert made.told_wait_seconds == 440 and made.held_at == clock.now()
        session.rollback()


async def test_the_alerts_are_kept_and_found_again_on_sqlite_and_postgresql(sessions, tmp_path, clock) -> None:
    """The stretch, the alerts' marks and the silence read back from either database; a new claim after a release
    gives the new holder their own reminder."""
    settings_ = config(tmp_path)
    clock.set_to(START, frozen=True)
    handoff_id = await sessions.run(lambda session: waiting_customer(session, claimed=True).id)

    def later(session: Session, minutes: int) -> Sent:
        clock.set_to(START + timedelta(minutes=minutes), frozen=True)
        before = last_id(session)
        alerts.alert(Unit(session, settings_))
        session.flush()
        return sent_since(session, before)

    assert await sessions.read(lambda s: handoffs.due_work(s, START).alerts)
    first = await sessions.run(later, 10)
    assert (len(first.reminders), len(first.notes), len(first.holds)) == (1, 1, 1)
    assert await sessions.run(later, 30) == Sent([], [], [])
    assert not await sessions.read(lambda s: handoffs.due_work(s, START).alerts), "nothing left to send"

    def release_and_claim(session: Session) -> None:
        made = session.get(Handoff, handoff_id)
        handoffs.requeue(session, made)
        bo = handoffs.agent(session, telegram_user_id=52, first_name="Bo", username=None)
        bo.private_chat_id = 52
        session.flush()
        assert handoffs.claim(session, handoff_id, bo)

    await sessions.run(release_and_claim)
    assert await sessions.run(later, 34) == Sent([], [], [])  # Bo has five minutes from his claim at 0:30
    again = await sessions.run(later, 35)
    assert again.notes == [] and again.holds == []
    bo_told = await sessions.read(lambda s: [m.text for m in s.scalars(select(Message).where(Message.chat_id == 52))])
    assert bo_told == [REPLY_REMINDER.format(name="Robin", ticket="T000001", minutes=35)]


def test_an_agent_given_a_customer_by_transfer_gets_the_full_time_and_a_reminder_of_their_own(
    engine, tmp_path, clock
) -> None:
    settings_ = config(tmp_path)
    clock.set_to(START, frozen=True)
    with Session(engine) as session:
        made = waiting_customer(session, claimed=True)
        sam = handoffs.agent(session, telegram_user_id=52, first_name="Sam", username=None)
        sam.private_chat_id = 52
        session.flush()
        before = last_id(session)
        clock.set_to(START + timedelta(minutes=REPLY), frozen=True)
        alerts.alert(Unit(session, settings_))
        assert len(sent_since(session, before).reminders) == 1, "Alex is reminded at 5 minutes"
        clock.set_to(START + timedelta(minutes=6), frozen=True)
        assert lifecycle.transfer(Unit(session, settings_), made.id, made.agent_id, sam.id) is None
        session.flush()

        def to_sam(after: int) -> list[str]:
            rows = session.scalars(select(Message).where(Message.id > after, Message.chat_id == 52))
            return [m.text for m in rows if m.text.startswith("⏰")]

        before = last_id(session)
        for minutes in (7, 10, 10.9):  # Sam has had Robin for less than 5 minutes: nobody is reminded or told
            clock.set_to(START + timedelta(minutes=minutes), frozen=True)
            alerts.alert(Unit(session, settings_))
        session.flush()
        assert (to_sam(before), sent_since(session, before).notes) == ([], [])
        clock.set_to(START + timedelta(minutes=11), frozen=True)
        alerts.alert(Unit(session, settings_))
        session.flush()
        expected = REPLY_REMINDER.format(name="Robin", ticket=made.ticket.reference, minutes=11)
        assert to_sam(before) == [expected], "Sam's own reminder, with the customer's whole wait"
        clock.set_to(START + timedelta(minutes=16), frozen=True)  # twice the time since the transfer
        alerts.alert(Unit(session, settings_))
        session.flush()
        assert to_sam(before) == [expected], "once"
        assert len(sent_since(session, before).notes) == 1, "the admins are told at twice the time since the transfer"
        session.rollback()
