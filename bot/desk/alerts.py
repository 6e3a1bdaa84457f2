"""Reply-time alerts, a step of the desk's round: a claimed customer left unanswered AGENT_REPLY_MINUTES reminds
their agent in private, twice that notes it in the ticket's topic for the group's admins, and any customer waiting for
or helped by a person who has heard nothing for CUSTOMER_HOLD_MINUTES gets one holding message. Each at most once per
unanswered stretch (bot/storage/alerts.py): an agent's reply ends it, the customer's next message starts another.

Business hours: agents are reminded (and admins told) only while the team is at work, and the wait they are reminded
of counts from the later of the customer's first unanswered message, the claim and the day's opening; so nobody
arrives in the morning to a pile of overnight reminders. The customer's holding message goes at any hour, and out of
hours says honestly when the team is back.

The queue's wait updates (bot/desk/round.py) and the holding message never come together: the holding message waits
until the customer has heard nothing at all (a wait update included) for CUSTOMER_HOLD_MINUTES, and for a customer in
line it tells their place and wait through `waits.place_text` (bot/desk/waits.py), which records what they were told, so the wait
updates have nothing new to tell them right after it."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import replies
from bot.desk import waits
from bot.desk.texts import REPLY_OVERDUE_NOTICE, REPLY_REMINDER
from bot.desk.unit import Unit
from bot.hours import BusinessHours
from bot.storage import alerts
from bot.storage.models import Handoff, HandoffStatus, utcnow


def alert(u: Unit) -> None:
    """The reminders, admins' notes and holding messages that fell due, each sent once and marked."""
    now = utcnow()
    if u.settings.business_hours.is_open(now):
        _remind(u, now)
    _hold(u, now)


def _remind(u: Unit, now: datetime) -> None:
    after = timedelta(minutes=u.settings.agent_reply_minutes)
    opened = opening(u.settings.business_hours, now)
    for handoff in alerts.unanswered_claims(u.session):
        since = handoff.waiting_since or now  # an open stretch (the query's condition): never None here
        holder = handoff.holder_since or handoff.claimed_at  # a transfer gives the new holder the full time
        start = max(t for t in (since, holder, opened) if t is not None)
        if now - start < after:
            continue
        conversation, ticket = handoff.conversation, handoff.ticket
        minutes = int((now - since).total_seconds() // 60)
        name = u.name(conversation)
        if handoff.reminded_at is None:
            handoff.reminded_at = now
            u.to_agent(
                handoff.agent, conversation, REPLY_REMINDER.format(name=name, ticket=ticket.reference, minutes=minutes)
            )
        if handoff.noted_at is None and now - start >= 2 * after:
            handoff.noted_at = now
            agent = handoff.agent.first_name if handoff.agent is not None else "their agent"
            text = REPLY_OVERDUE_NOTICE.format(name=name, agent=agent, minutes=minutes, ticket=ticket.reference)
            u.to_topic(conversation, ticket, text)


def _hold(u: Unit, now: datetime) -> None:
    hold = timedelta(minutes=u.settings.customer_hold_minutes)
    for handoff in alerts.unheld(u.session, now - hold):
        conversation = handoff.conversation
        told = alerts.last_told(u.session, conversation.id, conversation.chat_id)
        if told is not None and now - told < hold:
            continue  # they heard from us lately (a wait update, the claim): silence is counted from there
        handoff.held_at = now
        u.tell(conversation, holding_text(u, handoff, now))


def holding_text(u: Unit, handoff: Handoff, now: datetime) -> str:
    """The holding message as things stand: out of hours, with their agent, or in line."""
    hours = u.settings.business_hours
    if not hours.is_open(now):
        return replies.HOLD_AFTER_HOURS.format(back=hours.describe_next(now), ticket=handoff.ticket.reference)
    if handoff.status is HandoffStatus.CLAIMED:
        return replies.HOLD_WITH_AGENT.format(agent=handoff.agent.first_name if handoff.agent else "Our team")
    return waits.place_text(u, handoff, replies.HOLD_QUEUED)


def opening(hours: BusinessHours, now: datetime) -> datetime | None:
    """When today's open hours began, for a moment inside them (None when the team is always there)."""
    if hours.always_open:
        return None
    local = now.astimezone(hours.zone)
    return datetime.combine(local.date(), hours.days[local.weekday()][0], tzinfo=hours.zone)
