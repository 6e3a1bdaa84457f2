"""Console accounts and sessions: scrypt-hashed passwords, server-side sessions that expire, login throttling.

The cookie carries a random token; the database keeps only its SHA-256, so a copy of the database does not
sign anyone in. A session ends after IDLE without a request, or ABSOLUTE after sign-in, whichever comes first.
After MAX_FAILURES wrong passwords in a row an account refuses every password for LOCKOUT.

The database's work is plain functions of a Session (run with `await sessions.run(fn, …)` or `sessions.read`).
Adding an account and signing in hash a password, slow on purpose: they do it between transactions, so the work run
on the database's thread stays database work only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot.storage.db import Sessions
from bot.storage.models import AdminAccount, AdminSession, AuditEntry, utcnow

IDLE = timedelta(hours=2)
ABSOLUTE = timedelta(hours=12)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
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
    await sessions.run(_add_account, username, salt.hex(), hash_password(check_new_password(password), salt), who)


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


async def sign_in(sessions: Sessions, username: str, password: str, now: datetime | None = None) -> Attempt:
    """A new session for the right password; a refusal (the same words for an unknown name) is counted."""
    now = now or utcnow()
    account = await sessions.read(_account, username)
    if account is None:
        hash_password(password, b"0" * 16)  # as slow as a real check: the answer's time does not tell who exists
        return Attempt(refusal="Wrong username or password")
    if account.locked_until is not None and account.locked_until > now:
        minutes = max(1, round((account.locked_until - now).total_seconds() / 60))
        return Attempt(refusal=f"Too many wrong passwords. Try again in {minutes} minute{'s' if minutes > 1 else ''}")
    if not hmac.compare_digest(hash_password(password, bytes.fromhex(account.salt)), account.password_hash):
        await sessions.run(_count_failure, account.id, now)
        return Attempt(refusal="Wrong username or password")
    token = secrets.token_urlsafe(32)
    await sessions.run(_open_session, account.id, _digest(token), secrets.token_urlsafe(32), now)
    return Attempt(token=token)


def _count_failure(session: Session, account_id: int, now: datetime) -> None:
    """A wrong password, counted in the database, not from what the request read: wrong passwords sent side by side
    all count. The last one allowed locks the account."""
    failures = session.scalar(
        update(AdminAccount)
        .where(AdminAccount.id == account_id)
        .values(failed_logins=AdminAccount.failed_logins + 1)
        .returning(AdminAccount.failed_logins)
    )
    if failures is not None and failures >= MAX_FAILURES:
        session.execute(
            update(AdminAccount)
            .where(AdminAccount.id == account_id)
            .values(locked_until=now + LOCKOUT, failed_logins=0)
        )


def _open_session(session: Session, account_id: int, token_hash: str, csrf: str, now: datetime) -> None:
    """The right password: the count starts again, and a new session (expired ones nobody came back to go)."""
    session.execute(
        update(AdminAccount)
        .where(AdminAccount.id == account_id)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
    )
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
