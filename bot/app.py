"""The app process: the Telegram application, its intake and outbox, one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import metrics, metrics_figures, tokens
from bot.admin.console import build_console
from bot.admin.pages import PREFIX as CONSOLE_PREFIX
from bot.chat.handlers import CustomerChat
from bot.config import Settings, telegram_file_url
from bot.content import modelserver
from bot.content.deploy import Trainer
from bot.content.files import read_tree
from bot.content.nlg import ResponseCatalog
from bot.content.training import prepare
from bot.desk.agent_commands import AgentCommands
from bot.desk.blocking import BlockCommands
from bot.desk.desk import Desk
from bot.desk.insights import DeskInsights
from bot.desk.queue_commands import ACTIVITY_GROUP, QueueCommands
from bot.desk.round import Round
from bot.rasa import RasaClient
from bot.rasa_runtime import ROOT
from bot.storage import inbox
from bot.storage.db import create_engine, create_sessionmaker, migrate
from bot.telegram.dispatch import ChatDispatcher
from bot.telegram.drain import ChatDrainer
from bot.telegram.intake import WEBHOOK_PATH, Intake, WebhookIntake
from bot.telegram.locks import PostgresLocks
from bot.telegram.outbox import Outbox
from bot.telegram.pace import Pace
from bot.telegram.poller_lease import AnotherPoller, PollerLease
from bot.telegram.request import AiohttpRequest
from bot.telegram.send_share import SendShare
from bot.web import HealthServer

log = logging.getLogger(__name__)
WORKER_ENV = "FRONTLINE_WORKER"
EXIT_ANOTHER_POLLER = 3  # the exit status when another instance polls this bot with this database
SANDBOX_TOKEN = "1000000001:sandbox-token"
SANDBOX_AGENT_ID = 9000001  # the agent a person plays in the sandbox
COMMANDS = [
    BotCommand("start", "Start or restart the conversation"),
    BotCommand("tickets", "Your complaints and where they stand"),
    BotCommand("cancel", "Stop waiting for a person and go back to the bot"),
    BotCommand("mydata", "A copy of everything stored about you"),
    BotCommand("forget", "Delete everything stored about you"),
    BotCommand("help", "What I can help with"),
]


async def _introduce(application: Application) -> None:
    """Tell Telegram the bot's command menu and, polling, that no webhook is left set (webhook mode sets its own,
    bot/telegram/intake.py). The app starts even when Telegram cannot be reached: the intake keeps trying."""
    try:
        if not application.bot_data.get("webhook"):
            await application.bot.delete_webhook()
        await application.bot.set_my_commands(COMMANDS)
    except TelegramError as exc:
        log.warning("could not set the bot's commands or clear its webhook at start: %s", exc)


def build_application(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], rasa: RasaClient, *, token: str, api_url: str
) -> tuple[Application, Outbox, Desk]:
    """Wire every handler of the bot; the whole bot reads from here."""
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(api_url)
        .base_file_url(telegram_file_url(api_url))
        .updater(None)
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest())
        # No AIORateLimiter: the app paces its messages itself (bot/telegram/pace.py, group_pace.py), counted as
        # Telegram counts them, and a 429 that still comes holds back only its chat (Outbox._wait).
        .build()
    )
    application.bot_data["webhook"] = bool(settings.webhook_url)
    outbox = Outbox(
        application.bot, sessions, group_rate=settings.telegram_group_rate, rate=Pace(settings.telegram_rate)
    )
    desk = Desk(settings, sessions, outbox, application.bot, rasa)
    chat = CustomerChat(settings, sessions, rasa, outbox, desk)
    private = filters.ChatType.PRIVATE
    # Agents first: their private chats are the desk, never the customer chat.
    agent = private & desk.agent_chats & filters.UpdateType.MESSAGE
    insights = DeskInsights(settings, sessions, desk, application.bot)  # /stats and /flag: before the desk's commands
    application.add_handler(CommandHandler(["stats", "flag"], insights.on_command, filters=insights.chats))
    application.add_handlers(BlockCommands(desk).handlers(agent))  # before the agents' commands' catch-all
    queue_commands = QueueCommands(desk)  # /next, /online, /away, /pass: before the agents' commands' catch-all
    application.add_handlers(queue_commands.handlers(agent))
    application.add_handler(queue_commands.activity(), group=ACTIVITY_GROUP)
    application.add_handlers(AgentCommands(desk).handlers(agent))
    application.add_handlers(desk.members.handlers())  # who joins or leaves the agents' group
    application.add_handler(MessageHandler(agent & ~filters.StatusUpdate.ALL, desk.on_agent_message))
    if desk.enabled:
        group = filters.Chat(settings.agent_chat_id) & filters.UpdateType.MESSAGE
        application.add_handler(
            MessageHandler(group & ~filters.COMMAND & ~filters.StatusUpdate.ALL, desk.on_group_message)
        )
    application.add_handler(CommandHandler("start", chat.on_start, filters=private))
    application.add_handler(CommandHandler("help", chat.on_help, filters=private))
    application.add_handler(CommandHandler("tickets", chat.on_tickets, filters=private))
    application.add_handler(CommandHandler("cancel", chat.on_cancel, filters=private))
    application.add_handler(CommandHandler("mydata", chat.on_mydata, filters=private))
    application.add_handler(CommandHandler("forget", chat.on_forget, filters=private))
    application.add_handler(MessageHandler(private & filters.COMMAND, chat.on_unknown_command))
    application.add_handler(MessageHandler(private & filters.TEXT, chat.on_text))
    application.add_handler(MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, chat.on_media))
    application.add_handler(CallbackQueryHandler(chat.on_button))
    application.add_error_handler(chat.on_error)
    return application, outbox, desk


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run the app until `stop` is set: migrate, then poll, dispatch and deliver."""
    engine = create_engine(settings.database_url)
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    lease = None
    if not settings.webhook_url:  # polling: only while this process holds the lease (bot/telegram/poller_lease.py)
        lease = PollerLease(sessions, settings.telegram_token or SANDBOX_TOKEN, settings.poller_lease_seconds)
        try:
            await lease.claim()
        except AnotherPoller:
            await engine.dispose()
            sessions.dispose()
            raise
    await prepare(settings, sessions)
    catalog = ResponseCatalog(sessions, read_tree(ROOT).responses)
    models = modelserver.ModelServer(sessions, settings.models_dir)
    rasa = RasaClient(settings.rasa_urls or settings.rasa_url, settings.rasa_timeout, tokens.token(settings, "rasa"))
    rasa_only = tokens.guard(tokens.token(settings, "app"))  # /nlg and /models/live answer Rasa only
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        stack.callback(sessions.dispose)
        if lease is not None:
            stack.push_async_callback(lease.release)
        stack.push_async_callback(rasa.close)
        token, api_url = settings.telegram_token, settings.telegram_api_url
        if settings.sandbox:
            async with sessions() as session:
                newest = await session.run_sync(inbox.newest_update_id)
            api_url, agents_group = await _start_sandbox_emulator(settings, stack, continue_after=newest or 0)
            token = SANDBOX_TOKEN
            if settings.agent_chat_id is None:
                settings = dataclasses.replace(settings, agent_chat_id=agents_group)
        application, outbox, desk = build_application(settings, sessions, rasa, token=token, api_url=api_url)
        await desk.load_agents()
        several = shares_the_webhook(settings)
        share: SendShare | None = None
        if several:
            # Several workers (or machines) share the webhook: cross-process try-locks keep each chat in order and
            # single-sent.
            shared = PostgresLocks(engine)  # (on a connection of their own: they take nothing from the pool)
            stack.push_async_callback(shared.close)
            outbox.shared = desk.shared = shared
            # ... and each takes its share of the bot's allowances with Telegram (bot/telegram/send_share.py).
            share = SendShare(sessions, [outbox.rate, outbox.pace])
            await share.beat()
            stack.push_async_callback(share.leave)

        async def handle(update: Update) -> None:
            with inbox.handling(update.update_id) as handling:
                await application.process_update(update)
            if not handling.marked:
                async with sessions.begin() as session:
                    await session.run_sync(inbox.mark_done, update.update_id)

        dispatcher: ChatDispatcher | ChatDrainer = (
            ChatDrainer(application.bot, sessions, shared, handle) if several else ChatDispatcher(handle)
        )
        if settings.webhook_url:
            intake: Intake = WebhookIntake(
                application.bot, sessions, dispatcher, url=settings.webhook_url, secret=settings.webhook_secret or ""
            )
            posts = {WEBHOOK_PATH: intake.handle}
        else:
            intake, posts = Intake(application.bot, sessions, dispatcher), {}
        posts["/nlg"] = rasa_only(catalog.handle)
        trainer = Trainer(settings, sessions)
        stack.push_async_callback(trainer.close)
        health = HealthServer(
            {
                "database": lambda: _database_problem(sessions),
                "rasa": rasa.status,
                "telegram": _as_check(intake.problem),
            },
            posts,
            {
                modelserver.PATH: rasa_only(models.handle),
                "/metrics": tokens.guard(tokens.token(settings, "metrics"), "METRICS_TOKEN")(
                    metrics_figures.scrape(sessions, lambda: health.results())  # health: set below
                ),
            },
            {CONSOLE_PREFIX: build_console(settings, sessions, trainer)},
        )
        async with application:
            await application.start()
            await _introduce(application)
            # After start: webhook calls may come at once. Workers share the port (the kernel spreads connections).
            await health.start(settings.app_host, settings.app_port, reuse_port=settings.app_workers > 1)
            stack.push_async_callback(health.stop)
            tasks = [
                asyncio.create_task(intake.run(), name="intake"),
                asyncio.create_task(outbox.run(), name="outbox"),
                asyncio.create_task(Round(desk).run(), name="desk"),
                asyncio.create_task(desk.members.run(), name="desk-members"),
            ]
            if isinstance(dispatcher, ChatDrainer):
                tasks.append(asyncio.create_task(dispatcher.sweep(), name="inbox-sweep"))
            if share is not None:
                tasks.append(asyncio.create_task(share.run(), name="send-share"))
            keeper = asyncio.create_task(lease.keep(), name="poller-lease") if lease is not None else None
            if keeper is not None:
                tasks.append(keeper)
            log.info("app ready: Telegram API %s, Rasa %s", api_url, settings.rasa_url)
            lost = await _until_stopped(stop, keeper)
            log.info("stopping: finishing the updates in hand")
            tasks[0].cancel()
            await asyncio.wait_for(dispatcher.join(), timeout=15)
            for task in tasks[1:]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await outbox.close()
            await application.stop()
    if lost is not None:
        raise lost


def shares_the_webhook(settings: Settings) -> bool:
    """Whether other processes may take this bot's updates too: webhook mode on PostgreSQL, where several workers
    (APP_WORKERS, which needs both) or several machines may stand behind one address; they share the database, never
    memory."""
    return bool(settings.webhook_url) and settings.database_url.startswith("postgresql")


async def _until_stopped(stop: asyncio.Event, keeper: asyncio.Task[None] | None) -> BaseException | None:
    """Wait for the stop signal; or, polling, until the lease's keeper ends: the lease was lost (AnotherPoller)."""
    if keeper is None:
        await stop.wait()
        return None
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([stopped, keeper], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if keeper.done() and not keeper.cancelled():
        return keeper.exception()
    return None


async def _database_problem(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    async with sessions() as session:
        await session.execute(text("SELECT 1"))
    return None


def _as_check(probe: Callable[[], str | None]) -> Callable[[], Awaitable[str | None]]:
    async def check() -> str | None:
        return probe()

    return check


async def _start_sandbox_emulator(
    settings: Settings, stack: contextlib.AsyncExitStack, continue_after: int
) -> tuple[str, int]:
    """The in-process emulator, with an agents' forum group whose member is the sandbox agent; its update ids
    continue after the newest one stored, as a restarted sandbox keeps its database."""
    from bot.emulator import control
    from bot.emulator.server import EmulatorServer

    emulator = EmulatorServer()
    emulator.state.continue_updates_after(continue_after)
    base = await emulator.start(settings.emulator_host, settings.emulator_port)
    stack.push_async_callback(emulator.stop)
    control.add_user(emulator.state, {"id": SANDBOX_AGENT_ID, "first_name": "Sam", "username": "sam_agent"})
    group = control.add_group(
        emulator.state,
        {
            "title": "Northwind Goods agents",
            "is_forum": True,
            "members": [SANDBOX_AGENT_ID],
            "admins": [SANDBOX_AGENT_ID],
            "bot_rights": {"can_manage_topics": True, "can_delete_messages": True},
        },
    )
    log.info("sandbox mode (no TELEGRAM_BOT_TOKEN): Telegram emulator at %s; talk to the bot with `make chat`", base)
    return f"{base}/bot", group["id"]


def run(settings: Settings) -> None:
    """Run the app in the foreground; SIGINT or SIGTERM stop it cleanly. With APP_WORKERS above 1 this process
    supervises that many worker processes (restarted if one dies) and passes the stop signal on."""
    if settings.app_workers > 1 and WORKER_ENV not in os.environ:
        supervise(settings.app_workers, settings.var_dir / "metrics")
        return

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    try:
        _run_loop(main)
    except AnotherPoller as refused:
        log.error("%s", refused)
        sys.exit(EXIT_ANOTHER_POLLER)


def _run_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    # uvloop's event loop: the app's per-message work is many small awaits (database, Bot API, Rasa), and each
    # costs about a third less CPU on it (make bench-profile). The standard loop where uvloop cannot be had.
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


def supervise(workers: int, counts: Path) -> None:
    """Start `workers` app processes and keep them running until SIGINT or SIGTERM, which they receive too; they
    count their metrics together in `counts` (unless PROMETHEUS_MULTIPROC_DIR names another directory)."""
    stopping = False
    processes: dict[int, subprocess.Popen[bytes]] = {}
    together = {} if os.environ.get(metrics.WORKERS_DIRECTORY) else metrics.for_workers(counts)

    def start(number: int) -> None:
        env = {**os.environ, **together, WORKER_ENV: str(number)}
        processes[number] = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main(['app'])"], env=env)
        log.info("worker %d started (pid %d)", number, processes[number].pid)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for number in range(workers):
        start(number)
    while processes:
        for number, process in list(processes.items()):
            if process.poll() is None:
                continue
            if stopping:
                del processes[number]
            else:
                log.warning("worker %d exited with %s; starting it again", number, process.returncode)
                start(number)
        time.sleep(0.5)
