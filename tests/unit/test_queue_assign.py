"""The queue's order and auto-assignment as properties, on the desk's steps over a real database (SQLite in memory):
the queue is priority first, then wait; with AUTO_ASSIGN each request goes round-robin to a free online agent, no
agent holds more than MAX_CHATS_PER_AGENT, every request is assigned or queued (never both, never to one agent
twice), and nobody waits while an agent who has not had their request is free."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session

from bot import replies
from bot.config import load_settings
from bot.desk import assign, handoff, lifecycle
from bot.desk.unit import Unit
from bot.storage import handoffs, presence, transcript
from bot.storage.base import Base
from bot.storage.models import Agent, Handoff, HandoffStatus, Message, TicketPriority, utcnow

T = TypeVar("T")
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
RANK = {TicketPriority.URGENT: 3, TicketPriority.HIGH: 2, TicketPriority.NORMAL: 1, TicketPriority.LOW: 0}
GROUP = "-1001234567890"


class Desk:
    """A fresh database and the desk's settings; each `step` is one transaction, as `Desk.step` runs them."""

    def __init__(self, **env: str) -> None:
        self.engine = create_engine("sqlite://")
        event.listen(self.engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))
        Base.metadata.create_all(self.engine)
        self.settings = load_settings({"FRONTLINE_VAR": "/tmp/frontline-unused", "AGENT_CHAT_ID": GROUP, **env})
        self._users = itertools.count(70_001)

    def step(self, work: Callable[..., T], *args: Any) -> T:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return work(Unit(session, self.settings), *args)

    def read(self, work: Callable[[Session], T]) -> T:
        with Session(self.engine) as session:
            return work(session)

    def agent(self, online: bool = True) -> int:
        user = next(self._users)

        def add(u: Unit) -> int:
            found = handoffs.agent(u.session, telegram_user_id=user, first_name=f"A{user}", username=None)
            found.private_chat_id, found.online = user, online
            return found.id

        return self.step(add)

    def request(
        self, priority: TicketPriority = TicketPriority.NORMAL, waited: float = 0, reason: str = "customer_request"
    ) -> int:
        """A new customer asks for a person (the escalation's own step); the handoff's id."""
        user = next(self._users)

        def ask(u: Unit) -> int:
            customer = transcript.upsert_customer(u.session, telegram_user_id=user, first_name=f"C{user}")
            conversation = transcript.conversation_for_chat(u.session, chat_id=user, customer=customer)
            handoff.escalate(u, conversation, reason=reason, context={"message": "a person please"})
            found = handoffs.active_for(u.session, conversation.id)
            assert found is not None
            found.ticket.priority = priority
            found.queued_at = found.queued_at - timedelta(seconds=waited)
            return found.id

        return self.step(ask)


@pytest.fixture
def fresh() -> Iterator[Callable[..., Desk]]:
    made: list[Desk] = []

    def make(**env: str) -> Desk:
        made.append(Desk(**env))
        return made[-1]

    yield make
    for desk in made:
        desk.engine.dispose()


# --- the queue's order ------------------------------------------------------------------------------------------

waiting = st.lists(
    st.tuples(st.sampled_from(list(TicketPriority)), st.integers(min_value=0, max_value=600)), min_size=1, max_size=12
)


@EXAMPLES
@given(waiting=waiting)
def test_the_queue_is_priority_first_then_the_longest_wait(fresh: Callable[..., Desk], waiting: list) -> None:
    desk = fresh()  # nobody online: everyone waits
    ids = [desk.request(priority, waited) for priority, waited in waiting]

    def order(session: Session) -> tuple[list[int], list[int], list[tuple[int, Any, int]]]:
        queued = handoffs.queued(session)
        places = [handoffs.place_in_line(session, h) for h in queued]
        keys = [(-RANK[h.ticket.priority], h.queued_at, h.id) for h in queued]
        return [h.id for h in queued], places, keys

    queued, places, keys = desk.read(order)
    assert sorted(queued) == sorted(ids), "everyone waiting is in the queue"
    assert keys == sorted(keys), "highest priority first, then the longest waiting"
    assert places == list(range(1, len(ids) + 1)), "place_in_line follows the same order"


def test_next_claims_the_top_of_the_queue(fresh: Callable[..., Desk]) -> None:
    desk = fresh()
    agent = desk.agent(online=False)
    desk.request(TicketPriority.NORMAL, waited=300)
    urgent = desk.request(TicketPriority.URGENT, waited=10)
    told = desk.step(assign.claim_next, agent)
    assert told.startswith("You claimed")
    assert desk.read(lambda s: (h := s.get(Handoff, urgent)) and (h.status, h.agent_id)) == (
        HandoffStatus.CLAIMED,
        agent,
    )
    # The customer is introduced as on a Claim: told who helps, and the agent gets the conversation.
    texts = desk.read(lambda s: [m.text for m in s.scalars(select(Message).order_by(Message.id))])
    assert sum(t.startswith("Hi, this is A") for t in texts) == 1
    assert sum(t.startswith("You're now talking with") for t in texts) == 1


# --- auto-assignment --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auto_assign", ["1", "0"])
def test_a_customer_the_bot_could_not_answer_hears_why_before_anything_else(
    fresh: Callable[..., Desk], auto_assign: str
) -> None:
    """Handed over because Rasa was down: the first thing they read says so, whether an agent got them at once
    (their introduction) or they wait in line."""
    desk = fresh(AUTO_ASSIGN=auto_assign)
    desk.agent(online=True)
    made = desk.request(reason="bot_unavailable")
    told = desk.read(
        lambda s: [
            m.text
            for m in s.scalars(select(Message).order_by(Message.id))
            if m.chat_id == s.get(Handoff, made).conversation.chat_id
        ]
    )
    assert told and told[0].startswith(replies.HANDOFF_BOT_DOWN)
    assert sum(replies.HANDOFF_BOT_DOWN in t for t in told) == 1


events = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from(list(TicketPriority))),
        st.tuples(st.just("close"), st.integers(min_value=0, max_value=50)),
        st.tuples(st.just("pass"), st.integers(min_value=0, max_value=50)),
        st.tuples(st.just("online"), st.integers(min_value=0, max_value=5)),
        st.tuples(st.just("away"), st.integers(min_value=0, max_value=5)),
        st.tuples(st.just("round"), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


def _holder(desk: Desk, handoff_id: int) -> int | None:
    return desk.read(lambda s: s.get(Handoff, handoff_id).agent_id)


def _set_online(desk: Desk, agent_id: int, online: bool) -> None:
    desk.step(lambda u: presence.set_online(u.session, u.session.get(Agent, agent_id), online, utcnow()))


def _state(session: Session) -> dict[str, Any]:
    agents = {a.id: a for a in session.scalars(select(Agent))}
    active = list(
        session.scalars(select(Handoff).where(Handoff.status.in_([HandoffStatus.QUEUED, HandoffStatus.CLAIMED])))
    )
    return {"agents": agents, "active": active, "held": presence.load(session)}


@EXAMPLES
@given(
    agents=st.lists(st.booleans(), min_size=1, max_size=5),
    limit=st.integers(min_value=1, max_value=3),
    script=events,
)
def test_auto_assignment_is_round_robin_within_the_limit(
    fresh: Callable[..., Desk], agents: list[bool], limit: int, script: list
) -> None:
    desk = fresh(AUTO_ASSIGN="1", MAX_CHATS_PER_AGENT=str(limit))
    ids = [desk.agent(online) for online in agents]
    requests: list[int] = []
    for kind, value in script:
        before = desk.read(lambda s: {a.id: (a.last_assigned_at, a.online) for a in s.scalars(select(Agent))})
        held_before = desk.read(presence.load)
        if kind == "request":
            new = desk.request(value)
            requests.append(new)
            holder = _holder(desk, new)
            free = [a for a in ids if before[a][1] and held_before.get(a, 0) < limit]
            if free:
                # Round robin: the free agent whose turn is oldest (never given one: first, by id).
                turn = min(free, key=lambda a: (before[a][0] is not None, before[a][0] or utcnow(), a))
                assert holder == turn
            else:
                assert holder is None, "nobody free: it waits in the queue"
        elif kind in ("close", "pass"):
            claimed = desk.read(
                lambda s: [h.id for h in s.scalars(select(Handoff).where(Handoff.status == HandoffStatus.CLAIMED))]
            )
            if claimed:
                chosen = claimed[value % len(claimed)]
                holder = _holder(desk, chosen)
                if kind == "close":
                    desk.step(lifecycle.finish, chosen, holder, HandoffStatus.CLOSED)
                else:
                    assert desk.step(assign.pass_back, chosen, holder) == ""
                    assert _holder(desk, chosen) != holder, "not straight back"
        elif kind in ("online", "away"):
            agent = ids[value % len(ids)]
            _set_online(desk, agent, kind == "online")
        else:
            desk.step(assign.assign_round)
        state = desk.read(_state)
        assert all(count <= limit for count in state["held"].values()), "nobody above MAX_CHATS_PER_AGENT"
        for active in state["active"]:
            assert (active.status is HandoffStatus.CLAIMED) == (active.agent_id is not None), "assigned or queued"
            assert len(active.offered_to) == len(set(active.offered_to)), "never to one agent twice"
    desk.step(assign.assign_round)
    state = desk.read(_state)
    free = [
        a.id
        for a in state["agents"].values()
        if a.online and state["held"].get(a.id, 0) < limit and a.private_chat_id is not None
    ]
    for waiting_one in (h for h in state["active"] if h.status is HandoffStatus.QUEUED):
        assert not set(free) - set(waiting_one.offered_to), "after a round, nobody waits while a new agent is free"
    intros = desk.read(lambda s: sum(1 for m in s.scalars(select(Message)) if m.text.startswith("🎫 Assigned to you")))
    assigned_ever = desk.read(lambda s: sum(len(h.offered_to) for h in s.scalars(select(Handoff))))
    assert intros == assigned_ever, "one card in a private chat per assignment"


def test_out_of_hours_nothing_is_assigned_until_the_team_is_back(fresh: Callable[..., Desk], clock: Any) -> None:
    clock.set_to(datetime(2027, 3, 6, 20, 0, tzinfo=UTC), frozen=True)  # a Saturday evening
    desk = fresh(AUTO_ASSIGN="1", BUSINESS_HOURS="Mon-Fri 09:00-17:00", BUSINESS_TIMEZONE="UTC")
    agent = desk.agent()
    waiting_one = desk.request()
    desk.step(assign.assign_round)
    assert desk.read(lambda s: s.get(Handoff, waiting_one).status) is HandoffStatus.QUEUED
    clock.set_to(datetime(2027, 3, 8, 9, 5, tzinfo=UTC), frozen=True)  # Monday, the team is back
    desk.step(lambda u: presence.touch(u.session, u.session.get(Agent, agent).telegram_user_id, utcnow()))
    desk.step(assign.assign_round)
    assert desk.read(lambda s: s.get(Handoff, waiting_one).agent_id) == agent


async def test_assignment_on_each_database_keeps_the_limit(sessions: Any) -> None:
    """The same steps on SQLite and PostgreSQL (whose agents' rows are locked while a request is given)."""
    settings = load_settings(
        {
            "FRONTLINE_VAR": "/tmp/frontline-unused",
            "AGENT_CHAT_ID": GROUP,
            "AUTO_ASSIGN": "1",
            "MAX_CHATS_PER_AGENT": "1",
        }
    )

    def agent(session: Session) -> int:
        found = handoffs.agent(session, telegram_user_id=61, first_name="Alex", username=None)
        found.private_chat_id, found.online = 61, True
        session.flush()
        return found.id

    def ask(session: Session, user: int) -> int:
        customer = transcript.upsert_customer(session, telegram_user_id=user, first_name=f"C{user}")
        conversation = transcript.conversation_for_chat(session, chat_id=user, customer=customer)
        handoff.escalate(Unit(session, settings), conversation, reason="customer_request", context={})
        found = handoffs.active_for(session, conversation.id)
        assert found is not None
        return found.id

    def holders(session: Session, ids: list[int]) -> list[int | None]:
        return [session.get(Handoff, i, populate_existing=True).agent_id for i in ids]

    alex = await sessions.run(agent)
    first, second = await sessions.run(ask, 71), await sessions.run(ask, 72)
    assert await sessions.read(holders, [first, second]) == [alex, None], "Alex is full: the second waits"
    await sessions.run(lambda s: assign.assign_round(Unit(s, settings)))
    assert await sessions.read(holders, [first, second]) == [alex, None]
    await sessions.run(lambda s: lifecycle.finish(Unit(s, settings), first, alex, HandoffStatus.CLOSED))
    await sessions.run(lambda s: assign.assign_round(Unit(s, settings)))
    assert await sessions.read(holders, [second]) == [alex], "freed up: the waiting request is theirs"
