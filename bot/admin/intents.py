"""Intents: what customers say. The list (with how well the newest model understands each), new questions and
intents, and one intent's page with its examples, rename and delete."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.orm import Session

from bot.admin import understood
from bot.admin.evaluation import newest_evaluated
from bot.admin.pages import deps, done, form, render, url, who
from bot.content import current, edits, understanding
from bot.content.edits import FAQ_PREFIX, ContentInUse
from bot.content.files import Content, ContentError
from bot.content.usages import usages
from bot.storage.models import ModelVersion

NAV = ("Intents", "/intents")
routes = web.RouteTableDef()


def _key(example: str) -> str:
    return " ".join(example.split()).lower()


def elsewhere(content: Content, name: str) -> dict[str, list[str]]:
    """For each example of intent `name` (by its normalized text), the other intents that have it too."""
    mine = {_key(e) for e in content.intents[name].examples}
    found: dict[str, list[str]] = {}
    for other in content.intents.values():
        if other.name != name:
            for example in other.examples:
                if _key(example) in mine:
                    found.setdefault(_key(example), []).append(other.name)
    return found


def lines(text: str) -> list[str]:
    """A textarea's lines, blank ones dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def answer_of(content: Content, name: str) -> str:
    """A FAQ's first answer text ('' for other intents)."""
    response = content.responses.get(edits.faq_response(name) or "")
    return str(response.variations[0].get("text", "")) if response and response.variations else ""


def _listing(session: Session) -> tuple[Content, ModelVersion | None]:
    """The content, and the newest version with per-intent figures."""
    return current.load(session), newest_evaluated(session)


@routes.get("/intents")
async def intent_list(request: web.Request) -> web.Response:
    """Every intent with its example count, its answer (FAQs) and its accuracy in the newest evaluation."""
    content, evaluated = await deps(request).sessions.read(_listing)
    figures = ((evaluated.metrics or {}).get("intents") or {}) if evaluated else {}
    rows = [
        {
            "name": i.name,
            "examples": len(i.examples),
            "faq": i.name.startswith(FAQ_PREFIX),
            "answer": answer_of(content, i.name),
            "accuracy": (figures.get(i.name) or {}).get("accuracy"),
        }
        for i in content.intents.values()
    ]
    rows.sort(key=lambda row: (not row["faq"], row["name"]))
    return await render(request, "intents.html", title="Intents", rows=rows, evaluated=evaluated)


@routes.post("/intents")
async def add_intent(request: web.Request) -> web.Response:
    """A new question (FAQ with its answer) or a plain intent."""
    data = await form(request)
    question = data.get("kind", "question") == "question"
    name = data.get("name", "").strip().lower().replace(" ", "_")
    if question and name and not name.startswith(FAQ_PREFIX):
        name = FAQ_PREFIX + name
    examples = lines(data.get("examples", ""))
    try:
        content = await deps(request).sessions.run(
            _add, name, examples, who(request).username, data.get("answer", "") if question else None
        )
    except ContentError as exc:
        return await done(request, url("/intents"), f"Nothing was added: {exc}.", "error")
    warnings = [
        f"“{e}” is also an example of {', '.join(o)}: the bot may confuse them."
        for e, o in elsewhere(content, name).items()
    ]
    if not question:
        warnings.append("The bot says nothing for a plain intent until a rule or story uses it.")
    return await done(
        request,
        url("/intent", name=name),
        f"Added {name}. Train and put the new model live for the bot to understand it.",
        warnings=warnings,
    )


def _add(session: Session, name: str, examples: list[str], who: str, answer: str | None) -> Content:
    """Add the intent; the content with it."""
    edits.add_intent(session, name, examples, who, answer=answer)
    return current.load(session)


@routes.get("/intent")
async def intent_page(request: web.Request) -> web.Response:
    """One intent: its examples with warnings, forms to add, edit, delete, rename."""
    name = request.query.get("name", "")
    content = await deps(request).sessions.read(current.load)
    uses = usages(content, name) if name in content.intents else []
    if name not in content.intents:
        return await render(
            request,
            "missing.html",
            status=404,
            title="Not found",
            what=f"There is no intent {name}.",
            back=url("/intents"),
        )
    intent = content.intents[name]
    return await render(
        request,
        "intent.html",
        check=await understood.check(content, name) if intent.examples else None,
        understanding=understanding,
        title=name,
        intent=intent,
        elsewhere=elsewhere(content, name),
        key=_key,
        answer=answer_of(content, name),
        faq=name.startswith(FAQ_PREFIX),
        uses=uses,
    )


@routes.post("/intent/examples")
async def edit_examples(request: web.Request) -> web.Response:
    """Add (one or many, one a line), change or delete an example."""
    data = await form(request)
    name, action = data.get("name", ""), data.get("action", "")
    back = url("/intent", name=name)
    try:
        message, warnings = await deps(request).sessions.run(_edit_examples, name, action, data, who(request).username)
    except ContentError as exc:
        return await done(request, back, f"Nothing was changed: {exc}.", "error")
    return await done(request, back, message, warnings=warnings)


def _edit_examples(session: Session, name: str, action: str, data: dict[str, str], who: str) -> tuple[str, list[str]]:
    """The form's change to the intent's examples: what to say, and warnings."""
    content = current.load(session)
    if name not in content.intents:
        raise ContentError(f"There is no intent {name}")
    examples = list(content.intents[name].examples)
    message, warnings = _apply(examples, action, data)
    edits.set_examples(session, name, examples, who)
    content.intents[name].examples = edits.clean_examples(examples)
    warnings += [
        f"“{e}” is also an example of {', '.join(o)}: the bot may confuse them."
        for e, o in elsewhere(content, name).items()
        if e in {_key(x) for x in _touched(action, data)}
    ]
    return message, warnings


def _touched(action: str, data: dict[str, str]) -> list[str]:
    return lines(data.get("examples", "")) if action == "add" else [data.get("text", "")]


def _apply(examples: list[str], action: str, data: dict[str, str]) -> tuple[str, list[str]]:
    """Change `examples` in place as the form asks; returns what to say and warnings."""
    if action == "add":
        new = lines(data.get("examples", ""))
        if not new:
            raise ContentError("Write at least one example, one a line")
        known = {_key(e) for e in examples}
        repeated = [e for e in new if _key(e) in known]
        examples += new
        added = len(edits.clean_examples(examples)) - len(known)
        return (
            f"Added {added} example{'s' if added != 1 else ''}.",
            [f"“{e}” was already an example here; it is kept once." for e in repeated],
        )
    index = int(data.get("index", "-1")) if data.get("index", "").isdigit() else -1
    if not 0 <= index < len(examples) or examples[index] != data.get("original"):
        raise ContentError("The examples changed meanwhile; look at them again")
    if action == "delete":
        del examples[index]
        return "Deleted the example.", []
    if action == "edit":
        text = " ".join(data.get("text", "").split())
        if not text:
            raise ContentError("An example cannot be empty; delete it instead")
        duplicate = any(_key(e) == _key(text) for i, e in enumerate(examples) if i != index)
        examples[index] = text
        return "Changed the example.", ["That example was already here; it is kept once."] if duplicate else []
    raise ContentError("Unknown request")


@routes.post("/intent/rename")
async def rename(request: web.Request) -> web.Response:
    """A new name (a FAQ's answer follows it)."""
    data = await form(request)
    old, new = data.get("name", ""), data.get("new_name", "").strip().lower().replace(" ", "_")
    if old.startswith(FAQ_PREFIX) and new and not new.startswith(FAQ_PREFIX):
        new = FAQ_PREFIX + new
    try:
        await deps(request).sessions.run(edits.rename_intent, old, new, who(request).username)
    except ContentInUse as exc:
        return await _in_use(request, old, exc, "renamed")
    except ContentError as exc:
        return await done(request, url("/intent", name=old), f"Not renamed: {exc}.", "error")
    return await done(request, url("/intent", name=new), f"Renamed {old} to {new}. Train for the bot to know it.")


@routes.get("/intent/delete")
async def confirm_delete(request: web.Request) -> web.Response:
    """Are you sure?"""
    name = request.query.get("name", "")
    content = await deps(request).sessions.read(current.load)
    if name not in content.intents:
        return await render(
            request,
            "missing.html",
            status=404,
            title="Not found",
            what=f"There is no intent {name}.",
            back=url("/intents"),
        )
    return await render(
        request,
        "confirm_delete.html",
        title=f"Delete {name}?",
        intent=content.intents[name],
        answer=answer_of(content, name),
        uses=usages(content, name),
    )


@routes.post("/intent/delete")
async def delete(request: web.Request) -> web.Response:
    """Delete an intent nothing uses (a FAQ's answer goes with it)."""
    name = (await form(request)).get("name", "")
    try:
        await deps(request).sessions.run(edits.delete_intent, name, who(request).username)
    except ContentInUse as exc:
        return await _in_use(request, name, exc, "deleted")
    except ContentError as exc:
        return await done(request, url("/intents"), f"Not deleted: {exc}.", "error")
    return await done(request, url("/intents"), f"Deleted {name}. Train and put live for the bot to forget it.")


async def _in_use(request: web.Request, name: str, exc: ContentInUse, what: str) -> web.Response:
    return await render(
        request, "in_use.html", status=409, title=f"{name} cannot be {what}", name=name, uses=exc.uses, what=what
    )
