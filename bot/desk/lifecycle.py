"""A handoff's life on the agents' side: claimed, closed or returned to the bot, passed on, released, reopened.
Each is a step: a plain function of a `Unit` that returns what to tell the agent (None when all went well)."""

from __future__ import annotations

from datetime import timedelta

from bot import metrics, replies
from bot.config import Settings
from bot.desk import briefing, cards, waits
from bot.desk.texts import (
    ALREADY_CLAIMED,
    ASSIGNED_LINE,
    CLAIMED_INTRO,
    CLAIMED_NOTICE,
    CLOSED_AGENT,
    CLOSED_NOTICE,
    CSAT_PREFIX,
    PREFIX,
    RELEASED_NOTICE,
    REOPEN_USAGE,
    REOPENED_AGENT,
    REOPENED_BY,
    REOPENED_NOTICE,
    REOPENED_TICKET,
    REQUEUED_NOTICE,
    RETURNED_AGENT,
    RETURNED_NOTICE,
    START_PRIVATE_FIRST,
    TRANSFER_CHOOSE,
    TRANSFER_NOBODY,
    TRANSFERRED_AGENT,
    TRANSFERRED_NOTICE,
)
from bot.desk.unit import DONE, Unit, record_number, thread
from bot.storage import alerts, blocks, handoffs, memory, transcript
from bot.storage.models import Agent, Conversation, Handoff, HandoffStatus, Ticket, TicketStatus, utcnow

ENDED = "This conversation has already ended."
INTRO_LINES = 5  # the last messages in the claiming agent's intro; the whole conversation follows as a file
NOT_YOURS_TO_PASS = "This conversation isn't yours to pass on any more."
RELEASE_USAGE = "Usage: /release T000001, for a ticket an agent is handling."


def may_reopen(settings: Settings, last: Handoff | None) -> bool:
    """Whether a message from the customer now reopens `last`, their conversation's latest handoff: it was closed
    within REOPEN_MINUTES and not rated."""
    window = timedelta(minutes=settings.reopen_minutes)
    return (
        settings.agent_chat_id is not None
        and last is not None
        and last.status is HandoffStatus.CLOSED
        and last.csat is None
        and not (last.resolution or "").startswith(blocks.RESOLUTION)  # closed by a block: stays closed
        and utcnow() - last.closed_at <= window
    )


def claim(u: Unit, ticket_id: int, agent_id: int) -> str | None:
    """An agent takes a ticket: the customer is told who is helping them; the conversation moves to the agent's chat."""
    agent = u.session.get(Agent, agent_id)
    if agent.private_chat_id is None:
        return START_PRIVATE_FIRST
    ticket = u.session.get(Ticket, ticket_id)
    if ticket is None or ticket.conversation_id is None:
        return "This ticket's customer is no longer on record."
    conversation = ticket.conversation
    handoff = handoffs.active_for(u.session, conversation.id)
    if handoff is None:
        # A complaint no one asked a person for yet: the agent reaches out.
        handoff, _ = handoffs.open_handoff(
            u.session, conversation=conversation, ticket=ticket, reason="agent", context={}
        )
        metrics.current().handoff("agent")
    if handoff.ticket_id != ticket.id:
        return f"This customer is being helped on {handoff.ticket.reference}."
    if not handoffs.claim(u.session, handoff.id, agent):
        return ALREADY_CLAIMED.format(agent=handoff.agent.first_name if handoff.agent else "someone else")
    u.set_status(conversation, ticket, TicketStatus.IN_PROGRESS)
    u.tell(conversation, replies.CLAIMED.format(agent=agent.first_name))
    u.to_topic(conversation, ticket, CLAIMED_NOTICE.format(agent=agent.first_name))
    introduce(u, handoff, agent)
    return None


def finish(
    u: Unit,
    handoff_id: int,
    agent_id: int,
    status: HandoffStatus,
    note: str | None = None,
) -> tuple[str | None, str | None]:
    """Close (rating and next-day check follow) or hand back to the bot: what to tell the agent, and the Rasa
    conversation to start afresh once this has committed."""
    handoff = handoffs.load(u.session, handoff_id)
    if handoff is None or handoff.status is not HandoffStatus.CLAIMED:
        return ENDED, None
    if handoff.agent_id != agent_id:
        return "This conversation is with another agent now.", None  # an old button of a previous holder
    agent, conversation, ticket = handoff.agent, handoff.conversation, handoff.ticket
    closing = status is HandoffStatus.CLOSED
    followup = timedelta(hours=u.settings.followup_hours) if closing else None
    handoffs.finish(u.session, handoff, status, resolution=note, followup_after=followup)
    if closing:
        u.tell(conversation, replies.CLOSED.format(agent=agent.first_name))
        u.tell(conversation, replies.CSAT_QUESTION, [(str(n), f"{CSAT_PREFIX}{handoff.id}:{n}") for n in range(1, 6)])
        u.to_topic(
            conversation,
            ticket,
            CLOSED_NOTICE.format(agent=agent.first_name, note=f": {cards.clip(note)}" if note else ""),
        )
        u.set_status(conversation, ticket, TicketStatus.RESOLVED)
        told = CLOSED_AGENT.format(ticket=ticket.reference)
    else:
        u.tell(conversation, replies.RETURNED.format(ticket=ticket.reference))
        u.to_topic(conversation, ticket, RETURNED_NOTICE.format(agent=agent.first_name, name=u.name(conversation)))
        told = RETURNED_AGENT.format(name=u.name(conversation), ticket=ticket.reference)
    u.to_agent(agent, conversation, told)
    return None, conversation.sender_id


def offer_transfer(u: Unit, handoff_id: int, agent_id: int, chat_id: int) -> str | None:
    """Buttons in the agent's chat: each other agent who can take the conversation, and the queue."""
    handoff = handoffs.load(u.session, handoff_id)
    if handoff is None or handoff.status is not HandoffStatus.CLAIMED or handoff.agent_id != agent_id:
        return NOT_YOURS_TO_PASS
    others = [a for a in handoffs.agents_with_chats(u.session) if a.id != agent_id]
    name = u.name(handoff.conversation)
    choices = [(a.first_name or f"agent {a.id}", f"{PREFIX}transfer:{handoff.id}:{a.id}") for a in others]
    choices.append(("Back to the queue", f"{PREFIX}transfer:{handoff.id}:0"))
    text = (
        TRANSFER_CHOOSE.format(name=name, ticket=handoff.ticket.reference)
        if others
        else TRANSFER_NOBODY.format(name=name)
    )
    u.queue(handoff.conversation, chat_id, text, u.buttons(chat_id, choices))
    return None


def transfer(u: Unit, handoff_id: int, agent_id: int, to_agent_id: int | None) -> str | None:
    """The holder passes the conversation to another agent, or back to the queue for anyone to claim."""
    handoff = handoffs.load(u.session, handoff_id)
    if handoff is None or handoff.status is not HandoffStatus.CLAIMED or handoff.agent_id != agent_id:
        return NOT_YOURS_TO_PASS
    target = u.session.get(Agent, to_agent_id) if to_agent_id else None
    if to_agent_id and (target is None or target.private_chat_id is None):
        return "That agent can't take conversations right now."
    agent, conversation, ticket = handoff.agent, handoff.conversation, handoff.ticket
    name = u.name(conversation)
    if target is not None:
        handoffs.assign(handoff, target)
        alerts.new_holder(handoff)
        u.tell(conversation, replies.TRANSFERRED.format(agent=target.first_name))
        introduce(u, handoff, target)
        u.to_topic(conversation, ticket, TRANSFERRED_NOTICE.format(old=agent.first_name, new=target.first_name))
        told = TRANSFERRED_AGENT.format(name=name, ticket=ticket.reference, new=target.first_name)
    else:
        handoffs.requeue(u.session, handoff)
        u.tell(conversation, replies.BACK_IN_QUEUE)
        u.to_topic(conversation, ticket, REQUEUED_NOTICE.format(old=agent.first_name, name=name), claim=handoff)
        told = TRANSFERRED_AGENT.format(name=name, ticket=ticket.reference, new="the queue")
    u.to_agent(agent, conversation, told)
    return None


def release(u: Unit, reference: str, admin_name: str) -> str | None:
    """A group admin puts a claimed conversation back in the queue (its agent went off shift, say)."""
    ticket = u.session.get(Ticket, number) if (number := record_number(reference[1:])) else None
    handoff = handoffs.for_ticket(u.session, ticket.id) if ticket else None
    if handoff is None or handoff.status is not HandoffStatus.CLAIMED:
        return RELEASE_USAGE
    holder = handoff.agent
    requeue(u, handoff, admin=admin_name, holder=holder.first_name if holder else "its agent")
    return None


def requeue(u: Unit, handoff: Handoff, *, admin: str, holder: str) -> None:
    """Back in the queue for the others to claim, the customer and the team told."""
    conversation, ticket = handoff.conversation, handoff.ticket
    handoffs.requeue(u.session, handoff)
    u.tell(conversation, replies.BACK_IN_QUEUE)
    u.to_topic(
        conversation, ticket, RELEASED_NOTICE.format(admin=admin, ticket=ticket.reference, agent=holder), claim=handoff
    )


def reopen(u: Unit, conversation: Conversation, last: Handoff) -> Handoff:
    """The closed ticket opens again, with the agent who closed it when they can take it, else in the queue."""
    ticket = last.ticket
    handoff, _ = handoffs.open_handoff(
        u.session, conversation=conversation, ticket=ticket, reason="reopened", context={}
    )
    metrics.current().handoff("reopened")
    u.set_status(conversation, ticket, TicketStatus.IN_PROGRESS)
    agent = last.agent
    if agent is not None and agent.private_chat_id and handoffs.claim(u.session, handoff.id, agent):
        u.tell(conversation, replies.REOPENED.format(agent=agent.first_name))
        u.to_agent(agent, conversation, REOPENED_AGENT.format(name=u.name(conversation), ticket=ticket.reference))
    else:
        u.tell(conversation, waits.place_text(u, handoff, replies.HANDOFF_QUEUED))
    u.to_topic(
        conversation,
        ticket,
        REOPENED_NOTICE.format(name=u.name(conversation)),
        claim=None if handoff.agent_id else handoff,
    )
    return handoff


def reopen_ticket(u: Unit, reference: str, agent_name: str) -> str:
    """/reopen T000012: a closed ticket, and its topic, open again; what to tell the agent."""
    ticket = u.session.get(Ticket, number) if (number := record_number(reference.upper().removeprefix("T"))) else None
    if ticket is None or ticket.conversation is None:
        return REOPEN_USAGE
    if ticket.status not in DONE:
        return f"{ticket.reference} is open already."
    u.set_status(ticket.conversation, ticket, TicketStatus.OPEN)
    u.to_topic(ticket.conversation, ticket, REOPENED_BY.format(agent=agent_name, ticket=ticket.reference))
    return REOPENED_TICKET.format(ticket=ticket.reference)


def post_briefing(u: Unit, ticket: Ticket, handoff: Handoff | None) -> None:
    """The ticket's card in its topic, then the customer's attachments not in the topic yet and, when the card could
    not hold everything, the complete transcript (see bot/desk/briefing.py)."""
    conversation, customer = ticket.conversation, ticket.conversation.customer
    remembered = (
        memory.remember(
            u.session,
            telegram_user_id=customer.telegram_user_id,
            today=utcnow(),
            regular_min_visits=u.settings.regular_min_visits,
            regular_min_tickets=u.settings.regular_min_tickets,
        )
        if customer is not None
        else None
    )
    in_topic, copied_before = transcript.in_topic(u.session, conversation.id, u.group, ticket.topic_id)
    facts = briefing.Facts(
        ticket=ticket,
        customer=customer,
        memory=remembered,
        handoff=handoff,
        messages=transcript.messages(u.session, conversation.chat_id),
        since=handoffs.previous_end(u.session, conversation.id, handoff.id if handoff else None),
        in_topic=frozenset(in_topic),
        copied_before=copied_before,
    )
    told = briefing.brief(facts, utcnow())
    if handoff is not None:
        handoff.announced_at = utcnow()
    holder = handoff.agent if handoff is not None and handoff.status is HandoffStatus.CLAIMED else None
    card = told.card + (ASSIGNED_LINE.format(agent=holder.first_name) if holder is not None else "")
    u.to_topic(conversation, ticket, card[:4096], claim=None if holder is not None else handoff or ticket, kind="card")
    for group in told.copies:
        u.queue(
            conversation,
            u.group,
            "",
            thread(ticket, {"copy_many": {"from_chat_id": conversation.chat_id, "message_ids": group}}),
            kind="copies",
            reply=False,
        )
    if told.transcript is not None:
        u.queue(
            conversation,
            u.group,
            f"{ticket.reference}: the complete transcript",
            thread(ticket, {"file_name": f"{ticket.reference}-transcript.txt", "content": told.transcript}),
            kind="document",
            reply=False,
        )


def introduce(
    u: Unit, handoff: Handoff, agent: Agent, header: str = "", extra: tuple[tuple[str, str], ...] = ()
) -> None:
    """The conversation so far, in the agent's private chat, with its Close, Return and Transfer buttons (and `extra`
    ones), one message with `header` first."""
    conversation, customer, ticket = handoff.conversation, handoff.conversation.customer, handoff.ticket
    messages = transcript.messages(u.session, conversation.chat_id)
    lines = cards.transcript(messages, customer.first_name if customer else "")
    recent = [cards.clip(line) for line in lines[-INTRO_LINES:]]
    intro = header + CLAIMED_INTRO.format(name=u.name(conversation), ticket=ticket.reference, recent="\n".join(recent))
    u.to_agent(
        agent,
        conversation,
        intro[:4096],
        [
            ("Close", f"{PREFIX}close:{handoff.id}"),
            ("Return to bot", f"{PREFIX}return:{handoff.id}"),
            ("Transfer", f"{PREFIX}offer:{handoff.id}"),
            *extra,
        ],
    )
    attached = briefing.attachments(messages, handoffs.previous_end(u.session, conversation.id, handoff.id))
    copy_attachments(u, conversation, agent.private_chat_id, attached)
    if recent != lines or len(intro) > 4096:
        # The customer was told this person sees the whole conversation: what the intro leaves out comes as a file.
        facts = briefing.Facts(ticket=ticket, customer=customer, memory=None, handoff=handoff, messages=messages)
        content = briefing.full_transcript(
            facts, lines, briefing.attachments(messages), {a.message_id for a in attached}, utcnow(), where="this chat"
        )
        u.queue(
            conversation,
            agent.private_chat_id,
            f"{ticket.reference}: the complete transcript",
            {"file_name": f"{ticket.reference}-transcript.txt", "content": content},
            kind="document",
            reply=False,
        )


def copy_attachments(u: Unit, conversation: Conversation, chat_id: int, chosen: list[briefing.Attachment]) -> None:
    """Copies of the customer's attachments into a chat, in order, each album as one album."""
    for group in briefing.in_groups(chosen):
        u.queue(
            conversation,
            chat_id,
            "",
            {"copy_many": {"from_chat_id": conversation.chat_id, "message_ids": group}},
            kind="copies",
            reply=False,
        )
