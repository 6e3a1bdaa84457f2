"""Responses: what the bot says. The list, and one response's texts and buttons with a preview as the customer
sees it in Telegram. A saved response is said from the next message on (no training needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.admin.pages import deps, done, form, render, url, who
from bot.content import current, edits
from bot.content.files import ContentError, Response
from bot.content.nlg import RenderError
from bot.content.nlg import render as say

NAV = ("Responses", "/responses")
routes = web.RouteTableDef()
SAMPLES = {  # what the preview puts in a response's {placeholders}
    "first_name": "Maya",
    "ticket_id": "T000123",
    "order_number": "A12345",
    "contact": "maya@example.com",
    "complaint_category": "damaged",
    "complaint_category_text": "your item arriving damaged",
    "complaint_problem_text": "your item arriving damaged",
    "complaint_description": "The lid was cracked",
    "complaint_photos": "1 photo",
    "desired_resolution": "a refund",
    "ticket_status": "in progress",
    "count": "2",
}
SPARE = 1  # empty variations offered for adding one


class Samples(dict[str, str]):
    """Sample values, and `[name]` for a placeholder with no sample."""

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(key, f"[{key}]")


def preview(variations: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each variation as the customer would get it: text with samples filled in, buttons below."""
    shown = []
    for variation in variations:
        if not str(variation.get("text", "")).strip():
            continue
        try:
            message = say(Response("preview", [dict(variation)]), Samples(SAMPLES), {}, choose=lambda v: v[0])
        except RenderError as exc:
            message = {"text": f"(cannot be shown: {exc})"}
        shown.append({**message, "condition": variation.get("condition"), "channel": variation.get("channel")})
    return shown


def buttons_text(variation: Mapping[str, Any]) -> str:
    """A variation's buttons as the form edits them: `Title | payload`, one a line (as typed, for a refused draft)."""
    if "typed_buttons" in variation:
        return str(variation["typed_buttons"])
    return "\n".join(f"{b.get('title', '')} | {b.get('payload', '')}" for b in variation.get("buttons") or [])


def parse_buttons(text: str) -> list[dict[str, str]]:
    """`Title | payload` lines back into buttons (ContentError for a line without both)."""
    buttons = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        title, bar, payload = line.partition("|")
        if not bar or not title.strip() or not payload.strip():
            raise ContentError(
                f"Button line {number} needs a title, a | and what it says, e.g. Talk to a person | /request_human"
            )
        buttons.append({"title": title.strip(), "payload": payload.strip()})
    return buttons


def from_form(data: Mapping[str, str], old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The variations as posted; what the form does not edit (conditions, images, channels) is kept."""
    variations = []
    for index in range(int(data.get("count", "0") or 0)):
        kept = {k: v for k, v in (old[index] if index < len(old) else {}).items() if k not in ("text", "buttons")}
        variation = {**kept, "text": data.get(f"text_{index}", "").replace("\r\n", "\n").strip()}
        buttons = parse_buttons(data.get(f"buttons_{index}", ""))
        if buttons:
            variation["buttons"] = buttons
        variations.append(variation)
    return variations


@routes.get("/responses")
async def response_list(request: web.Request) -> web.Response:
    """Every response with its first text."""
    content = await deps(request).sessions.read(current.load)
    return await render(request, "responses.html", title="Responses", responses=list(content.responses.values()))


@routes.get("/response")
async def response_page(request: web.Request) -> web.Response:
    """One response's texts and buttons, and its preview."""
    name = request.query.get("name", "")
    response = (await deps(request).sessions.read(current.load)).responses.get(name)
    if response is None:
        return await render(
            request,
            "missing.html",
            status=404,
            title="Not found",
            what=f"There is no response {name}.",
            back=url("/responses"),
        )
    return await _editor(request, name, response.variations)


async def _editor(
    request: web.Request,
    name: str,
    variations: list[dict[str, Any]],
    status: int = 200,
    draft: bool = False,
    messages: list[dict[str, str]] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> web.Response:
    """The edit form (`rows`: what was typed, when it is shown again) beside the preview of `variations`."""
    rows = rows or [*variations, *({"text": ""} for _ in range(SPARE))]
    return await render(
        request,
        "response.html",
        status=status,
        title=name,
        name=name,
        rows=rows,
        buttons_text=buttons_text,
        preview=preview(variations),
        draft=draft,
        messages=messages or [],
        samples=SAMPLES,
    )


@routes.post("/response")
async def save(request: web.Request) -> web.Response:
    """Preview a draft, or save it (live for the bot's next message)."""
    data = await form(request)
    name = data.get("name", "")
    old = (await deps(request).sessions.read(current.load)).responses.get(name)
    if old is None:
        return await done(request, url("/responses"), f"There is no response {name}.", "error")
    try:
        variations = from_form(data, old.variations)
        if data.get("action") == "preview":
            return await _editor(
                request,
                name,
                variations,
                draft=True,
                messages=[{"kind": "warning", "text": "This is a preview: nothing is saved yet."}],
            )
        await deps(request).sessions.run(edits.set_response, name, variations, who(request).username)
    except ContentError as exc:
        typed = [
            {"text": data.get(f"text_{i}", ""), "typed_buttons": data.get(f"buttons_{i}", "")}
            for i in range(int(data.get("count", "0") or 0))
        ]
        return await _editor(
            request,
            name,
            old.variations,
            status=400,
            rows=typed,
            messages=[{"kind": "error", "text": f"Not saved: {exc}. Correct it and save again."}],
        )
    return await done(request, url("/response", name=name), f"Saved {name}. The bot says it from the next message on.")
