"""Saved replies at the desk: /r in an agent's private chat lists, finds and sends them, and their buttons.

Every button is bound on the server (bot/storage/buttons.py keeps its payload, issued to the agent's chat only) to
the handoff it was offered for: a press sends only while that very handoff is still the pressing agent's, so a late
press never reaches another customer. What is sent goes into the customer's transcript as the agent's message.
"""

from __future__ import annotations

from bot.desk.texts import (
    NO_CUSTOMER,
    NOT_YOURS,
    PREFIX,
    SAVED_BEST,
    SAVED_GONE,
    SAVED_LATE,
    SAVED_LIST,
    SAVED_NO_MATCH,
    SAVED_NONE,
    SAVED_SENT,
    SAVED_WHICH,
)
from bot.desk.unit import Unit
from bot.storage import alerts, handoffs, saved_replies
from bot.storage.desk_models import SavedReply
from bot.storage.models import Agent, Handoff, HandoffStatus, utcnow
from bot.telegram.formatting import split_text

ACTION = "sr"  # a button's payload: desk:sr:<handoff id, 0 while the customer is to be chosen>:<saved reply id>
MOST_BUTTONS = 40


def command(u: Unit, agent_id: int, chat_id: int, words: str, replied_id: int | None) -> str | None:
    """/r, /r <exact name>, /r <words>: the list, the reply sent, or the best three; what to tell the agent besides."""
    agent = u.session.get(Agent, agent_id)
    if agent is None:
        return NO_CUSTOMER
    mine = handoffs.claimed_by(u.session, agent.id)
    chosen, problem = _whom(u, mine, chat_id, replied_id)
    if problem:
        return problem
    if u.answered():
        return None
    if not words:
        found = saved_replies.all_replies(u.session)[:MOST_BUTTONS]
        if not found:
            return SAVED_NONE
        _offer(u, agent, mine, chosen, SAVED_LIST, found)
        return None
    exact = saved_replies.by_name(u.session, words)
    if exact is not None:
        if chosen is None:
            _ask_whom(u, agent, mine, exact)
            return None
        return send(u, agent, chosen, exact)
    found = saved_replies.best(u.session, words)
    if not found:
        return SAVED_NO_MATCH.format(words=words)
    _offer(u, agent, mine, chosen, SAVED_BEST, found)
    return None


def press(u: Unit, agent_id: int, bound: str) -> str | None:
    """A saved reply's button: sent to the handoff it was offered for, only while that handoff is still the agent's;
    a button offered before the customer was chosen asks which customer."""
    handoff_part, _, reply_part = bound.partition(":")
    if not (handoff_part.isascii() and handoff_part.isdigit() and reply_part.isascii() and reply_part.isdigit()):
        return "Unknown action."
    agent, reply = u.session.get(Agent, agent_id), u.session.get(SavedReply, int(reply_part))
    if agent is None or reply is None:
        return SAVED_GONE
    if int(handoff_part) == 0:
        if u.answered():
            return None
        mine = handoffs.claimed_by(u.session, agent.id)
        if not mine:
            return NO_CUSTOMER
        _ask_whom(u, agent, mine, reply)
        return None
    handoff = u.session.get(Handoff, int(handoff_part))
    if handoff is None or handoff.status is not HandoffStatus.CLAIMED or handoff.agent_id != agent.id:
        return SAVED_LATE
    if u.answered():
        return None
    return send(u, agent, handoff, reply)


def send(u: Unit, agent: Agent, handoff: Handoff, reply: SavedReply) -> str:
    """The reply, its placeholders filled, to the handoff's customer as the agent's message (recorded in the
    transcript like any), counted as one more use; the agent's confirmation."""
    conversation, ticket = handoff.conversation, handoff.ticket
    values = {
        "first_name": conversation.customer.first_name or "there",
        "ticket": ticket.reference,
        "agent": agent.first_name,
    }
    text = saved_replies.render(reply.text, values)
    meta = {"agent_id": agent.id, "agent_name": agent.first_name, "saved_reply": reply.name}
    for part in split_text(f"{agent.first_name}: {text}"):
        u.queue(conversation, conversation.chat_id, part, dict(meta), kind="agent")
    if handoff.first_reply_at is None:
        handoff.first_reply_at = utcnow()
    alerts.agent_replied(handoff)
    saved_replies.used(u.session, reply.id)
    return SAVED_SENT.format(name=reply.name, customer=u.name(conversation), ticket=ticket.reference)


def _whom(u: Unit, mine: list[Handoff], chat_id: int, replied_id: int | None) -> tuple[Handoff | None, str]:
    """The handoff a reply is for: the customer whose message the agent answered, or their only one; None (and no
    problem) when the agent helps several and answered none of them."""
    if replied_id is not None:
        relayed = handoffs.relayed_message(u.session, chat_id=chat_id, telegram_message_id=replied_id)
        if relayed is not None:
            match = next((h for h in mine if h.conversation_id == relayed.conversation_id), None)
            return (match, "") if match is not None else (None, NOT_YOURS)
    if not mine:
        return None, NO_CUSTOMER
    return (mine[0], "") if len(mine) == 1 else (None, "")


def _offer(
    u: Unit, agent: Agent, mine: list[Handoff], chosen: Handoff | None, text: str, found: list[SavedReply]
) -> None:
    """Buttons for these replies, each bound to the chosen handoff (or to none yet: the press asks which)."""
    bound = chosen.id if chosen is not None else 0
    choices = [(_title(r), f"{PREFIX}{ACTION}:{bound}:{r.id}") for r in found]
    where = chosen if chosen is not None else mine[0]
    who = u.name(chosen.conversation) if chosen is not None else "the customer you choose next"
    u.to_agent(agent, where.conversation, text.format(customer=who), choices)


def _ask_whom(u: Unit, agent: Agent, mine: list[Handoff], reply: SavedReply) -> None:
    """Which customer a reply is for: one button per customer the agent is helping, each bound to its handoff."""
    choices = [
        (f"{u.name(h.conversation)} · {h.ticket.reference}", f"{PREFIX}{ACTION}:{h.id}:{reply.id}") for h in mine
    ]
    u.to_agent(agent, mine[0].conversation, SAVED_WHICH.format(name=reply.name), choices)


def _title(reply: SavedReply) -> str:
    return f"{reply.category} · {reply.name}" if reply.category else reply.name
