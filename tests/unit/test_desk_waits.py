"""Honest waits, what the customer is told (bot/desk/waits.py): their own place's wait when they join the line, and
an update when it changes a lot, never more than once in 10 minutes. Steps run on a Unit over a SQLite database."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot import replies
from bot.config import load_settings
from bot.desk import handoff as customer_side
from bot.desk import waits
from bot.desk.unit import Unit
from bot.storage import handoffs
from bot.storage.models import Agent, Base, Conversation, Direction, Handoff, HandoffStatus, Message
from tests.unit.chat_harness import running_harness
from tests.unit.test_desk import _handing_over
from tests.unit.test_waits import T, _add, _minutes

ENV = {"FRONTLINE_VAR": "/nonexistent/frontline-var", "AGENT_CHAT_ID": "-1001234567890"}
SETTINGS = load_settings(ENV)  # always open; WAIT_DEFAULT_MINUTES_PER_PERSON 5


def _database() -> Session:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return Session(engine, expire_on_commit=False)


@pytest.fixture
def session() -> Iterator[Session]:
    with _database() as db:
        yield db


def _agent(session: Session) -> Agent:
    return handoffs.agent(session, telegram_user_id=51, first_name="Alex", username=None)


def _told(session: Session, handoff: Handoff) -> list[str]:
    """What the customer of this handoff was told, in order."""
    return list(
        session.scalars(
            select(Message.text)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .where(Conversation.id == handoff.conversation_id, Message.direction == Direction.OUT)
            .order_by(Message.id)
        )
    )


def _six_pickups_in_half_an_hour(session: Session) -> None:
    """From 14:10 to 14:40 someone was always waiting and six were picked up: 0.2 a minute at 15:00."""
    for i in range(6):
        start = T - _minutes(50 - 5 * i)
        _add(session, start, claimed_at=start + _minutes(5), closed_at=start + _minutes(20))


def _queued_text(position: int, minutes: int) -> str:
    return replies.HANDOFF_QUEUED.format(
        position=position, wait=replies.HANDOFF_WAIT.format(wait=f"about {minutes} minutes")
    )


def _update_text(position: int, minutes: int) -> str:
    return replies.WAIT_UPDATE.format(
        position=position, wait=replies.HANDOFF_WAIT.format(wait=f"about {minutes} minutes")
    )


def _join(u: Unit, at: datetime, many: int) -> list[Handoff]:
    """`many` customers ask for a person at `at` and are told their place, as `handoff.escalate` tells them."""
    line = []
    for i in range(many):
        handoff = _add(u.session, at + timedelta(microseconds=i))  # one after another, as the clock runs
        u.tell(handoff.conversation, waits.place_text(u, handoff, replies.HANDOFF_QUEUED))
        line.append(handoff)
    return line


def test_the_first_and_the_tenth_in_line_are_quoted_their_own_waits(clock, session: Session) -> None:
    clock.set_to(T, frozen=True)
    _six_pickups_in_half_an_hour(session)
    line = _join(Unit(session, SETTINGS), T, 10)
    assert [_told(session, h) for h in line] == [[_queued_text(k, 5 * k)] for k in range(1, 11)]
    assert [(h.told_position, h.told_wait_seconds, h.told_at) for h in (line[0], line[9])] == [
        (1, 300, T),
        (10, 3000, T),
    ]


def test_asking_again_while_in_line_tells_the_place_and_its_wait(clock, session: Session) -> None:
    clock.set_to(T, frozen=True)
    _six_pickups_in_half_an_hour(session)
    u = Unit(session, SETTINGS)
    line = _join(u, T, 10)
    clock.advance(_minutes(1))
    customer_side.escalate(u, line[9].conversation, reason="customer_request", context={})
    # 15:01: 31 busy minutes (14:10-14:40, 15:00-15:01) for 6 pick-ups, 31/6 minutes a person: 10th, 51.7 minutes.
    expected = replies.HANDOFF_STILL_QUEUED.format(
        position=10, wait=replies.HANDOFF_WAIT.format(wait="about 52 minutes")
    )
    assert _told(session, line[9]) == [_queued_text(10, 50), expected]
    assert (line[9].told_at, line[9].told_position) == (T + _minutes(1), 10), "an answer counts as telling them"


def test_a_customer_with_no_estimate_is_told_so(clock, session: Session) -> None:
    clock.set_to(T, frozen=True)
    _add(session, T - _minutes(20))  # waiting 20 minutes, nobody picked up
    [handoff] = _join(Unit(session, SETTINGS), T, 1)
    expected = replies.HANDOFF_QUEUED.format(position=2, wait=replies.HANDOFF_NO_ESTIMATE)
    assert _told(session, handoff) == [expected]
    assert "You're number 2 in line; our team is very busy right now, so I can't say yet how long" in expected
    assert (handoff.told_position, handoff.told_wait_seconds) == (2, None)


def test_a_big_change_is_told_once_ten_minutes_have_passed(clock, session: Session) -> None:
    clock.set_to(T, frozen=True)
    _six_pickups_in_half_an_hour(session)
    u = Unit(session, SETTINGS)
    line = _join(u, T, 10)
    clock.advance(_minutes(5))
    agent = _agent(session)
    for handoff in line[:5]:
        assert handoffs.claim(session, handoff.id, agent)
    waits.tell_changes(u)
    assert all(len(_told(session, h)) == 1 for h in line[5:]), "the 6th is now 1st, but was told 5 minutes ago"
    clock.advance(_minutes(5))
    waits.tell_changes(u)
    # At 15:10: 40 busy minutes in the last hour (14:10-14:40, 15:00-15:10) and 11 pick-ups: 40/11 min a person.
    expected = [(1, 4), (2, 7), (3, 11), (4, 15), (5, 18)]
    assert [_told(session, h)[1:] for h in line[5:]] == [[_update_text(p, m)] for p, m in expected]
    waits.tell_changes(u)
    assert all(len(_told(session, h)) == 2 for h in line[5:]), "told once"


def test_a_customer_who_asked_out_of_hours_hears_their_place_once_the_team_is_back(clock, session: Session) -> None:
    opening = datetime(2026, 12, 9, 9, 0, 30, tzinfo=UTC)  # a Wednesday, half a minute after opening
    clock.set_to(opening, frozen=True)
    weekdays = load_settings({**ENV, "BUSINESS_HOURS": "Mon-Fri 09:00-17:00"})
    # Asked at 22:00 on Tuesday (HANDOFF_AFTER_HOURS said when the team is back, not a wait): the night is no busy
    # time, so the half minute since opening is too little history and the default is quoted.
    handoff = _add(session, opening - timedelta(hours=11))
    waits.tell_changes(Unit(session, weekdays))
    assert _told(session, handoff) == [_update_text(1, 5)]


@pytest.mark.parametrize(
    ("told", "now", "news"),
    [
        ((3, 15), (1, 5), True),  # two picked up: now first
        ((10, 50), (8, 40), False),  # the line moves as foretold: still expected at 10:50
        ((10, 50), (5, 25), True),  # half-way up the line
        ((3, 15), (3, 30), True),  # nobody picked up: expected at 10:40, not 10:15
        ((3, 15), (3, 9), False),  # expected at 10:19 instead of 10:15: no news
        ((3, 15), (3, None), True),  # no estimate any more
        ((3, None), (3, None), False),
        ((1, 5), (2, 10), True),  # someone more urgent went ahead
    ],
)
def test_what_changes_a_lot(told: tuple[int, int | None], now: tuple[int, int | None], news: bool) -> None:
    at = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
    assert (
        waits.changed_a_lot(
            told_position=told[0],
            told_wait=None if told[1] is None else _minutes(told[1]),
            told_at=at,
            position=now[0],
            wait=None if now[1] is None else _minutes(now[1]),
            now=at + _minutes(10),
        )
        is news
    )


async def test_the_desks_round_tells_a_waiting_customer_when_their_wait_changes_a_lot(clock, tmp_path) -> None:
    clock.set_to(T)  # running on from Wednesday 15:00
    # The holding message (bot/desk/alerts.py) would fall due at the same moment and tell the same news instead: this
    # test is about the wait updates, so the customer's hold is set further off.
    async with running_harness(tmp_path, desk=True, CUSTOMER_HOLD_MINUTES="60") as desk:
        desk.rasa.answer = _handing_over
        await desk.say("I want a person")
        queued = (await desk.emulator.wait_for_text(4242, predicate=lambda t: "in line" in t, timeout=8))[-1]
        assert queued["text"] == _queued_text(1, 5), "no history: the stated default"
        await desk.emulator.wait_for_text(desk.group_id, predicate=lambda t: "🎫" in t, timeout=8)
        clock.advance(_minutes(11))  # 11 minutes in line and nobody picked up: no number can be promised
        [update] = await desk.emulator.wait_for_text(
            4242, queued["seq"], predicate=lambda t: t.startswith("An update"), timeout=8
        )  # the first thing the customer gets after their place
        assert update["text"] == replies.WAIT_UPDATE.format(position=1, wait=replies.HANDOFF_NO_ESTIMATE)
        await asyncio.sleep(3)  # a round or two later: nothing more for the customer
        told = [m["text"] for m in (await desk.emulator.sent(4242, queued["seq"])).messages]
        assert told == [update["text"]]


# --- under any sequence of queue events and clock advances ------------------------------------------------------

events = st.lists(
    st.one_of(
        st.tuples(st.just("ask"), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("ask out of hours"), st.just(1)),
        st.tuples(st.just("claim"), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=900)),  # seconds
        st.tuples(st.just("round"), st.just(1)),
    ),
    max_size=40,
)


@settings(deadline=None, max_examples=60, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events, st.booleans())
def test_no_customer_hears_of_their_wait_twice_in_ten_minutes(clock, script, history) -> None:
    clock.set_to(T, frozen=True)
    with _database() as session:
        u = Unit(session, SETTINGS)
        if history:
            _six_pickups_in_half_an_hour(session)
        agent = _agent(session)
        for kind, amount in script:
            now = clock.now()
            if kind == "ask":
                _join(u, now, amount)
            elif kind == "ask out of hours":
                _add(session, now)
            elif kind == "claim":
                for handoff in handoffs.queued(session)[:amount]:
                    handoffs.claim(session, handoff.id, agent)
            elif kind == "cancel":
                line = handoffs.queued(session)
                if line:
                    handoffs.finish(session, line[amount % len(line)], HandoffStatus.CANCELLED)
            elif kind == "wait":
                clock.advance(timedelta(seconds=amount))
            else:
                # The round's cheap check agrees with reading the whole queue.
                due = any(h.told_at is None or now - h.told_at >= waits.UPDATE_EVERY for h in handoffs.queued(session))
                assert handoffs.wait_update_due(session, now - waits.UPDATE_EVERY) is due
                waits.tell_changes(u)
            session.flush()
        said = session.execute(
            select(Message.conversation_id, Message.created_at, Message.text)
            .where(Message.direction == Direction.OUT)
            .order_by(Message.id)
        ).all()
    moments: dict[int, list[datetime]] = {}
    for conversation_id, at, _text in said:
        moments.setdefault(conversation_id, []).append(at)
    for told in moments.values():
        assert all(later - earlier >= waits.UPDATE_EVERY for earlier, later in itertools.pairwise(told))
    assert all("in line" in text for _, _, text in said)
    event(f"updates: {min(3, sum(text.startswith('An update') for _, _, text in said))}")
