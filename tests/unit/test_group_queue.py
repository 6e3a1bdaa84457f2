"""The agents' group's queue: cards first, customers in turn, a waiting customer's texts merged and paced."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.storage.models import Message
from bot.telegram.group_pace import GroupPace
from bot.telegram.group_queue import MESSAGE_CHARS, merged_text, messages_in, next_batch

GROUP = -100123
HEADER = "💬 Maya · T000001"


def _message(id_: int, conversation: int, kind: str = "text", text: str = "x", **payload: Any) -> Message:
    return Message(id=id_, conversation_id=conversation, chat_id=GROUP, kind=kind, text=text, payload=payload or None)


def test_a_card_goes_before_anything_already_waiting() -> None:
    photos = [_message(n, conversation=1, kind="copies", copy_many={"message_ids": [n]}) for n in range(1, 10)]
    card = _message(20, conversation=2, kind="card")
    assert next_batch([*photos, card], now=0, last_served=None) == [card]


def test_customers_take_turns() -> None:
    pending = [_message(1, 1), _message(2, 1), _message(3, 1), _message(4, 2), _message(5, 3)]
    served, order = None, []
    while pending:
        [sent] = next_batch(pending, now=0, last_served=served)
        order.append(sent.id)
        served = sent.conversation_id
        pending.remove(sent)
    assert order == [1, 4, 5, 2, 3]


def test_a_relay_not_due_yet_waits_and_holds_back_only_its_customers_messages() -> None:
    later = _message(1, 1, kind="relay", text=f"{HEADER}\nhello", not_before=100.0)
    after_it = _message(2, 1)
    other = _message(3, 2)
    assert next_batch([later, after_it, other], now=50, last_served=None) == [other]
    assert next_batch([later, after_it], now=50, last_served=None) == []
    assert next_batch([later, after_it], now=100, last_served=None) == [later]


def test_a_waiting_customers_texts_go_as_one_message() -> None:
    texts = [_message(n, 1, kind="relay", text=f"{HEADER}\npart {n}", thread_id=7) for n in (1, 2, 3)]
    photo = _message(4, 1, kind="relay", text=HEADER, copy={"from_chat_id": 42, "message_id": 9}, thread_id=7)
    batch = next_batch([*texts, photo], now=0, last_served=None)
    assert batch == texts
    assert merged_text(batch) == f"{HEADER}\npart 1\npart 2\npart 3"


@settings(deadline=None, max_examples=200)
@given(st.lists(st.text(min_size=1, max_size=3000), min_size=1, max_size=8))
def test_merged_relays_keep_every_text_and_fit_one_message(texts: list[str]) -> None:
    pending = [_message(n, 1, kind="relay", text=f"{HEADER}\n{text}") for n, text in enumerate(texts, 1)]
    sent: list[str] = []
    while pending:
        batch = next_batch(pending, now=0, last_served=None)
        assert batch, "something is always due"
        sent.append(merged_text(batch) if len(batch) > 1 else batch[0].text)
        assert len(sent[-1]) <= MESSAGE_CHARS or len(batch) == 1
        pending = pending[len(batch) :]
    joined = "\n".join(sent)
    assert all(text in joined for text in texts)


def test_the_pace_counts_each_message_and_keeps_room_for_cards() -> None:
    now = [1000.0]
    pace = GroupPace(20, clock=lambda: now[0])
    assert pace.wait(GROUP, 10, card=False) == 0
    pace.spend(GROUP, 10)  # an album's ten copies: ten of the minute's messages
    assert pace.wait(GROUP, 1, card=False) == 60.0, "the rest of the minute is kept for cards"
    assert pace.wait(GROUP, 2, card=True) == 0
    pace.spend(GROUP, 10)
    assert pace.wait(GROUP, 1, card=True) == 60.0
    now[0] += 60.0
    assert pace.wait(GROUP, 10, card=False) == 0


def test_no_pace_when_the_group_rate_is_off() -> None:
    pace = GroupPace(0)
    pace.spend(GROUP, 500)
    assert pace.wait(GROUP, 10, card=False) == 0


def test_telegram_counts_an_albums_copies_one_by_one() -> None:
    assert messages_in(_message(1, 1, kind="copies", copy_many={"message_ids": [1, 2, 3]})) == 3
    assert messages_in(_message(2, 1, kind="topic", topic={"name": "✅ T1", "closed": True})) == 2
    assert messages_in(_message(3, 1, kind="card")) == 1
