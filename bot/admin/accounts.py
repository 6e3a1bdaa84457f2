"""Console accounts and sessions: scrypt-hashed passwords, server-side sessions that expire, login throttling.

The cookie carries a random token; the database keeps only its SHA-256, so a copy of the database does not
sign anyone in. A session ends after IDLE without a request, or ABSOLUTE after sign-in, whichever comes first.
Signing in is throttled by client address and by username with a growing delay, never a hard lock
(`bot.admin.throttle`: the counts are in the database, shared by every process and machine). An unknown name, a wrong
password and a throttled attempt get the same answer after the same work: every attempt costs one password hash, done
in a thread (at most HASHING_AT_ONCE at a time), never on the event loop that also serves the customers.

The database's work is plain functions of a Session (run with `await sessions.run(fn, …)` or `sessions.read`).
Adding an account and signing in hash a password, slow on purpose: they do it between transactions, so the work run
on the database's thread stays database work only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot.admin import throttle
from bot.storage.db import Sessions
from bot.storage.models import AdminAccount, AdminSession, AuditEntry, utcnow

IDLE = timedelta(hours=2)
ABSOLUTE = timedelta(hours=12)
HASHING_AT_ONCE = 1  # one core hashes; the event loop keeps the other
REFUSAL = "Wrong username or password. After several wrong tries each next one waits a little longer."
MIN_PASSWORD = 10
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


class AccountError(ValueError):
    """An account request that cannot be done, said for the person at the keyboard."""


@dataclass(frozen=True)
class Signed:
    """Who a request's session belongs to, and the session's CSRF token."""

    username: str
    token_hash: str
    csrf: str


def hash_password(password: str, salt: bytes) -> str:
    """scrypt of the password with this salt, as hex."""
    return hashlib.scrypt(password.encode(), salt=salt, **SCRYPT).hex()


class Hasher:
    """Password work, at most `at_once` at a time: scrypt (slow on purpose) in a thread, never on the event loop.

    A sign-in's check reads the account in its turn too, so a flood of sign-ins never queues reads ahead of the
    customers' database work (on SQLite all of it goes through one thread).
    """

    def __init__(self, at_once: int = HASHING_AT_ONCE) -> None:
        self._slots = asyncio.Semaphore(at_once)

    async def hash(self, password: str, salt: bytes) -> str:
        async with self._slots:
            return await asyncio.to_thread(hash_password, password, salt)

    async def check(self, sessions: Sessions, username: str, password: str) -> AdminAccount | None:
        """The account when the password is right, else None: one read and one hash, for any name."""
        async with self._slots:
            account = await sessions.read(_account, username)
            salt = bytes.fromhex(account.salt) if account is not None else UNKNOWN_SALT
            computed = await asyncio.to_thread(hash_password, password, salt)
        if account is None or not hmac.compare_digest(computed, account.password_hash):
            return None
        return account


UNKNOWN_SALT = b"0" * 16  # an unknown name's hash is as slow as a real one's, and its result is never used


@dataclass
class Gate:
    """What every sign-in to one console goes through besides the throttle (in the database, shared by every
    console): the hasher, and the wait (`pause`)."""

    hasher: Hasher = field(default_factory=Hasher)


async def pause(seconds: float) -> None:
    """A throttled attempt's wait (tests replace it, with `utcnow`, to move time on without waiting)."""
    await asyncio.sleep(seconds)


def check_new_password(password: str) -> str:
    """The password, or AccountError saying why it is too weak."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"A password needs at least {MIN_PASSWORD} characters")
    return password


async def add_account(sessions: Sessions, username: str, password: str, who: str) -> None:
    """A new console account."""
    if not USERNAME.match(username):
        raise AccountError("A username is 2–64 letters, digits, or . _ @ -")
    salt = secrets.token_bytes(16)
    password_hash = await Hasher().hash(check_new_password(password), salt)
    await sessions.run(_add_account, username, salt.hex(), password_hash, who)


def _add_account(session: Session, username: str, salt: str, password_hash: str, who: str) -> None:
    if _account(session, username) is not None:
        raise AccountError(f"There is already an account {username}")
    session.add(AdminAccount(username=username, salt=salt, password_hash=password_hash))
    session.add(AuditEntry(who=who, action="add admin", target=username, before=None, after={"username": username}))


def _account(session: Session, username: str) -> AdminAccount | None:
    return session.scalar(select(AdminAccount).where(AdminAccount.username == username))


def list_accounts(session: Session) -> list[AdminAccount]:
    """Every account, by name."""
    return list(session.scalars(select(AdminAccount).order_by(AdminAccount.username)).all())


def remove_account(session: Session, username: str, who: str) -> None:
    """Delete an account; its sessions end with it."""
    account = _account(session, username)
    if account is None:
        raise AccountError(f"There is no account {username}")
    session.execute(delete(AdminSession).where(AdminSession.account_id == account.id))
    session.delete(account)
    session.add(AuditEntry(who=who, action="remove admin", target=username, before={"username": username}, after=None))


@dataclass(frozen=True)
class Attempt:
    """A sign-in's outcome: the new session's token, or why not."""

    token: str = ""
    refusal: str = ""


async def sign_in(
    sessions: Sessions,
    username: str,
    password: str,
    now: datetime | None = None,
    *,
    address: str = "",
    gate: Gate | None = None,
) -> Attempt:
    """A new session for the right password of an attempt the throttle lets through; otherwise REFUSAL.

    Whoever asks, for whatever name, the attempt costs one hash and the refusal is the same words: neither the
    answer nor its time tells whether the name exists or the attempt was throttled.
    """
    gate = gate or Gate()
    passed = await throttle.admit(sessions, address, username, now or utcnow())
    if passed.wait:
        await pause(passed.wait)
    account = await gate.hasher.check(sessions, username, password)
    await throttle.settle(sessions, passed, account is not None and not passed.refused, now or utcnow())
    if account is None or passed.refused:
        return Attempt(refusal=REFUSAL)
    token = secrets.token_urlsafe(32)
    await sessions.run(
        _open_session, account.id, _digest(token), secrets.token_urlsafe(32), utcnow() if now is None else now
    )
    return Attempt(token=token)


def _open_session(session: Session, account_id: int, token_hash: str, csrf: str, now: datetime) -> None:
    """The right password: a new session (expired ones nobody came back to go)."""
    session.execute(update(AdminAccount).where(AdminAccount.id == account_id).values(last_login_at=now))
    session.execute(
        delete(AdminSession).where(
            or_(AdminSession.last_seen_at < now - IDLE, AdminSession.created_at < now - ABSOLUTE)
        )
    )
    session.add(AdminSession(token_hash=token_hash, account_id=account_id, csrf=csrf, last_seen_at=now, created_at=now))


def signed(session: Session, token: str | None, now: datetime | None = None) -> Signed | None:
    """The session of a cookie's token, touched; None when there is none or it expired (then it is deleted)."""
    if not token:
        return None
    now = now or utcnow()
    row = session.get(AdminSession, _digest(token))
    if row is None:
        return None
    if now - row.last_seen_at > IDLE or now - row.created_at > ABSOLUTE:
        session.delete(row)
        return None
    row.last_seen_at = now
    account = session.get(AdminAccount, row.account_id)
    assert account is not None  # sessions go with their account
    return Signed(account.username, row.token_hash, row.csrf)


def sign_out(session: Session, token: str | None) -> None:
    """End the session of this token."""
    if token:
        session.execute(delete(AdminSession).where(AdminSession.token_hash == _digest(token)))


def flash(session: Session, token_hash: str, text: str, kind: str = "ok") -> None:
    """A message for the next page this session sees; kind is ok, warning or error."""
    row = session.get(AdminSession, token_hash)
    if row is not None:
        row.flash = [*row.flash, {"kind": kind, "text": text}]


def take_flash(session: Session, token_hash: str) -> list[dict[str, str]]:
    """The messages waiting for this session; they are shown once."""
    row = session.get(AdminSession, token_hash)
    if row is None or not row.flash:
        return []
    messages, row.flash = list(row.flash), []
    return messages


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
