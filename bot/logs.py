"""Log setup for every `frontline` process: text for people, JSON lines for deployments, each line with the
conversation id (`tg-<chat_id>`, Rasa's sender id) of the update being handled when there is one.

The id lives in a context variable: the dispatcher sets it in the task that handles a chat's updates, and
asyncio tasks started from there inherit it, so every log call made on the way carries it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.config import ConfigError

FORMATS = ("text", "json")
QUIET_LOGGERS = ("httpx", "alembic")
conversation_id: ContextVar[str | None] = ContextVar("frontline_conversation_id", default=None)


def bind_chat(chat_id: int | None) -> None:
    """Log lines from here on (in this task and the tasks it starts) carry `tg-<chat_id>`; 0 or None: no id."""
    conversation_id.set(f"tg-{chat_id}" if chat_id else None)


def bind_conversation(sender_id: str | None) -> None:
    """The same for a conversation known by its Rasa sender id (the action server's tracker.sender_id)."""
    conversation_id.set(sender_id or None)


def log_format(env: Mapping[str, str] | None = None) -> str:
    """LOG_FORMAT: `text` (default) or `json`; ConfigError for anything else."""
    env = os.environ if env is None else env
    value = env.get("LOG_FORMAT", "").strip().lower() or "text"
    if value not in FORMATS:
        raise ConfigError(f"LOG_FORMAT must be text or json; got {env.get('LOG_FORMAT')!r}")
    return value


class ConversationFilter(logging.Filter):
    """Stamps each record with the conversation id of the context it was logged in (None outside an update)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "conversation_id"):
            record.conversation_id = conversation_id.get()
        return True


class TextFormatter(logging.Formatter):
    """`2024-05-01 12:00:00,123 INFO bot.chat [tg-42]: message`; the brackets only inside an update."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(conversation)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        current = getattr(record, "conversation_id", None)
        record.conversation = f" [{current}]" if current else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, conversation_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "conversation_id": getattr(record, "conversation_id", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def make_handler(fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """A stream handler that stamps and formats records the way LOG_FORMAT says."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ConversationFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


def setup(level: str = "INFO", fmt: str | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger (ours and the libraries') through one handler on the root logger."""
    handler = make_handler(log_format() if fmt is None else fmt, stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
