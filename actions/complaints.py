"""The complaint form: what the customer already said is taken from any message, never asked again."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.categories import EARLIER, PHRASES, SHOWN_IN_PHOTOS, category_of
from actions.db import settings
from actions.handoff import CUSTOMER_REQUEST, hand_over, reason_for
from actions.photos import FILE_ID, MAX_PHOTOS, capped
from bot.storage.base import string_length
from bot.storage.models import Ticket, TicketStatus

FORM = "complaint_form"
NONE = "none"
# What the form accepts always fits the ticket's columns (read from the model, so they cannot drift apart).
MAX_ORDER_NUMBER = min(32, string_length(Ticket.__table__.c.order_number))
MAX_CONTACT = min(254, string_length(Ticket.__table__.c.contact))  # 254: the longest an email address can be
MAX_DESCRIPTION = 4000
# Messages with these intents are questions or requests of their own: they never fill a slot,
# so the form is rejected for the turn and the rules answer them.
INTERRUPTIONS = {
    "faq",
    "bot_challenge",
    "stop",
    "request_human",
    "frustration",
    "check_ticket_status",
    "greet",
    "goodbye",
    "out_of_scope",
    "other_language",
}
RESOLUTIONS = {
    "refund": r"refund|money back|reimburs|pay me back|my money",
    "replacement": r"replace|new one|another one|exchange|swap|send (it|one) again",
    "repair": r"repair|fix",
    "just_informing": r"just (letting|wanted|want|to let|informing)|let(ting)? you know|no need|nothing|for your information|fyi",
}
PHOTO_INTENT = "attach_photo"  # what the app sends for a photo without a caption; the photo itself is in the metadata
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}$")
PHONE = re.compile(r"^\+?[\d\s().-]{7,24}$")
# The category read back to the customer and listed with their tickets (earlier tickets' categories too).
CATEGORY_TEXT = {**EARLIER, **PHRASES, "other": "something else"}
STATUS_TEXT = {
    TicketStatus.OPEN: "open, waiting for our team",
    TicketStatus.IN_PROGRESS: "being worked on",
    TicketStatus.RESOLVED: "resolved",
    TicketStatus.CLOSED: "closed",
}
RESOLUTION_TEXT = {
    "refund": "a refund",
    "replacement": "a replacement",
    "repair": "a repair",
    "just_informing": "no action, you're letting us know",
}


def last_match(text: str, patterns: dict[str, str]) -> str | None:
    """The key whose pattern matches last in the text (so "not a refund, a replacement" picks replacement)."""
    best, position = None, -1
    for key, pattern in patterns.items():
        for found in re.finditer(pattern, text, re.IGNORECASE):
            if found.start() > position:
                best, position = key, found.start()
    return best


def is_order_number(value: str) -> bool:
    """Whether a value is an order number in the configured format."""
    return (
        len(value) <= MAX_ORDER_NUMBER
        and re.fullmatch(settings().order_number_pattern, value, re.IGNORECASE) is not None
    )


def is_contact(value: str) -> bool:
    """An email address, or a phone number of 7 to 15 digits."""
    if len(value) > MAX_CONTACT:
        return False
    if EMAIL.match(value):
        return True
    return bool(PHONE.match(value)) and 7 <= sum(c.isdigit() for c in value) <= 15


def _intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def _text(tracker: Tracker) -> str:
    return (tracker.latest_message.get("text") or "").strip()


def _entity(tracker: Tracker, name: str) -> str | None:
    return next(tracker.get_latest_entity_values(name), None)


def photos_in(tracker: Tracker) -> list[str]:
    """The Telegram file ids of the photos the app attached to the latest message (anything malformed is ignored)."""
    attachments = (tracker.latest_message.get("metadata") or {}).get("attachments") or []
    return [
        a["file_id"]
        for a in attachments
        if isinstance(a, dict)
        and a.get("kind") == "photo"
        and isinstance(a.get("file_id"), str)
        and FILE_ID.match(a["file_id"])
    ]


def with_new_photos(tracker: Tracker) -> list[str] | None:
    """The photos kept so far plus those of the latest message, or None when it brought none."""
    new = photos_in(tracker)
    if not new:
        return None
    kept = capped(tracker.get_slot("complaint_photos"))
    return [*kept, *(p for p in new if p not in kept)][:MAX_PHOTOS]


def _checked(
    dispatcher: CollectingDispatcher, slot: str, value: Any, is_valid: Callable[[str], bool], reask: str
) -> dict[str, Any]:
    """Keep a valid value (or "none"); otherwise say why with `reask` and leave the slot to be asked again."""
    if value == NONE or (isinstance(value, str) and is_valid(value)):
        return {slot: value}
    dispatcher.utter_message(response=reask)
    return {slot: None}


class ValidateComplaintForm(FormValidationAction):
    """Extracts every complaint detail from whatever the customer writes, and checks each one."""

    def name(self) -> str:
        return "validate_complaint_form"

    def _asking(self, tracker: Tracker, slot: str) -> bool:
        """Whether the latest message answers the question about `slot` (a bare photo answers none but the photo one)."""
        return tracker.get_slot("requested_slot") == slot and _intent(tracker) not in INTERRUPTIONS | {PHOTO_INTENT}

    def _correcting(self, tracker: Tracker) -> bool:
        return tracker.get_slot("requested_slot") == "complaint_confirmed"

    async def extract_complaint_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = _text(tracker)
        if self._asking(tracker, "complaint_description") and text:
            return {"complaint_description": text[:MAX_DESCRIPTION]}
        # The message that started the complaint is the customer's own account, when it says more than "I want to complain".
        if _intent(tracker) == "complain" and not tracker.get_slot("complaint_description") and len(text.split()) >= 6:
            return {"complaint_description": text[:MAX_DESCRIPTION]}
        return {}

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        entity = _entity(tracker, "order_number")
        if entity and _intent(tracker) not in INTERRUPTIONS:
            return {"order_number": entity.upper()}
        if self._asking(tracker, "order_number"):
            return {"order_number": NONE if _intent(tracker) == "deny" else _text(tracker)}
        return {}

    async def validate_order_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _checked(dispatcher, "order_number", value, is_order_number, "utter_invalid_order_number")

    async def extract_complaint_category(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._choice(tracker, "complaint_category", PHRASES, category_of, fallback="other")

    async def extract_desired_resolution(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._choice(
            tracker, "desired_resolution", RESOLUTIONS, lambda text: last_match(text, RESOLUTIONS), fallback=None
        )

    def _choice(
        self,
        tracker: Tracker,
        slot: str,
        known: dict[str, str],
        find: Callable[[str], str | None],
        fallback: str | None,
    ) -> dict[str, Any]:
        entity = _entity(tracker, slot)
        if entity is not None and (entity in known or entity == fallback):
            return {slot: entity}
        if _intent(tracker) in INTERRUPTIONS:
            return {}
        if self._asking(tracker, slot):
            return {slot: find(_text(tracker)) or fallback}
        if not tracker.get_slot(slot) or self._correcting(tracker):
            found = find(_text(tracker))
            return {slot: found} if found else {}
        return {}

    async def validate_complaint_category(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"complaint_category": value if value in PHRASES else None}

    async def validate_desired_resolution(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"desired_resolution": value if value in RESOLUTION_TEXT else None}

    async def extract_complaint_photos(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        photos = with_new_photos(tracker)
        if photos is not None:
            dispatcher.utter_message(response="utter_photo_added")
            return {"complaint_photos": photos}
        if tracker.get_slot("complaint_photos") is not None:
            return {}
        if self._asking(tracker, "complaint_photos"):
            return {"complaint_photos": NONE if _intent(tracker) == "deny" else "not a photo"}
        category = tracker.get_slot("complaint_category")
        if category is not None and category not in SHOWN_IN_PHOTOS:
            # Photos are asked for only when they show the problem; any sent anyway are still kept.
            return {"complaint_photos": NONE}
        return {}

    async def validate_complaint_photos(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == NONE or (isinstance(value, list) and value):
            return {"complaint_photos": value}
        dispatcher.utter_message(response="utter_photo_expected")
        return {"complaint_photos": None}

    async def extract_contact(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        entity = _entity(tracker, "email") or _entity(tracker, "phone")
        if entity and (self._asking(tracker, "contact") or self._correcting(tracker)):
            return {"contact": entity}
        if self._asking(tracker, "contact"):
            return {"contact": NONE if _intent(tracker) == "deny" else _text(tracker)}
        return {}

    async def validate_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _checked(dispatcher, "contact", value, is_contact, "utter_invalid_contact")

    async def extract_complaint_confirmed(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if not self._asking(tracker, "complaint_confirmed"):
            return {}
        if _intent(tracker) == "affirm":
            return {"complaint_confirmed": True}
        if _intent(tracker) == "deny":
            dispatcher.utter_message(response="utter_ask_what_to_change")
        # Anything else is a correction, taken by the other extractors; then the summary is read back again.
        return {"complaint_confirmed": None}


class ActionAskComplaintConfirmed(Action):
    """Reads the collected details back in words, not slot values, and asks to confirm."""

    def name(self) -> str:
        return "action_ask_complaint_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        order = tracker.get_slot("order_number")
        contact = tracker.get_slot("contact")
        dispatcher.utter_message(
            response="utter_ask_complaint_confirmed",
            complaint_category=CATEGORY_TEXT.get(tracker.get_slot("complaint_category"), "something else"),
            desired_resolution=RESOLUTION_TEXT.get(tracker.get_slot("desired_resolution"), "to be agreed"),
            order_number=order if order and order != NONE else "no order number",
            contact=contact if contact and contact != NONE else "this chat",
            complaint_photos=photos_text(tracker.get_slot("complaint_photos")),
        )
        return []


def photos_text(photos: Any) -> str:
    """How many photos are attached, in words."""
    count = len(photos) if isinstance(photos, list) else 0
    return {0: "none", 1: "1 photo"}.get(count, f"{count} photos")


class ActionKeepPhoto(Action):
    """A photo outside the complaint form: kept for a complaint that may follow, and the customer asked about it."""

    def name(self) -> str:
        return "action_keep_photo"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        photos = with_new_photos(tracker)
        dispatcher.utter_message(response="utter_photo_kept")
        return [SlotSet("complaint_photos", photos)] if photos else []


class ActionStopComplaint(Action):
    """Ends the form on request; the slots stay, so the complaint can be resumed later."""

    def name(self) -> str:
        return "action_stop_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_complaint_stopped")
        return [ActiveLoop(None), SlotSet("requested_slot", None)]


class ActionComplaintHandoff(Action):
    """A person asked for, or clear frustration, mid-complaint: hand over with everything collected so far."""

    def name(self) -> str:
        return "action_complaint_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        reason = reason_for(tracker)
        return hand_over(dispatcher, tracker, reason, "utter_complaint_handoff" if reason == CUSTOMER_REQUEST else None)
