"""The promise of /forget as a property: over generated conversations (messages, replies, buttons, complaints with
a person asked for, messages relayed to an agent and answered with a reply that quotes them, cards pressed in the
agents' group), forgetting one customer leaves no stored row with their words or ids, and everyone else's words
are all still there."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session

from bot.storage import buttons, handoffs, inbox, privacy, tickets, transcript
from bot.storage.base import Base
from bot.storage.models import Conversation, InboxStatus, InboxUpdate, TicketPriority
from tests.unit.stored_rows import traces

AGENT, GROUP = 5151, -1001000000001
STEPS = ("says", "button", "complaint", "relayed_and_answered", "card_pressed")


class World:
    """One database, and the counters Telegram would keep."""

    def __init__(self) -> None:
        self.engine = create_engine("sqlite://")
        event.listen(self.engine, "connect", lambda connection, _: connection.execute("PRAGMA foreign_keys=ON"))
        Base.metadata.create_all(self.engine)
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1)

    def step(self, session: Session, conversation: Conversation, kind: str, word: str) -> None:
        user, name = conversation.chat_id, conversation.customer.first_name
        update_id = next(self.update_ids)
        if kind == "says":
            message = {"message_id": next(self.message_ids), "chat": {"id": user}, "from": {"id": user}, "text": word}
            inbox.store(
                session, update_id=update_id, chat_id=user, payload={"update_id": update_id, "message": message}
            )
            transcript.record_incoming(
                session,
                conversation=conversation,
                update_id=update_id,
                kind="text",
                text=word,
                telegram_message_id=message["message_id"],
            )
            transcript.queue_outgoing(session, conversation=conversation, text=f"echo {word}", update_id=update_id)
        elif kind == "button":
            buttons.register(session, chat_id=user, title=word, payload="/affirm")
        elif kind == "complaint":
            ticket, _ = tickets.create(
                session,
                idempotency_key=f"tg-{user}:{update_id}",
                conversation=conversation,
                category="delivery",
                description=f"{name} says {word}",
                desired_resolution="refund",
                priority=TicketPriority.NORMAL,
                order_number="A12345",
                contact=f"{word}@example.com",
                photos=[f"photo-{word}"],
            )
            ticket.topic_id = next(self.message_ids)  # its topic in the agents' group, where an agent writes
            note = {
                "message_id": next(self.message_ids),
                "chat": {"id": GROUP},
                "from": {"id": AGENT},
                "message_thread_id": ticket.topic_id,
                "is_topic_message": True,
                "text": f"checked {word}",
            }
            inbox.store(session, update_id=update_id, chat_id=GROUP, payload={"update_id": update_id, "message": note})
            transcript.queue_outgoing(session, conversation=conversation, text="card", update_id=None, chat_id=GROUP)
            handoffs.open_handoff(
                session,
                conversation=conversation,
                ticket=ticket,
                reason="customer_request",
                context={"message": word, "collected": {"contact": f"{word}@example.com"}},
            )
        elif kind == "relayed_and_answered":
            relayed = self._delivered(session, conversation, AGENT, f"💬 {name}: {word}")
            quote = {"message_id": relayed, "chat": {"id": AGENT}, "text": f"💬 {name}: {word}"}
            reply = {
                "message_id": next(self.message_ids),
                "chat": {"id": AGENT},
                "from": {"id": AGENT},
                "text": f"Sorry, {name}",
                "reply_to_message": quote,
            }
            inbox.store(session, update_id=update_id, chat_id=AGENT, payload={"update_id": update_id, "message": reply})
            transcript.queue_outgoing(
                session, conversation=conversation, text=f"Alex: Sorry, {name}", update_id=update_id
            )
        elif kind == "card_pressed":
            card = self._delivered(session, conversation, GROUP, f"🎫 {name} #{user}: {word}")
            press = {
                "id": str(update_id),
                "from": {"id": AGENT},
                "data": "desk:claim:1",
                "message": {"message_id": card, "chat": {"id": GROUP}, "text": f"🎫 {name}: {word}"},
            }
            inbox.store(
                session, update_id=update_id, chat_id=GROUP, payload={"update_id": update_id, "callback_query": press}
            )

    def _delivered(self, session: Session, conversation: Conversation, chat: int, text: str) -> int:
        telegram_id = next(self.message_ids)
        stored = transcript.queue_outgoing(session, conversation=conversation, text=text, update_id=None, chat_id=chat)
        transcript.mark_delivered(session, stored, telegram_message_id=telegram_id)
        return telegram_id


@given(
    stories=st.lists(st.lists(st.sampled_from(STEPS), min_size=1, max_size=6), min_size=2, max_size=3),
    forgotten=st.integers(0, 2),
)
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_after_forget_nothing_of_the_customer_remains_and_everyone_elses_words_do(
    stories: list[list[str]], forgotten: int
) -> None:
    forgotten %= len(stories)
    world = World()
    users = [1001 + 1001 * n for n in range(len(stories))]  # 1001, 2002, 3003: none inside another
    words: dict[int, list[str]] = {}
    with Session(world.engine) as session, session.begin():
        for user, story in zip(users, stories, strict=True):
            customer = transcript.upsert_customer(session, telegram_user_id=user, first_name=f"Name{user}")
            conversation = transcript.conversation_for_chat(session, chat_id=user, customer=customer)
            words[user] = [f"word{user}x{n}" for n in range(len(story))]
            for kind, word in zip(story, words[user], strict=True):
                world.step(session, conversation, kind, word)
    gone = users[forgotten]
    with Session(world.engine) as session, session.begin():
        privacy.forget_customer(session, gone)
    with Session(world.engine) as session:
        assert traces(session, (*words[gone], f"Name{gone}"), (gone,)) == []
        for user in users:
            if user != gone:
                for word in words[user]:
                    assert traces(session, (word,), ()), f"{word} of customer {user} is still stored"
    world.engine.dispose()


@given(
    story=st.lists(st.sampled_from(STEPS), min_size=1, max_size=6),
    later=st.integers(0, 3),
    handled_first=st.booleans(),
)
@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
def test_a_forget_on_request_spares_only_what_the_customer_wrote_after_asking(
    story: list[str], later: int, handled_first: bool
) -> None:
    """`spare_after` (the /forget button's update): the customer's words from before it all go, and what they wrote
    after it, stored in the inbox and not handled yet, all stays, to be handled as a new conversation's."""
    world = World()
    user = 1001
    with Session(world.engine) as session, session.begin():
        customer = transcript.upsert_customer(session, telegram_user_id=user, first_name=f"Name{user}")
        conversation = transcript.conversation_for_chat(session, chat_id=user, customer=customer)
        words = [f"word{user}x{n}" for n in range(len(story))]
        for kind, word in zip(story, words, strict=True):
            world.step(session, conversation, kind, word)
        if handled_first:  # the earlier updates handled, as they usually are by then
            for row in session.scalars(select(InboxUpdate)):
                row.status = InboxStatus.DONE
        press = next(world.update_ids)
        inbox.store(session, update_id=press, chat_id=user, payload={"update_id": press, "callback_query": "yes"})
        after = [f"after{user}x{n}" for n in range(later)]
        for word in after:
            update_id = next(world.update_ids)
            message = {"message_id": next(world.message_ids), "chat": {"id": user}, "text": word}
            inbox.store(
                session, update_id=update_id, chat_id=user, payload={"update_id": update_id, "message": message}
            )
    with Session(world.engine) as session, session.begin():
        privacy.forget_customer(session, user, spare_after=press)
    with Session(world.engine) as session:
        assert traces(session, (*words, f"Name{user}"), ()) == []
        left = traces(session, (), (user,))  # only the updates written after, by their chat id
        assert all(table == "inbox_updates" and row["update_id"] > press for table, row in left), left
        assert session.get(InboxUpdate, press) is None
        kept = session.scalars(select(InboxUpdate).where(InboxUpdate.chat_id == user)).all()
        assert sorted(row.update_id for row in kept) == list(range(press + 1, press + 1 + later))
        for word in after:
            assert traces(session, (word,), ()), f"{word}, written after the forget began, is lost"
    world.engine.dispose()
