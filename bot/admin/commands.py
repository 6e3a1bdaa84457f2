"""`frontline admin add|list|remove`: the console's accounts, managed from the server's command line."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

from bot.admin import accounts
from bot.config import Settings
from bot.storage.db import Sessions, create_engine, create_sessionmaker, migrate

CLI = "frontline admin"
T = TypeVar("T")


def _in_database(settings: Settings, work: Callable[[Sessions], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(settings.database_url)
        sessions = create_sessionmaker(engine)
        try:
            await migrate(engine)
            return await work(sessions)
        finally:
            sessions.dispose()
            await engine.dispose()

    return asyncio.run(run())


def read_password(stdin: TextIO, from_stdin: bool) -> str:
    """The new password: the first line of stdin, or asked twice on the terminal."""
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    if not stdin.isatty():
        raise accounts.AccountError("No terminal to ask the password on: pipe it in with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("The same password again: ") != first:
        raise accounts.AccountError("The two passwords differ; nothing was changed")
    return first


def add(settings: Settings, username: str, password_stdin: bool, stdin: TextIO | None = None) -> int:
    """Create an account; 0 when done, 1 with the reason printed otherwise."""
    try:
        password = accounts.check_new_password(read_password(stdin or sys.stdin, password_stdin))
        _in_database(settings, lambda sessions: accounts.add_account(sessions, username, password, CLI))
    except accounts.AccountError as exc:
        print(f"Not added: {exc}.", file=sys.stderr)
        return 1
    print(f"Added {username}. They sign in at {settings.app_url}/admin/ (or the address of your proxy).")
    return 0


def list_accounts(settings: Settings) -> int:
    """Print every account and when it last signed in."""

    async def names(sessions: Sessions) -> list[str]:
        return [
            f"{a.username}\tlast sign-in: {a.last_login_at:%Y-%m-%d %H:%M} UTC"
            if a.last_login_at
            else f"{a.username}\tnever signed in"
            for a in await sessions.read(accounts.list_accounts)
        ]

    found = _in_database(settings, names)
    print("\n".join(found) if found else "No admin accounts yet: add one with `frontline admin add <name>`.")
    return 0


def remove(settings: Settings, username: str) -> int:
    """Delete an account (its sessions end at once)."""
    try:
        _in_database(settings, lambda sessions: sessions.run(accounts.remove_account, username, CLI))
    except accounts.AccountError as exc:
        print(f"Not removed: {exc}.", file=sys.stderr)
        return 1
    print(f"Removed {username}; they are signed out everywhere.")
    return 0
