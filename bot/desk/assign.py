"""Who gets a request for a person: with AUTO_ASSIGN, the next free agent in turn, at once; without it, one online agent
at a time is offered it in private with a Claim button, the next after OFFER_SECONDS. The round robin's turn is the
agent given (or offered) a request longest ago; an agent is free when online with fewer than MAX_CHATS_PER_AGENT
conversations. A request is never offered or assigned twice to one agent (`Handoff.offered_to`), so a card never
reaches a private chat twice and a passed request does not come straight back.

Out of business hours nothing is assigned or offered: requests wait in the queue (and their topic) and go out in
the queue's order once the team's hours begin; /next and Claim work at any time.

Each is a step: a plain function of a `Unit` (bot/desk/unit.py); `assign_round` runs from the desk's round.
"""

from __future__ import annotations

from datetime import timedelta

from bot import replies
from bot.desk import cards, lifecycle
from bot.desk.texts import (
    ASSIGNED_CARD,
    ASSIGNED_NOTICE,
    NEXT_CLAIMED,
    NEXT_EMPTY,
    OFFERED_CARD,
    PASSED_AGENT,
    PASSED_NOTICE,
    PASSED_QUEUE,
    PASSED_TO,
    PREFIX,
    START_PRIVATE_FIRST,
)
from bot.desk.unit import Unit
from bot.storage import handoffs, presence, transcript
from bot.storage.models import Agent, Handoff, HandoffStatus, TicketStatus, utcnow

TURN_STEP = timedelta(microseconds=1)  # each turn strictly after the last one, even if the clock did not move


def on_request(u: Unit, handoff: Handoff, preface: str = "") -> bool:
    """A new request (in its escalation's step): assigned at once (True), or offered to one online agent. `preface`
    goes before the introduction (the bot's apology when it could not answer)."""
    if not u.settings.business_hours.is_open(utcnow()):
        return False
    free = presence.free_agents(u.session, u.settings.max_chats_per_agent, handoff.offered_to or ())
    if not free:
        return False
    if u.settings.auto_assign:
        return give(u, handoff, free[0], preface=preface)
    offer(u, handoff, free[0])
    return False


def assign_round(u: Unit) -> None:
    """The queue in its order (priority, then wait), in business hours: each waiting request to the next free agent
    who has not had it (AUTO_ASSIGN), or offered to the next one once the last offer is OFFER_SECONDS old."""
    now = utcnow()
    if not u.settings.business_hours.is_open(now):
        return
    limit, every = u.settings.max_chats_per_agent, timedelta(seconds=u.settings.offer_seconds)
    free = presence.free_agents(u.session, limit)
    for handoff in handoffs.queued(u.session):
        if not free:
            return
        if not u.settings.auto_assign and handoff.offered_at is not None and now - handoff.offered_at < every:
            continue
        chosen = next((a for a in free if a.id not in (handoff.offered_to or ())), None)
        if chosen is None:
            continue
        if u.settings.auto_assign:
            give(u, handoff, chosen)
            free = presence.free_agents(u.session, limit)
        else:
            offer(u, handoff, chosen)
            free = [a for a in free if a.id != chosen.id] + [chosen]  # the one just offered waits for their turn


def give(u: Unit, handoff: Handoff, agent: Agent, passed_by: Agent | None = None, preface: str = "") -> bool:
    """Assigned: claimed for the agent, the customer introduced as on a claim, the card in the agent's private chat as
    one message (with Pass); False if someone claimed it first."""
    if not handoffs.claim(u.session, handoff.id, agent):
        return False
    _took_turn(u, handoff, agent)
    conversation, ticket = handoff.conversation, handoff.ticket
    u.set_status(conversation, ticket, TicketStatus.IN_PROGRESS)
    if passed_by is None:
        u.tell(conversation, preface + replies.CLAIMED.format(agent=agent.first_name))
        u.to_topic(conversation, ticket, ASSIGNED_NOTICE.format(agent=agent.first_name))
    else:
        u.tell(conversation, replies.TRANSFERRED.format(agent=agent.first_name))
    header = ASSIGNED_CARD.format(
        name=u.name(conversation),
        ticket=ticket.reference,
        priority=ticket.priority.value.lower(),
        reason=cards.REASONS.get(handoff.reason, handoff.reason),
    )
    lifecycle.introduce(u, handoff, agent, header=header, extra=(("Pass", f"{PREFIX}pass:{handoff.id}"),))
    return True


def offer(u: Unit, handoff: Handoff, agent: Agent) -> None:
    """The card in one online agent's private chat, with Claim (the claim path of the topic's button)."""
    _took_turn(u, handoff, agent)
    conversation, ticket = handoff.conversation, handoff.ticket
    lines = cards.transcript(
        transcript.messages(u.session, conversation.chat_id),
        conversation.customer.first_name if conversation.customer else "",
    )
    text = OFFERED_CARD.format(
        name=u.name(conversation),
        ticket=ticket.reference,
        priority=ticket.priority.value.lower(),
        reason=cards.REASONS.get(handoff.reason, handoff.reason),
        recent="\n".join(cards.clip(line) for line in lines[-lifecycle.INTRO_LINES :]),
        seconds=int(u.settings.offer_seconds),
    )
    u.to_agent(agent, conversation, text[:4096], [("Claim", f"{PREFIX}claim:{ticket.id}")])


def _took_turn(u: Unit, handoff: Handoff, agent: Agent) -> None:
    """The agent had their turn now; the request is never theirs automatically again."""
    now = utcnow()
    latest = presence.latest_turn(u.session)
    agent.last_assigned_at = max(now, latest + TURN_STEP) if latest is not None else now
    handoff.offered_to = [*(handoff.offered_to or []), agent.id]
    handoff.offered_at = now


def pass_back(u: Unit, handoff_id: int, agent_id: int) -> str:
    """The holder passes a request back: to the next free agent who has not had it, else to the queue."""
    handoff = handoffs.load(u.session, handoff_id)
    if handoff is None or handoff.status is not HandoffStatus.CLAIMED or handoff.agent_id != agent_id:
        return lifecycle.NOT_YOURS_TO_PASS
    agent, conversation, ticket = u.session.get(Agent, agent_id), handoff.conversation, handoff.ticket
    if agent is None:
        return lifecycle.NOT_YOURS_TO_PASS
    offered = handoff.offered_to or []
    if agent_id not in offered:
        handoff.offered_to = [*offered, agent_id]
    handoffs.requeue(u.session, handoff)
    u.session.flush()
    name = u.name(conversation)
    hours_open = u.settings.business_hours.is_open(utcnow())
    free = presence.free_agents(u.session, u.settings.max_chats_per_agent, handoff.offered_to) if hours_open else []
    given = u.settings.auto_assign and bool(free) and give(u, handoff, free[0], passed_by=agent)
    if given:
        where = PASSED_TO.format(agent=free[0].first_name)
    else:
        u.tell(conversation, replies.BACK_IN_QUEUE)
        where = PASSED_QUEUE
        if free:  # without auto-assignment: offered to the next online agent in turn
            offer(u, handoff, free[0])
    u.to_topic(
        conversation,
        ticket,
        PASSED_NOTICE.format(old=agent.first_name, name=name, where=where),
        claim=None if given else handoff,
    )
    u.to_agent(agent, conversation, PASSED_AGENT.format(name=name, ticket=ticket.reference, where=where))
    return ""


def claim_next(u: Unit, agent_id: int) -> str:
    """/next: the agent claims the top of the queue (the Claim button's path); what to tell them."""
    for handoff in handoffs.queued(u.session):
        problem = lifecycle.claim(u, handoff.ticket_id, agent_id)
        if problem is None:
            return NEXT_CLAIMED.format(ticket=handoff.ticket.reference, name=u.name(handoff.conversation))
        if problem == START_PRIVATE_FIRST:
            return problem
    return NEXT_EMPTY
