"""The forget log: every /forget, kept outside the database so a restore that replaces the database can apply
again the forgets made since its backup. It holds no personal data: a line is the time and a keyed hash
(HMAC-SHA256) of the Telegram user id, under a key of its own next to it in FRONTLINE_VAR."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from datetime import datetime
from pathlib import Path

LOG_NAME = "forget-log"
KEY_NAME = "forget-log.key"


def log_path(var_dir: Path) -> Path:
    return var_dir / LOG_NAME


def key(var_dir: Path) -> bytes:
    """The log's key, made once (32 random bytes, readable by the owner only)."""
    path = var_dir / KEY_NAME
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile: theirs is the key
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(secrets.token_bytes(32))
                file.flush()
                os.fsync(file.fileno())
    return path.read_bytes()


def digest(secret: bytes, telegram_user_id: int) -> str:
    """The keyed hash a user id is logged as."""
    return hmac.new(secret, str(telegram_user_id).encode(), hashlib.sha256).hexdigest()


def record(var_dir: Path, telegram_user_id: int, at: datetime) -> None:
    """Log one forget (one line, appended and flushed to disk before the database forgets)."""
    line = f"{at.isoformat(timespec='seconds')} {digest(key(var_dir), telegram_user_id)}\n"
    descriptor = os.open(log_path(var_dir), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="ascii") as file:
        file.write(line)
        file.flush()
        os.fsync(file.fileno())


def since(var_dir: Path, at: datetime) -> set[str]:
    """The hashes of the users forgotten at `at` or later (to the second)."""
    path = log_path(var_dir)
    if not path.exists():
        return set()
    cutoff = at.replace(microsecond=0)
    found = set()
    for line in path.read_text(encoding="ascii").splitlines():
        stamp, _, hashed = line.partition(" ")
        with contextlib.suppress(ValueError):
            if hashed and datetime.fromisoformat(stamp) >= cutoff:
                found.add(hashed)
    return found
