"""The desk's background round: new tickets announced in the agents' group, waiting customers brought up again,
promises falling due, next-day checks, and the group's periodic summary."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from telegram.error import BadRequest, Forbidden, TelegramError

from bot import replies
from bot.desk import alerts, cards, housekeeping, lifecycle, presence, waits
from bot.desk.desk import Desk
from bot.desk.texts import FOLLOWUP_PREFIX, PROMISE_DUE, STILL_WAITING, SUMMARY
from bot.desk.unit import Unit
from bot.storage import handoffs, round_marks
from bot.storage.models import Ticket, utcnow

log = logging.getLogger(__name__)
ROUND_SECONDS = 2.0
REANNOUNCE_PER_MINUTE = 3  # the group gets about 20 bot messages a minute; reminders take only a few
# The round's marks (bot/storage/round_marks.py).
HOUSEKEEPING, REANNOUNCED, SUMMARY_MARK = "housekeeping", "reannounced", "summary"


class Round:
    """Runs the round every ROUND_SECONDS, on one worker at a time. What it does every so often is paced by marks in
    the database (bot/storage/round_marks.py), never by this process's memory: processes and machines take turns at
    the round, and the summary, the housekeeping and the re-announcements' limit hold for all of them together."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk
        # When each mark's next turn comes at the earliest, as last read: a cache, so that a round with nothing due
        # asks nothing of the database (another process's turn only moves it later).
        self._due: dict[str, datetime] = {}
        self._people = presence.People(desk)  # away after a while idle; the queue to free agents (bot/desk/assign.py)

    async def run(self) -> None:
        """Announce new tickets and send due follow-ups until cancelled."""
        while True:
            try:
                async with self._desk.shared.try_hold("desk", 0) as held:
                    if held:  # one worker at a time runs the round
                        await self.round()
            except Exception:
                log.exception("desk round failed")
            await asyncio.sleep(ROUND_SECONDS)

    async def round(self) -> None:
        """One pass: every ticket without a topic gets one with its card; due follow-ups are sent. What is due is
        read in one query first: a round with nothing to do costs one query."""
        desk = self._desk
        due = await desk.sessions.read(handoffs.due_work, utcnow())
        if desk.enabled:
            if due.tickets_without_topic:
                waiting = await desk.sessions.read(
                    lambda session: [t.id for t in handoffs.tickets_without_topic(session)]
                )
                for ticket_id in waiting:
                    if not await self._announce(ticket_id):
                        break
            if due.queued and desk.settings.business_hours.is_open(utcnow()):
                await desk.step(self._reannounce)
                await desk.step(waits.tell_changes)  # each waiting customer's place and wait, when they change a lot
            await self._people.run(due.queued)
            if due.promises:
                await desk.step(_remind_promises)
            if due.alerts:
                await desk.step(alerts.alert)
            await self._summarise()
        if due.followups:
            await desk.step(_send_followups)
        await self._keep_house(utcnow())

    async def _keep_house(self, now: datetime) -> None:
        """Inbox, forget confirmations and retention (bot/desk/housekeeping.py), once every housekeeping.EVERY."""
        if not await self._turn(HOUSEKEEPING, now, housekeeping.EVERY, first_waits=False):
            return
        done = await housekeeping.keep_house(self._desk.settings, self._desk.sessions, now, self._desk.delete_topics)
        if done.more:  # more than one pass's worth: the next round goes on
            await self._desk.sessions.run(round_marks.clear, HOUSEKEEPING)
            self._due.pop(HOUSEKEEPING, None)

    async def _turn(self, name: str, now: datetime, every: timedelta, *, first_waits: bool = True) -> bool:
        """Whether this round does `name` now (see round_marks.take_turn)."""
        if name in self._due and now < self._due[name]:
            return False

        def turn(session: Session) -> tuple[bool, datetime | None]:
            taken = round_marks.take_turn(session, name, now, every, first_waits=first_waits)
            return taken, round_marks.due_at(session, name, every)

        taken, due = await self._desk.sessions.run(turn)
        self._due[name] = due or now
        return taken

    async def _announce(self, ticket_id: int) -> bool:
        """Open the ticket's topic and post its context card; False when Telegram should be left alone for now."""
        desk = self._desk
        name = await desk.sessions.read(
            lambda session: cards.topic_name(ticket := session.get(Ticket, ticket_id), ticket.customer)
        )
        # A new topic posts a message Telegram counts in the group's minute: it goes with the card, first.
        if desk.outbox.pace.wait(desk.group, 2, card=True) > 0:
            return False
        desk.outbox.pace.spend(desk.group, 1)
        try:
            topic = await desk.bot.create_forum_topic(desk.group, name)
            thread_id = topic.message_thread_id
        except (BadRequest, Forbidden) as exc:
            # Not a forum, or the bot may not manage topics: cards go to the group's main thread instead.
            log.error("cannot open a topic in the agents' group %s (%s); posting the card without one", desk.group, exc)
            thread_id = 0
        except TelegramError as exc:
            log.warning("could not open a topic for ticket %s yet: %s", ticket_id, exc)
            return False
        await desk.step(_post_card, ticket_id, thread_id)
        return True

    def _reannounce(self, u: Unit) -> None:
        """Unclaimed handoffs are brought up again in their topic after a while (a few a minute at most).
        The customers hear of their own wait from `waits.tell_changes`, on its own schedule."""
        now = utcnow()
        every = timedelta(minutes=u.settings.reannounce_minutes)
        for handoff in handoffs.queued(u.session):
            if now - (handoff.announced_at or handoff.queued_at) < every or handoff.ticket.topic_id is None:
                continue
            if not round_marks.take_slot(u.session, REANNOUNCED, REANNOUNCE_PER_MINUTE, now, timedelta(minutes=1)):
                break
            conversation = handoff.conversation
            minutes = int((now - handoff.queued_at).total_seconds() // 60)
            u.to_topic(
                conversation,
                handoff.ticket,
                STILL_WAITING.format(name=u.name(conversation), minutes=minutes),
                claim=handoff,
            )
            handoff.announced_at = now

    async def _summarise(self) -> None:
        """Every SUMMARY_MINUTES, while anything is open, one line in the group's main thread."""
        now, every = utcnow(), timedelta(minutes=self._desk.settings.summary_minutes)
        group = self._desk.group
        if group is None or not await self._turn(SUMMARY_MARK, now, every):
            return
        facts = await self._desk.sessions.read(handoffs.summary, now)
        if not facts["waiting"] and not facts["handled"]:
            return
        rating = f"{facts['rating']:.1f}/5" if facts["rating"] is not None else "none yet"
        await self._desk.direct(group, SUMMARY.format(**{**facts, "rating": rating}))


def _post_card(u: Unit, ticket_id: int, thread_id: int) -> None:
    """The ticket's context card in its new topic."""
    ticket = u.session.get(Ticket, ticket_id)
    ticket.topic_id = thread_id
    handoff = handoffs.active_for(u.session, ticket.conversation_id)
    lifecycle.post_briefing(u, ticket, handoff if handoff is not None and handoff.ticket_id == ticket.id else None)


def _remind_promises(u: Unit) -> None:
    """Promises falling due: the agent is reminded in private and the team in the ticket's topic, once."""
    for promise in handoffs.due_promises(u.session, utcnow()):
        promise.reminded_at = utcnow()
        text = PROMISE_DUE.format(number=promise.id, ticket=promise.ticket.reference, what=promise.what)
        u.to_agent(promise.agent, promise.conversation, text)
        u.to_topic(promise.conversation, promise.ticket, text)


def _send_followups(u: Unit) -> None:
    """The next-day check after a close: did it get sorted?"""
    for handoff in handoffs.due_followups(u.session):
        handoff.followup_sent_at = utcnow()
        conversation = handoff.conversation
        text = replies.FOLLOWUP.format(
            name=conversation.customer.first_name or "there", ticket=handoff.ticket.reference
        )
        u.tell(
            conversation,
            text,
            [
                (replies.FOLLOWUP_OK, f"{FOLLOWUP_PREFIX}{handoff.id}:ok"),
                (replies.FOLLOWUP_HELP, f"{FOLLOWUP_PREFIX}{handoff.id}:help"),
            ],
        )
