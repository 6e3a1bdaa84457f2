"""`frontline`: one command for every process and chore."""

from __future__ import annotations

import argparse
import os
import sys

from bot import logs
from bot.config import ConfigError, Settings, load_settings


def _run_app(settings: Settings, _args: argparse.Namespace) -> None:
    from bot.app import run

    run(settings)


def _run_rasa(settings: Settings, _args: argparse.Namespace) -> None:
    from bot.rasa_runtime import serve

    serve(settings)


def _run_actions(settings: Settings, _args: argparse.Namespace) -> None:
    # rasa_sdk 3.21 warns on every start that it is newer than Rasa 3.6; it serves 3.6 correctly.
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning:rasa_sdk.utils")
    # Our launcher around rasa_sdk's app: ACTIONS_HOST (loopback by default), and the token on every request.
    os.execv(sys.executable, [sys.executable, "-m", "actions.launcher"])


def _train(settings: Settings, args: argparse.Namespace) -> None:
    from bot.content.commands import train

    sys.exit(train(settings, force=args.force, live=args.live))


def _export(settings: Settings, args: argparse.Namespace) -> None:
    from bot.content.commands import export

    sys.exit(export(settings, args.folder))


def _import(settings: Settings, args: argparse.Namespace) -> None:
    from bot.content.commands import import_files

    sys.exit(import_files(settings, args.folder))


def _kb(settings: Settings, args: argparse.Namespace) -> None:
    from bot.content import kb_commands

    if args.action == "import":
        sys.exit(kb_commands.import_folder(settings, args.folder))
    sys.exit(kb_commands.export_folder(settings, args.folder))


def _chat(settings: Settings, args: argparse.Namespace) -> None:
    from bot.sandbox_chat import chat

    chat(settings, name=args.name)


def _desk(settings: Settings, args: argparse.Namespace) -> None:
    from bot.sandbox_desk import desk

    desk(settings, agent_id=args.agent_id)


def _backup(settings: Settings, args: argparse.Namespace) -> None:
    from bot.ops.backup import main_backup

    sys.exit(main_backup(settings, args.path))


def _restore(settings: Settings, args: argparse.Namespace) -> None:
    from bot.ops.backup import main_restore

    sys.exit(main_restore(settings, args.path, args.force))


def _reforget(settings: Settings, args: argparse.Namespace) -> None:
    from bot.ops.reforget import main_reforget

    sys.exit(main_reforget(settings, args.since))


def _admin(settings: Settings, args: argparse.Namespace) -> None:
    from bot.admin import commands

    if args.action == "add":
        sys.exit(commands.add(settings, args.username, args.password_stdin))
    if args.action == "remove":
        sys.exit(commands.remove(settings, args.username))
    sys.exit(commands.list_accounts(settings))


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(
        prog="frontline", description="Frontline, a customer-support assistant on Telegram."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "app", help="run the Telegram application (sandbox mode without TELEGRAM_BOT_TOKEN)"
    ).set_defaults(func=_run_app)
    commands.add_parser("rasa", help="run the Rasa server on the newest trained model").set_defaults(func=_run_rasa)
    commands.add_parser("actions", help="run the Rasa action server").set_defaults(func=_run_actions)
    train = commands.add_parser("train", help="train the Rasa model on the content in the database, if it changed")
    train.add_argument("--force", action="store_true", help="train even if a current model exists")
    train.add_argument(
        "--live",
        action="store_true",
        help="put the model live even over a version an admin chose (by default only over the CLI's own)",
    )
    train.set_defaults(func=_train)
    export = commands.add_parser("export", help="write the content in the database back to domain.yml and nlu/")
    export.add_argument("folder", nargs="?", default=None, help="where to write (default: the project folder)")
    export.set_defaults(func=_export)
    load = commands.add_parser(
        "import", help="load domain.yml and nlu/ from a folder into the database (validated first)"
    )
    load.add_argument(
        "folder", nargs="?", default=None, help="the folder holding domain.yml and nlu/ (default: the project)"
    )
    load.set_defaults(func=_import)
    kb = commands.add_parser("kb", help="the help center's articles: import a folder of files, export them")
    kb.set_defaults(func=_kb)
    kb_actions = kb.add_subparsers(dest="action", required=True)
    kb_actions.add_parser(
        "import", help="create or update articles from a folder's Markdown (.md) and HTML files, by file name"
    ).add_argument("folder")
    kb_actions.add_parser("export", help="write every article as <slug>.md into a folder").add_argument("folder")
    chat = commands.add_parser("chat", help="talk to the sandbox bot as a customer, in this terminal")
    chat.add_argument("--name", default=os.environ.get("USER", "Alex").capitalize(), help="your first name in the chat")
    chat.set_defaults(func=_chat)
    desk = commands.add_parser(
        "desk", help="act as the sandbox's agent (Sam) in this terminal: tickets, claim, reply, close"
    )
    desk.add_argument(
        "--agent-id", type=int, default=None, help="the agent's Telegram user id (default: the sandbox's Sam)"
    )
    desk.set_defaults(func=_desk)
    commands.add_parser(
        "doctor", help="check configuration, database, Rasa, the model, the action server, the app and Telegram"
    )
    backup = commands.add_parser(
        "backup", help="archive the SQLite databases, the model store and waiting complaints (tar.gz)"
    )
    backup.add_argument(
        "path", nargs="?", help="the archive or a folder for it (default: var/backups/frontline-<time>.tar.gz)"
    )
    backup.set_defaults(func=_backup)
    restore = commands.add_parser(
        "restore", help="put a backup back in place, keeping what it replaces in var/before-restore-<time>/"
    )
    restore.add_argument("path", help="the archive written by `frontline backup`")
    restore.add_argument("--force", action="store_true", help="restore even though the app answers on APP_PORT")
    restore.set_defaults(func=_restore)
    again = commands.add_parser(
        "reforget", help="after restoring a database by other means (pg_restore): forget again those forgotten since"
    )
    again.add_argument("--since", required=True, help="when the restored copy was made, e.g. 2026-01-31T09:30:00Z")
    again.set_defaults(func=_reforget)
    admin = commands.add_parser("admin", help="the admin console's accounts: add, list, remove")
    admin.set_defaults(func=_admin)
    actions = admin.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create an account (asks the password twice)")
    add.add_argument("username")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    actions.add_parser("list", help="list the accounts")
    actions.add_parser("remove", help="delete an account; its sessions end").add_argument("username")
    args = parser.parse_args(argv)
    if args.command == "doctor":  # it reports a malformed configuration itself, as one of its checks
        from bot.ops.doctor import run as doctor

        sys.exit(doctor())
    try:
        log_format = logs.log_format()
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"Configuration error: {exc}")
    logs.setup(settings.log_level, log_format)
    args.func(settings, args)


if __name__ == "__main__":
    main()
