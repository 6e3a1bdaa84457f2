"""/stats and /flag for the agents: today's and this week's figures for the agents' group admins, and flagging a
wrong answer of the bot so the support leads see it in the console.

Both work in the agents' group and in an agent's private chat with the bot. `/flag` finds the ticket from a
number (`/flag T000012 it quoted the returns policy`), the topic it is sent in, the customer's message it
replies to, or the only customer the agent is helping; it flags the bot's last answer before the customer was
handed over.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, Update
from telegram.ext import ContextTypes, filters

from bot.config import Settings
from bot.desk import cards
from bot.desk.desk import Desk
from bot.desk.texts import ADMINS_ONLY
from bot.storage import figures as stored
from bot.storage import flags, handoffs
from bot.storage.models import Message, Ticket, utcnow
from bot.storage.tickets import REFERENCE

FLAG_USAGE = (
    "Usage: /flag T000012 what was wrong. In a ticket's topic, or as a reply to the customer's message, "
    "the number is not needed; nor when you are helping just one customer."
)
FLAGGED = "🚩 Flagged on {ticket}. The bot had answered “{question}” with: “{answer}”. The support leads will see it in the console."
NOTHING_TO_FLAG = "The bot said nothing to that customer before the handoff, so there is nothing to flag on {ticket}."
STATS = "📊 Today: {today}\n📅 This week: {week}"


def period_text(figures: stored.Figures) -> str:
    """One period in a line: conversations, contained, handoffs, median wait, rating."""
    if not figures.conversations and not figures.handoffs:
        return "no conversations"
    parts = [f"{figures.conversations} conversation{'s' if figures.conversations != 1 else ''}"]
    if figures.containment is not None:
        parts.append(f"{figures.containment * 100:.0f} % without a person")
    parts.append(f"{figures.handoffs} handoff{'s' if figures.handoffs != 1 else ''}")
    if figures.median_wait is not None:
        parts.append(f"median wait {stored.duration(figures.median_wait)}")
    if figures.rating is not None:
        parts.append(f"rating {figures.rating:.1f}/5 ({figures.rated})")
    return ", ".join(parts)


class DeskInsights:
    """The agents' /stats and /flag."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], desk: Desk, bot: Bot) -> None:
        self._settings = settings
        self._sessions = sessions
        self._desk = desk
        self._bot = bot
        # Agents' private chats, and the agents' group (no chat when there is none).
        self.chats = filters.UpdateType.MESSAGE & (
            (filters.ChatType.PRIVATE & desk.agent_chats) | filters.Chat(settings.agent_chat_id)
        )

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/stats or /flag, from an agent (in private: one still in the agents' group)."""
        message = update.effective_message
        if message is None:
            return
        private = update.effective_chat.type == "private"
        if private and not await self._desk.still_an_agent(update):
            return
        command, _, rest = (message.text or "").partition(" ")
        if command.split("@")[0].lower() == "/stats":
            text = await self.stats_text() if await self._desk.is_admin(update.effective_user.id) else ADMINS_ONLY
        else:
            text = await self.flag(update, rest.strip(), private)
        await self._desk.answer_in_place(message, text)

    async def stats_text(self) -> str:
        """Today's and this week's figures, days as the business's time zone counts them."""
        zone, now = self._settings.business_hours.zone, utcnow()
        async with self._sessions() as session:
            today = await session.run_sync(stored.figures, stored.day_start(now, zone), now)
            week = await session.run_sync(stored.figures, stored.week_start(now, zone), now)
        return STATS.format(today=period_text(today), week=period_text(week))

    async def flag(self, update: Update, text: str, private: bool) -> str:
        """Record the flag; what to tell the agent."""
        first, _, note = text.partition(" ")
        number = REFERENCE.match(first)
        if number is None:
            note = text
        user = update.effective_user
        async with self._sessions.begin() as session:
            ticket = (
                await session.get(Ticket, int(number.group(1)))
                if number
                else await self._ticket_meant(session, update, private)
            )
            if ticket is None:
                return FLAG_USAGE
            agent = await session.run_sync(
                handoffs.agent, telegram_user_id=user.id, first_name=user.first_name, username=user.username
            )
            made = await session.run_sync(flags.flag, ticket=ticket, agent=agent, note=note[:2000])
            if made is None:
                return NOTHING_TO_FLAG.format(ticket=ticket.reference)
            answer = await session.get(Message, made.message_id)
            question = await session.run_sync(flags.question_of, answer)
        return FLAGGED.format(
            ticket=ticket.reference, question=cards.clip(question, 200), answer=cards.clip(answer.text, 300)
        )

    async def _ticket_meant(self, session: AsyncSession, update: Update, private: bool) -> Ticket | None:
        """The ticket of the topic, of the customer whose message this replies to, or of the agent's only customer."""
        message = update.effective_message
        if not private:
            return await session.run_sync(
                handoffs.ticket_in_topic, message.message_thread_id if message.is_topic_message else None
            )
        if message.reply_to_message is not None:
            relayed = await session.run_sync(
                handoffs.relayed_message,
                chat_id=message.chat_id,
                telegram_message_id=message.reply_to_message.message_id,
            )
            latest = await session.run_sync(handoffs.latest, relayed.conversation_id) if relayed is not None else None
            if latest is not None:
                return await session.get(Ticket, latest.ticket_id)
        user = update.effective_user
        agent = await session.run_sync(
            handoffs.agent, telegram_user_id=user.id, first_name=user.first_name, username=user.username
        )
        mine = await session.run_sync(handoffs.claimed_by, agent.id)
        return await session.get(Ticket, mine[0].ticket_id) if len(mine) == 1 else None
