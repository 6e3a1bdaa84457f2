"""The customer's side of a handoff: the request for a person, what they write while waiting or helped, leaving
the queue, and the rating and comment after the close. Each is a step: a plain function of a `Unit`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from telegram import Message as TelegramMessage

from bot import metrics, replies
from bot.desk import assign, cards, lifecycle, waits
from bot.desk.texts import CANCELLED_NOTICE, COMMENT_NOTICE, CSAT_NOTICE, EDITED, RELAY_HEADER
from bot.desk.unit import DONE, Unit, record_number
from bot.storage import alerts, blocks, handoffs, tickets, transcript
from bot.storage.kb_models import ArticleUse
from bot.storage.models import (
    Conversation,
    ConversationState,
    Handoff,
    HandoffStatus,
    Ticket,
    TicketPriority,
    TicketStatus,
    utcnow,
)
from bot.telegram.formatting import split_text

CAPTION_CHARS = 1024  # Telegram's limit for a caption
COMMENT_WINDOW = timedelta(minutes=30)  # a text this soon after a rating is a comment on it


def escalate(u: Unit, conversation: Conversation, *, reason: str, context: dict[str, Any]) -> None:
    """Queue the customer for a person (once), opening a ticket when the request has none, and tell them so."""
    if blocks.active(u.session, conversation.customer.telegram_user_id) is not None:
        return  # blocked while Rasa answered a message sent before: the team is not asked again
    active = handoffs.active_for(u.session, conversation.id)
    if active is not None:
        _say_where_they_stand(u, conversation, active)
        return
    ticket = _ticket_for(u, conversation, reason=reason, context=context)
    if not u.enabled:
        u.tell(conversation, replies.HANDOFF_NO_DESK.format(ticket=ticket.reference))
        return
    handoff, _ = handoffs.open_handoff(
        u.session, conversation=conversation, ticket=ticket, reason=reason, context=context
    )
    metrics.current().handoff(reason)
    _link_article_use(u, conversation, handoff, context)
    hours, now = u.settings.business_hours, utcnow()
    bot_down = replies.HANDOFF_BOT_DOWN if reason == "bot_unavailable" else ""
    if assign.on_request(u, handoff, preface=bot_down):
        pass  # given to an agent at once (AUTO_ASSIGN): the customer was introduced to them
    elif hours.is_open(now):
        u.tell(conversation, bot_down + waits.place_text(u, handoff, replies.HANDOFF_QUEUED))
    else:
        # No wait estimate out of hours: say when the team is back, and keep the customer first in line for them.
        text = replies.HANDOFF_AFTER_HOURS.format(back=hours.describe_next(now), ticket=ticket.reference)
        u.tell(conversation, bot_down + text)
    if u.enabled and ticket.topic_id is not None:
        # A ticket already in the group (a complaint first, a person asked for later): what the customer said
        # since its card, with the reason, in a new card in its topic; they were told the team sees everything.
        lifecycle.post_briefing(u, ticket, handoff)


def _link_article_use(u: Unit, conversation: Conversation, handoff: Handoff, context: dict[str, Any]) -> None:
    """The help-center answer the bot offered before this handoff (its use, when the context names one of this
    conversation's) is tied to the handoff, so the article's record shows which answers ended with a person."""
    offered = context.get("article")
    use_id = offered.get("use") if isinstance(offered, dict) else None
    if not isinstance(use_id, int) or isinstance(use_id, bool):
        return
    use = u.session.get(ArticleUse, use_id)
    if use is not None and use.conversation_id == conversation.id:
        use.handoff_id = handoff.id


def relay_from_customer(u: Unit, conversation_id: int, message: TelegramMessage) -> bool:
    """A customer's message while a person is (about to be) in charge: to the agent, or to the ticket's topic.

    False when the handoff ended meanwhile (an agent closed it as the customer wrote): the bot answers instead.
    """
    conversation = u.session.get(Conversation, conversation_id)
    u.chats.add(conversation.chat_id)
    if u.answered():
        return True  # relayed before a restart: only the delivery may be left to do
    handoff = handoffs.active_for(u.session, conversation.id)
    if handoff is None:
        conversation.state = ConversationState.BOT
        return False
    relay(u, handoff, message)
    return True


def relay(u: Unit, handoff: Handoff, message: TelegramMessage) -> None:
    """What the customer sent, to the agent helping them, or to the ticket's topic while nobody has claimed it."""
    conversation, ticket, agent = handoff.conversation, handoff.ticket, handoff.agent
    header = RELAY_HEADER.format(name=u.name(conversation), ticket=ticket.reference)
    if message.edit_date is not None:  # a customer's edit: marked so, for the agent and in the topic (the record)
        header = f"{header} {EDITED}"
    else:
        alerts.customer_wrote(handoff)  # a new message unanswered: the reply-time alerts' stretch (bot/desk/alerts.py)
    if agent is not None and agent.private_chat_id:
        target, where = agent.private_chat_id, {}
        if message.edit_date is not None and u.group is not None and ticket.topic_id:
            _relay_to(u, conversation, u.group, {"thread_id": ticket.topic_id}, header, message)
    else:
        target, where = u.group, {"thread_id": ticket.topic_id} if ticket.topic_id else {}
    _relay_to(u, conversation, target, where, header, message)


def _relay_to(
    u: Unit, conversation: Conversation, target: int, where: dict[str, Any], header: str, message: TelegramMessage
) -> None:
    not_before = _paced(u, conversation) if target == u.group else None
    if not_before is not None:
        where["not_before"] = not_before.timestamp()
    if message.text:
        # All of a long message reaches the agents, in as many Telegram messages as it takes.
        for part in split_text(f"{header}\n{message.text}"):
            u.queue(conversation, target, part, dict(where), kind="relay")
    else:
        copy_with_header(u, conversation, target, header, message, where, kind="relay")


def copy_with_header(
    u: Unit,
    conversation: Conversation,
    target: int,
    header: str,
    message: TelegramMessage,
    where: dict[str, Any],
    kind: str,
) -> None:
    """A copy of a media message under a header line; a caption too long to share the header keeps its own."""
    payload: dict[str, Any] = {"copy": {"from_chat_id": message.chat_id, "message_id": message.message_id}, **where}
    caption = f"{header}\n{message.caption or ''}".strip()
    if len(caption) <= CAPTION_CHARS:
        u.queue(conversation, target, caption, payload, kind=kind)
        return
    u.queue(conversation, target, header, {k: v for k, v in payload.items() if k != "copy"}, kind=kind)
    u.queue(conversation, target, "", payload, kind=kind)  # no caption given: the copy keeps the customer's


def _paced(u: Unit, conversation: Conversation) -> datetime | None:
    """When a waiting customer's next relay may reach the group: RELAY_MERGE_SECONDS after their last one."""
    last = transcript.last_sent_to(u.session, conversation.id, u.group, "relay")
    if last is None:
        return None
    due = (last.sent_at or last.created_at) + timedelta(seconds=u.settings.relay_merge_seconds)
    return due if due > utcnow() else None


def cancel(u: Unit, conversation_id: int) -> bool:
    """/cancel: leave the queue (not a conversation an agent already took) and go back to the bot; True when the
    bot must start the conversation afresh."""
    conversation = u.session.get(Conversation, conversation_id)
    u.chats.add(conversation.chat_id)
    if u.answered():
        return False
    handoff = handoffs.active_for(u.session, conversation.id)
    if handoff is None:
        u.tell(conversation, replies.NOTHING_TO_CANCEL)
        return False
    if handoff.status is HandoffStatus.CLAIMED:
        u.tell(conversation, replies.HANDOFF_WITH_AGENT.format(agent=handoff.agent.first_name))
        return False
    handoffs.finish(u.session, handoff, HandoffStatus.CANCELLED)
    u.tell(conversation, replies.CANCELLED.format(ticket=handoff.ticket.reference))
    u.to_topic(conversation, handoff.ticket, CANCELLED_NOTICE.format(name=u.name(conversation)))
    return True


def take_comment(u: Unit, conversation_id: int, text: str) -> bool:
    """The text soon after a rating is the customer's comment on it; then the bot answers again.

    False when it is not a comment (too late, or already given): the bot answers the message itself.
    """
    conversation = u.session.get(Conversation, conversation_id)
    rated = handoffs.latest_rated(u.session, conversation.id)
    conversation.state = ConversationState.BOT
    if rated is None or rated.csat_comment is not None or utcnow() - rated.updated_at >= COMMENT_WINDOW:
        return False
    u.chats.add(conversation.chat_id)
    if not u.answered():
        rated.csat_comment = text[:4000]
        u.tell(conversation, replies.CSAT_COMMENT_THANKS)
        u.to_topic(conversation, rated.ticket, COMMENT_NOTICE.format(comment=cards.clip(rated.csat_comment)))
    return True


def rate(u: Unit, conversation_id: int, handoff_id: int, score: int) -> None:
    """A rating button: kept once, thanked, and shown in the ticket's topic; the next text is the comment."""
    conversation = u.session.get(Conversation, conversation_id)
    u.chats.add(conversation.chat_id)
    handoff = u.session.get(Handoff, handoff_id)
    if handoff is None or handoff.conversation_id != conversation.id or not 1 <= score <= 5 or handoff.csat is not None:
        return
    handoff.csat = score
    if conversation.state is ConversationState.BOT:
        conversation.state = ConversationState.CLOSED  # the next text is the comment
    u.tell(conversation, replies.CSAT_THANKS.format(score=score))
    u.to_topic(conversation, handoff.ticket, CSAT_NOTICE.format(score=score))


def followup_answer(u: Unit, conversation_id: int, handoff_id: int, answer: str) -> None:
    """The next-day check's buttons: glad it is sorted, or the ticket reopens and a person is asked for."""
    conversation = u.session.get(Conversation, conversation_id)
    u.chats.add(conversation.chat_id)
    handoff = u.session.get(Handoff, handoff_id)
    if handoff is None or handoff.conversation_id != conversation.id or u.answered():
        return
    if answer == "ok":
        u.tell(conversation, replies.FOLLOWUP_GLAD)
        return
    u.set_status(conversation, handoff.ticket, TicketStatus.OPEN)
    escalate(u, conversation, reason="followup", context={"ticket_id": handoff.ticket.reference})
    u.chats.add(u.group)


def reopen(u: Unit, conversation_id: int, message: TelegramMessage) -> bool:
    """A customer writing again soon after a close (without rating it) gets the same ticket and agent back."""
    conversation = u.session.get(Conversation, conversation_id)
    last = handoffs.latest(u.session, conversation.id)
    if not lifecycle.may_reopen(u.settings, last) or u.answered():
        return False
    handoff = lifecycle.reopen(u, conversation, last)
    relay(u, handoff, message)
    u.chats |= {conversation.chat_id, u.group}
    return True


def _ticket_for(u: Unit, conversation: Conversation, *, reason: str, context: dict[str, Any]) -> Ticket:
    """The ticket the request is about (the customer's own, by reference), or a new one for it."""
    reference = str(context.get("ticket_id") or "")
    if number := record_number(reference[1:]):
        found = u.session.get(Ticket, number)
        if found is not None and found.customer_id == conversation.customer_id:
            return found
    if (held := _held_back(u, conversation)) is not None:
        return held
    collected = context.get("collected") or {}
    description = collected.get("complaint_description") or context.get("message") or "Asked to talk to a person"
    photos = collected.get("complaint_photos")
    key = u.update_id if u.update_id is not None else utcnow().timestamp()
    ticket, _ = tickets.create(
        u.session,
        idempotency_key=f"handoff:{conversation.chat_id}:{key}",
        conversation=conversation,
        category=collected.get("complaint_category") or "other",
        description=str(description),
        desired_resolution=collected.get("desired_resolution") or "talk_to_person",
        priority=TicketPriority.HIGH if reason in ("frustration", "bot_unavailable") else TicketPriority.NORMAL,
        order_number=_value(collected.get("order_number")),
        contact=_value(collected.get("contact")),
        photos=photos if isinstance(photos, list) else [],
    )
    return ticket


def _held_back(u: Unit, conversation: Conversation) -> Ticket | None:
    """Past MAX_TICKETS_PER_HOUR new tickets, a request goes to the customer's open ticket, or reopens their latest:
    never to no one, and never another card in the agents' group."""
    hour_ago = utcnow() - timedelta(hours=1)
    if tickets.opened_since(u.session, conversation.customer_id, hour_ago) < u.settings.max_tickets_per_hour:
        return None
    theirs = tickets.for_customer(u.session, conversation.customer_id)
    ticket = next((t for t in theirs if t.status not in DONE), theirs[0])
    if ticket.status in DONE:
        u.set_status(conversation, ticket, TicketStatus.OPEN)
    return ticket


def _say_where_they_stand(u: Unit, conversation: Conversation, handoff: Handoff) -> None:
    if handoff.status is HandoffStatus.CLAIMED:
        text = replies.HANDOFF_WITH_AGENT.format(agent=handoff.agent.first_name if handoff.agent else "Someone")
    else:
        text = waits.place_text(u, handoff, replies.HANDOFF_STILL_QUEUED)
    u.tell(conversation, text)


def _value(value: Any) -> str | None:
    return None if value in (None, "", "none") else str(value)
