"""Console accounts: `frontline admin add|list|remove`, password hashing, sign-in and its throttling."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.admin import accounts, commands
from bot.cli import main
from bot.config import load_settings
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.models import AdminAccount, AdminSession, AuditEntry, utcnow


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("FRONTLINE_VAR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    return load_settings()


def _rows(settings, model) -> list:
    async def read() -> list:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                return list((await session.scalars(select(model))).all())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_add_list_remove_from_the_command_line(settings, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    with pytest.raises(SystemExit) as exit_code:
        main(["admin", "add", "alice", "--password-stdin"])
    assert exit_code.value.code == 0 and "Added alice" in capsys.readouterr().out
    [account] = _rows(settings, AdminAccount)
    assert account.username == "alice" and "a long enough password" not in account.password_hash
    assert account.password_hash == accounts.hash_password("a long enough password", bytes.fromhex(account.salt))
    assert commands.add(settings, "alice", True, io.StringIO("another long password\n")) == 1
    assert "There is already an account alice" in capsys.readouterr().err
    assert commands.add(settings, "bob", True, io.StringIO("short\n")) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    assert commands.add(settings, "bob", False, io.StringIO("not a terminal\n")) == 1
    assert "--password-stdin" in capsys.readouterr().err
    assert commands.list_accounts(settings) == 0 and "alice\tnever signed in" in capsys.readouterr().out
    assert commands.remove(settings, "alice") == 0 and commands.remove(settings, "alice") == 1
    assert _rows(settings, AdminAccount) == []
    assert [(e.who, e.action, e.target) for e in _rows(settings, AuditEntry)] == [
        ("frontline admin", "add admin", "alice"),
        ("frontline admin", "remove admin", "alice"),
    ]


def test_salts_differ_so_equal_passwords_hash_apart(settings) -> None:
    for name in ("ann", "ben"):
        assert commands.add(settings, name, True, io.StringIO("the same password\n")) == 0
    first, second = _rows(settings, AdminAccount)
    assert first.salt != second.salt and first.password_hash != second.password_hash


async def test_sign_in_opens_a_session_and_clears_expired_ones(sessions) -> None:
    await accounts.add_account(sessions, "alice", "a long enough password", "test")
    now = utcnow()
    assert (await accounts.sign_in(sessions, "alice", "wrong", now)).refusal == accounts.REFUSAL
    assert (await accounts.sign_in(sessions, "nobody", "wrong", now)).refusal == accounts.REFUSAL
    [account] = await sessions.read(accounts.list_accounts)
    async with sessions.begin() as session:
        session.add(
            AdminSession(
                token_hash="left long ago",
                account_id=account.id,
                csrf="x",
                last_seen_at=now - accounts.IDLE * 2,
                created_at=now - accounts.IDLE * 2,
            )
        )
    later = now + timedelta(seconds=1)
    attempt = await accounts.sign_in(sessions, "alice", "a long enough password", later)
    assert attempt.token and not attempt.refusal
    assert (await sessions.run(accounts.signed, attempt.token, later)).username == "alice"
    assert await sessions.run(accounts.signed, "not a token", later) is None
    async with sessions() as session:
        stored = (await session.scalars(select(AdminSession))).one()  # the expired one was cleared away
    assert stored.token_hash != attempt.token  # only its hash is kept
    await sessions.run(accounts.remove_account, "alice", "test")
    assert await sessions.run(accounts.signed, attempt.token, later) is None


async def test_guesses_sent_side_by_side_are_slowed_as_if_each_had_failed(sessions, monkeypatch) -> None:
    """Twelve guesses from one address at the same moment: the first FREE go at once, the next wait longer and
    longer, and those that would wait too long are refused outright; every one costs a hash, none gets in."""
    await accounts.add_account(sessions, "alice", "a long enough password", "test")
    waits: list[float] = []

    async def pause(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(accounts, "pause", pause)
    gate, now = accounts.Gate(), utcnow()

    async def guess() -> str:
        return (await accounts.sign_in(sessions, "alice", "wrong", now, address="198.51.100.7", gate=gate)).refusal

    assert await asyncio.gather(*(guess() for _ in range(12))) == [accounts.REFUSAL] * 12
    assert sorted(waits) == [1.0, 3.0, 7.0], "12 at once: 3 at once, 3 after a growing wait, 6 refused"
