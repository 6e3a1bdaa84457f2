"""Configuration from the environment, validated once at start."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bot import clock
from bot.hours import BusinessHours, HoursError, parse_hours

TELEGRAM_API_URL = "https://api.telegram.org/bot"
DEFAULT_ORDER_NUMBER_PATTERN = "[A-Za-z]{1,3}[0-9]{4,10}"
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


def telegram_file_url(api_url: str) -> str:
    """Where files are downloaded, derived from the API URL as Telegram lays them out (…/bot → …/file/bot)."""
    head, _, tail = api_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}"


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message says which and what is expected."""


@dataclass(frozen=True)
class Settings:
    """Everything the app and the action server read from the environment."""

    var_dir: Path
    models_dir: Path
    database_url: str
    rasa_url: str
    rasa_timeout: float
    action_server_url: str
    telegram_token: str | None
    telegram_api_url: str
    emulator_host: str
    emulator_port: int
    order_number_pattern: str
    max_nlu_chars: int
    log_level: str
    regular_min_visits: int
    regular_min_tickets: int
    failpoints: frozenset[str] = field(default_factory=frozenset)
    ticket_retry_seconds: float = 15.0
    agent_chat_id: int | None = None
    followup_hours: float = 24.0
    reannounce_minutes: float = 10.0
    # Messages a minute the app sends to one group (Telegram's limit is 20); 0 leaves the pacing to the server.
    telegram_group_rate: int = 20
    # Messages a second the app sends overall (Telegram's limit is about 30); 0 leaves the pacing to the server.
    telegram_rate: int = 28
    reopen_minutes: float = 15.0
    summary_minutes: float = 60.0
    # Queue and assignment (bot/desk/assign.py): each new request to an online agent in turn, up to a limit each;
    # without it, each is offered in private to one online agent at a time, the next after OFFER_SECONDS.
    auto_assign: bool = False
    max_chats_per_agent: int = 3
    away_after_minutes: float = 30.0
    offer_seconds: float = 60.0
    max_tickets_per_hour: int = 3  # a customer's requests beyond these go to their open (or latest) ticket
    relay_merge_seconds: float = 20.0  # a waiting customer's messages reach the group at most once in this long
    # The wait quoted for each person in line until the desk has a pace of its own (bot/storage/waits.py).
    wait_default_minutes_per_person: float = 5.0
    app_host: str = "127.0.0.1"
    app_port: int = 8080
    # Several Rasa instances (RASA_URL a comma-separated list): each customer has one, the others take over.
    rasa_urls: tuple[str, ...] = ()
    rasa_port: int | None = None  # where `frontline rasa` listens, when not the first RASA_URL's port
    redis_url: str | None = None
    webhook_url: str | None = None  # webhook mode: the public HTTPS address Telegram POSTs updates to
    webhook_secret: str | None = None
    app_workers: int = 1
    # Polling mode: the right to poll is a lease in the database, renewed every third of this; a dead instance's
    # successor waits at most this long (no wait when it died on the same machine).
    poller_lease_seconds: float = 10.0
    app_url: str = "http://127.0.0.1:8080"  # where Rasa reaches the app: its NLG endpoint and model server
    model_pull_seconds: int = 2
    # A TLS-terminating proxy in front of the console: trust its X-Forwarded-Proto, and its X-Forwarded-For (the last
    # entry) as the client's address that sign-ins are throttled by.
    console_behind_proxy: bool = False
    actions_host: str = "127.0.0.1"  # where `frontline actions` listens
    # The secrets between the processes (bot/tokens.py): from the environment, else generated under var_dir.
    actions_token: str | None = None
    rasa_token: str | None = None
    app_token: str | None = None
    metrics_token: str | None = None  # asked of GET /metrics by the app and the action server
    business_hours: BusinessHours = field(default_factory=lambda: parse_hours("", "UTC"))
    inbox_keep_days: float = 7.0  # handled Telegram updates are deleted from the inbox after this many days
    retention_days: float | None = None  # None: kept; else a customer idle this long with nothing open is forgotten
    agent_reply_minutes: float = 5.0  # a claimed customer unanswered this long: their agent is reminded (twice: admins)
    customer_hold_minutes: float = 10.0  # a customer unanswered and told nothing this long gets one holding message

    @property
    def sandbox(self) -> bool:
        """True when no Telegram token is configured: the app runs against its own emulator."""
        return self.telegram_token is None

    @property
    def pending_dir(self) -> Path:
        """Complaints the action server could not store yet, one file each, retried until stored."""
        return self.var_dir / "pending-complaints"

    @property
    def rasa_tracker_db(self) -> Path:
        """Rasa's tracker store when it is SQLite (the embedded default)."""
        return self.var_dir / "rasa-tracker.db"

    @property
    def rasa_tracker_url(self) -> str:
        """Rasa's tracker store: in our PostgreSQL database when we use one (so every Rasa instance shares it)."""
        if self.database_url.startswith("postgresql"):
            return self.database_url
        return f"sqlite+aiosqlite:///{self.rasa_tracker_db}"


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name} must be an http(s) URL such as {default!r}; got {value!r}")
    return value.rstrip("/")


def _group_rate(env: Mapping[str, str]) -> int:
    """TELEGRAM_GROUP_RATE: a whole number of messages a minute, or 0 for no pacing of our own."""
    raw = (env.get("TELEGRAM_GROUP_RATE") or "").strip()
    if not raw:
        return 20
    if not raw.isdigit():
        raise ConfigError(
            f"TELEGRAM_GROUP_RATE must be a whole number of messages a minute (20, or 0 for none); got {raw!r}"
        )
    return int(raw)


def _rate(env: Mapping[str, str]) -> int:
    """TELEGRAM_RATE: a whole number of messages a second overall, or 0 for no pacing of our own."""
    raw = (env.get("TELEGRAM_RATE") or "").strip()
    if not raw:
        return 28
    if not raw.isdigit():
        raise ConfigError(f"TELEGRAM_RATE must be a whole number of messages a second (28, or 0 for none); got {raw!r}")
    return int(raw)


def _number(env: Mapping[str, str], name: str, default: float, kind: Callable[[Any], float] = float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a {'whole ' if kind is int else ''}number such as {default}; got {raw!r}"
        ) from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than zero; got {raw!r}")
    return value


def _database_url(env: Mapping[str, str], var_dir: Path) -> str:
    value = env.get("DATABASE_URL", "").strip()
    if not value:
        return f"sqlite+aiosqlite:///{var_dir / 'frontline.db'}"
    if value.startswith(("postgres://", "postgresql://")):
        value = "postgresql+asyncpg://" + value.split("://", 1)[1]
    if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:5432/dbname) "
            f"or an SQLite one (sqlite+aiosqlite:///path/to/file.db); got {value!r}"
        )
    return value


def _order_pattern(env: Mapping[str, str]) -> str:
    value = env.get("ORDER_NUMBER_PATTERN", "").strip() or DEFAULT_ORDER_NUMBER_PATTERN
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(
            f"ORDER_NUMBER_PATTERN must be a regular expression such as {DEFAULT_ORDER_NUMBER_PATTERN!r}; {exc}"
        ) from None
    return value


def _token(env: Mapping[str, str]) -> str | None:
    value = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not value:
        return None
    if not _TOKEN.match(value):
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN must look like 123456789:AAE...; ask @BotFather for one, or unset it for sandbox mode"
        )
    return value


def _rasa_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("RASA_URL", "").strip() or "http://127.0.0.1:5005"
    return tuple(
        _url({"RASA_URL": part}, "RASA_URL", "http://127.0.0.1:5005") for part in raw.split(",") if part.strip()
    )


def _workers(env: Mapping[str, str]) -> int:
    workers = int(_number(env, "APP_WORKERS", 1, int))
    if workers > 1 and not (
        env.get("WEBHOOK_URL", "").strip() and _database_url(env, Path("var")).startswith("postgresql")
    ):
        raise ConfigError("APP_WORKERS above 1 needs webhook mode (WEBHOOK_URL) and PostgreSQL (DATABASE_URL)")
    return workers


def _webhook(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    url, secret = env.get("WEBHOOK_URL", "").strip(), env.get("WEBHOOK_SECRET", "").strip()
    if not url:
        return None, None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"WEBHOOK_URL must be the public https:// address of the app's /telegram path; got {url!r}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", secret):
        raise ConfigError("WEBHOOK_SECRET must be 16-256 letters, digits, _ or - when WEBHOOK_URL is set")
    return url, secret


def _redis_url(env: Mapping[str, str]) -> str | None:
    value = env.get("REDIS_URL", "").strip()
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ConfigError(f"REDIS_URL must look like redis://127.0.0.1:6379/0; got {value!r}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError(f"{name} must be a port number (0 for any free port), like {default}; got {raw!r}")
    return int(raw)


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A token between two processes (bot/tokens.py); unset: generated under FRONTLINE_VAR."""
    value = env.get(name, "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value):
        raise ConfigError(
            f"{name} must be 16-256 letters, digits, _ or - (the same on both sides of its hop), "
            "such as the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value


def _hours(env: Mapping[str, str]) -> BusinessHours:
    try:
        return parse_hours(env.get("BUSINESS_HOURS", ""), env.get("BUSINESS_TIMEZONE", "UTC").strip())
    except HoursError as exc:
        raise ConfigError(f"BUSINESS_HOURS / BUSINESS_TIMEZONE: {exc}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip()
    if value not in ("", "0", "1"):
        raise ConfigError(f"{name} must be 1 or 0, not {value!r}")
    return value == "1"


def _days(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    """A number of days, at least one (an empty value: the default; None means off)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    days = _number(env, name, 1.0)
    if days < 1:
        raise ConfigError(f"{name} must be a number of days, at least 1; got {raw!r}")
    return days


def _agent_chat(env: Mapping[str, str]) -> int | None:
    value = env.get("AGENT_CHAT_ID", "").strip()
    if not value:
        return None
    if not re.fullmatch(r"-100\d{5,15}", value):
        raise ConfigError(f"AGENT_CHAT_ID must be the agents' supergroup id, like -1001234567890; got {value!r}")
    return int(value)


def _clock(env: Mapping[str, str]) -> None:
    """FRONTLINE_CLOCK (tests and rehearsals: where the app's clock starts), read by bot.clock as the process starts."""
    try:
        if (env.get(clock.VARIABLE) or "").strip():
            clock.parse(env[clock.VARIABLE])
    except clock.ClockError as exc:
        raise ConfigError(str(exc)) from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise ConfigError naming the variable that is wrong."""
    env = os.environ if env is None else env
    var_dir = Path(env.get("FRONTLINE_VAR", "var")).resolve()
    log_level = env.get("LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR; got {log_level!r}")
    _clock(env)
    return Settings(
        var_dir=var_dir,
        models_dir=Path(env.get("FRONTLINE_MODELS", var_dir / "models")).resolve(),
        database_url=_database_url(env, var_dir),
        rasa_url=_rasa_urls(env)[0],
        rasa_urls=_rasa_urls(env),
        rasa_port=_port(env, "RASA_PORT", 0) or None,
        redis_url=_redis_url(env),
        webhook_url=_webhook(env)[0],
        webhook_secret=_webhook(env)[1],
        app_workers=_workers(env),
        poller_lease_seconds=_number(env, "POLLER_LEASE_SECONDS", 10.0),
        rasa_timeout=_number(env, "RASA_TIMEOUT", 8.0),
        action_server_url=_url(env, "ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook"),
        telegram_token=_token(env),
        telegram_api_url=_url(env, "TELEGRAM_API_URL", TELEGRAM_API_URL),
        emulator_host=env.get("EMULATOR_HOST", "127.0.0.1"),
        emulator_port=int(_number(env, "EMULATOR_PORT", 8081, int)),
        order_number_pattern=_order_pattern(env),
        max_nlu_chars=int(_number(env, "MAX_NLU_CHARS", 1000, int)),
        log_level=log_level,
        regular_min_visits=int(_number(env, "REGULAR_MIN_VISITS", 3, int)),
        regular_min_tickets=int(_number(env, "REGULAR_MIN_TICKETS", 2, int)),
        failpoints=frozenset(p for p in env.get("FRONTLINE_FAILPOINTS", "").split(",") if p),
        ticket_retry_seconds=_number(env, "TICKET_RETRY_SECONDS", 15.0),
        agent_chat_id=_agent_chat(env),
        followup_hours=_number(env, "FOLLOWUP_HOURS", 24.0),
        reannounce_minutes=_number(env, "REANNOUNCE_MINUTES", 10.0),
        telegram_group_rate=_group_rate(env),
        telegram_rate=_rate(env),
        reopen_minutes=_number(env, "REOPEN_MINUTES", 15.0),
        summary_minutes=_number(env, "SUMMARY_MINUTES", 60.0),
        auto_assign=_flag(env, "AUTO_ASSIGN"),
        max_chats_per_agent=max(1, int(_number(env, "MAX_CHATS_PER_AGENT", 3, int))),
        away_after_minutes=_number(env, "AWAY_AFTER_MINUTES", 30.0),
        offer_seconds=_number(env, "OFFER_SECONDS", 60.0),
        max_tickets_per_hour=int(_number(env, "MAX_TICKETS_PER_HOUR", 3, int)),
        relay_merge_seconds=_number(env, "RELAY_MERGE_SECONDS", 20.0),
        wait_default_minutes_per_person=_number(env, "WAIT_DEFAULT_MINUTES_PER_PERSON", 5.0),
        app_host=env.get("APP_HOST", "127.0.0.1"),
        app_port=_port(env, "APP_PORT", 8080),
        app_url=_url(env, "APP_URL", f"http://127.0.0.1:{_port(env, 'APP_PORT', 8080)}"),
        model_pull_seconds=max(1, int(_number(env, "MODEL_PULL_SECONDS", 2, int))),
        console_behind_proxy=_flag(env, "CONSOLE_BEHIND_PROXY"),
        actions_host=env.get("ACTIONS_HOST", "").strip() or "127.0.0.1",
        actions_token=_secret(env, "ACTIONS_TOKEN"),
        rasa_token=_secret(env, "RASA_TOKEN"),
        app_token=_secret(env, "APP_TOKEN"),
        metrics_token=_secret(env, "METRICS_TOKEN"),
        business_hours=_hours(env),
        inbox_keep_days=_days(env, "INBOX_KEEP_DAYS", 7.0) or 7.0,
        retention_days=_days(env, "RETENTION_DAYS", None),
        agent_reply_minutes=_number(env, "AGENT_REPLY_MINUTES", 5.0),
        customer_hold_minutes=_number(env, "CUSTOMER_HOLD_MINUTES", 10.0),
    )
