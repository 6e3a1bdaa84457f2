"""sendLocation, sendVenue and sendContact: messages that carry no file."""

from bot.emulator.errors import bad_request
from bot.emulator.outgoing import placement, reply_markup
from bot.emulator.params import Params
from bot.emulator.sender import Call, Handler, Sender
from bot.emulator.state import JSON

# Optional Location fields a bot may send, with their types.
_LOCATION_OPTIONS = {
    "horizontal_accuracy": float,
    "live_period": int,
    "heading": int,
    "proximity_alert_radius": int,
}
_VENUE_OPTIONS = ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type")


def _required_float(params: Params, name: str) -> float:
    value = params.get_float(name)
    if value is None:
        raise bad_request(f"{name} is empty")
    return value


def _required_str(params: Params, name: str) -> str:
    value = params.get_str(name)
    if not value:
        raise bad_request(f"{name} is empty")
    return value


def location(params: Params) -> JSON:
    """The Location object of a sendLocation or sendVenue request."""
    latitude, longitude = _required_float(params, "latitude"), _required_float(params, "longitude")
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        raise bad_request("wrong latitude or longitude specified")
    found: JSON = {"latitude": latitude, "longitude": longitude}
    for name, kind in _LOCATION_OPTIONS.items():
        value = params.get_float(name)
        if value is not None:
            found[name] = kind(value)
    return found


def venue(params: Params) -> JSON:
    """The Venue object of a sendVenue request."""
    place: JSON = {
        "location": location(params),
        "title": _required_str(params, "title"),
        "address": _required_str(params, "address"),
    }
    for name in _VENUE_OPTIONS:
        if params.get_str(name):
            place[name] = params.get_str(name)
    return place


def contact(params: Params) -> JSON:
    """The Contact object of a sendContact request."""
    card: JSON = {
        "phone_number": _required_str(params, "phone_number"),
        "first_name": _required_str(params, "first_name"),
    }
    for name in ("last_name", "vcard"):
        if params.get_str(name):
            card[name] = params.get_str(name)
    return card


class PlaceMethods:
    """The Bot API methods that send locations, venues and contacts."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    def methods(self) -> dict[str, Handler]:
        """Method names and their handlers."""
        return {"sendLocation": self.send_location, "sendVenue": self.send_venue, "sendContact": self.send_contact}

    async def _send(self, call: Call, content: JSON) -> JSON:
        chat = self.sender.writable_chat(call.params)
        markup, echo = reply_markup(call.params)
        where = placement(call.params, chat)
        message = self.sender.emit(call, chat, where, content, echo)
        self.sender.log_sent(call, message, markup)
        return message

    async def send_location(self, call: Call) -> JSON:
        """sendLocation."""
        return await self._send(call, {"location": location(call.params)})

    async def send_venue(self, call: Call) -> JSON:
        """sendVenue: the message carries the venue and, as the Bot API keeps it, its location."""
        place = venue(call.params)
        return await self._send(call, {"venue": place, "location": place["location"]})

    async def send_contact(self, call: Call) -> JSON:
        """sendContact."""
        return await self._send(call, {"contact": contact(call.params)})
