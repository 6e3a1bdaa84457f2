"""Dropping the bare records that carried a forget's confirmation loses nothing the customer sent since: over
generated inboxes (the chat's updates handled or still waiting, another chat's too), an update still to be handled
stays, and so do the bare records that will hold it; once nothing waits, the records and the chat's handled
updates go, and no other chat's update is touched."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session

from bot import replies
from bot.storage import inbox, privacy, transcript
from bot.storage.base import Base
from bot.storage.models import Conversation, InboxStatus, InboxUpdate

USER, OTHER = 4242, 4343
updates = st.lists(st.tuples(st.sampled_from([USER, OTHER]), st.sampled_from(list(InboxStatus))), max_size=6)


def _confirmed(session: Session) -> None:
    """What `_forget` leaves: a bare customer and conversation holding only the delivered confirmation."""
    customer = transcript.upsert_customer(session, telegram_user_id=USER, first_name="")
    conversation = transcript.conversation_for_chat(session, chat_id=USER, customer=customer)
    message_id = transcript.queue_outgoing(session, conversation=conversation, text=replies.FORGOTTEN, update_id=None)
    session.flush()
    transcript.mark_delivered(session, message_id, telegram_message_id=1)


@settings(deadline=None, max_examples=60)
@given(inbox_rows=updates)
def test_an_update_still_to_be_handled_is_never_dropped_with_the_confirmation(
    inbox_rows: list[tuple[int, InboxStatus]],
) -> None:
    engine = create_engine("sqlite://")
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA foreign_keys=ON"))
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        _confirmed(session)
        for update_id, (chat, status) in enumerate(inbox_rows, start=1):
            inbox.store(session, update_id=update_id, chat_id=chat, payload={"update_id": update_id})
            if status is InboxStatus.DONE:
                inbox.mark_done(session, update_id)
    with Session(engine) as session, session.begin():
        dropped = privacy.drop_confirmation(session, USER, replies.FORGOTTEN)
    with Session(engine) as session:
        left = {(r.update_id, r.chat_id, r.status) for r in session.scalars(select(InboxUpdate))}
        conversation = session.scalar(select(Conversation).where(Conversation.chat_id == USER))
    stored = {(i, chat, status) for i, (chat, status) in enumerate(inbox_rows, start=1)}
    waiting = {row for row in stored if row[1] == USER and row[2] is InboxStatus.PENDING}
    assert dropped == (not waiting)
    assert waiting <= left, "an update the customer sent is never lost"
    assert {row for row in stored if row[1] == OTHER} <= left, "another chat's updates stay"
    assert (conversation is None) == dropped, "the bare records stay while an update of the chat waits"
    if dropped:
        assert {row for row in left if row[1] == USER} == set(), "the chat's handled updates went with them"
    engine.dispose()
