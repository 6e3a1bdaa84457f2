"""Whatever the `complaint_photos` slot holds (a forged tracker may set it to anything), the actions that take photos
from it keep at most 10 well-formed file ids, the first ones, each once: the ticket's and the desk's photos."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rasa_sdk import Tracker

from actions.handoff import collected
from actions.photos import FILE_ID, MAX_PHOTOS
from actions.tickets import complaint_from

file_ids = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=12)
junk = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.dictionaries(st.text(max_size=3), st.integers()))
slot_values = st.one_of(
    st.lists(st.one_of(file_ids, junk), max_size=3000),
    st.lists(file_ids, min_size=11, max_size=3000),
    junk,
)


def _tracker(photos: Any) -> Tracker:
    return Tracker.from_dict(
        {"sender_id": "tg-42", "slots": {"complaint_photos": photos}, "latest_message": {}, "events": []}
    )


def _expected(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    kept: list[str] = []
    for item in value:
        if isinstance(item, str) and FILE_ID.fullmatch(item) and item not in kept and len(kept) < MAX_PHOTOS:
            kept.append(item)
    return kept


@settings(deadline=None, max_examples=200)
@given(slot_values)
def test_a_ticket_and_a_handoff_keep_at_most_ten_well_formed_photos_from_any_slot(value: Any) -> None:
    tracker = _tracker(value)
    photos = complaint_from(tracker)["photos"]
    assert len(photos) <= MAX_PHOTOS
    assert photos == _expected(value)
    handed = collected(tracker).get("complaint_photos")
    assert handed is None or handed == photos
