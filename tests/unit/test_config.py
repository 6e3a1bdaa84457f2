"""Configuration: sensible defaults, and a refusal that names the variable when a value is wrong."""

import pytest

from bot.config import ConfigError, load_settings, telegram_file_url


def test_defaults_run_the_sandbox_on_sqlite() -> None:
    settings = load_settings({})
    assert settings.sandbox
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.rasa_url == "http://127.0.0.1:5005"


def test_postgres_url_gets_the_async_driver() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://u@db:5432/frontline"})
    assert settings.database_url == "postgresql+asyncpg://u@db:5432/frontline"


def test_file_url_follows_the_api_url() -> None:
    assert telegram_file_url("http://127.0.0.1:9000/bot") == "http://127.0.0.1:9000/file/bot"
    assert telegram_file_url("https://tg.example.org/api/bot/") == "https://tg.example.org/api/file/bot"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TELEGRAM_BOT_TOKEN", "not-a-token"),
        ("RASA_URL", "localhost:5005"),
        ("TELEGRAM_API_URL", "ftp://x"),
        ("DATABASE_URL", "mysql://x"),
        ("RASA_TIMEOUT", "soon"),
        ("RASA_TIMEOUT", "-1"),
        ("ORDER_NUMBER_PATTERN", "[A-Z"),
        ("LOG_LEVEL", "LOUD"),
        ("EMULATOR_PORT", "80.5"),
        ("AGENT_CHAT_ID", "12345"),
        ("AGENT_CHAT_ID", "@agents"),
        ("BUSINESS_HOURS", "weekdays 9 to 5"),
        ("BUSINESS_TIMEZONE", "Atlantis/Capital"),
        ("TICKET_RETRY_SECONDS", "0"),
        ("REOPEN_MINUTES", "never"),
        ("TELEGRAM_GROUP_RATE", "-5"),
        ("TELEGRAM_GROUP_RATE", "fast"),
        ("TELEGRAM_RATE", "-1"),
        ("TELEGRAM_RATE", "2.5"),
    ],
)
def test_malformed_value_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: value})


def test_a_token_switches_sandbox_off() -> None:
    assert not load_settings({"TELEGRAM_BOT_TOKEN": "123456:ABC-def_1"}).sandbox


def test_the_desk_settings() -> None:
    settings = load_settings(
        {
            "AGENT_CHAT_ID": "-1001234567890",
            "BUSINESS_HOURS": "Mon-Fri 09:00-17:00",
            "BUSINESS_TIMEZONE": "Europe/Berlin",
            "FOLLOWUP_HOURS": "20",
        }
    )
    assert settings.agent_chat_id == -1001234567890 and settings.followup_hours == 20
    assert settings.business_hours.zone.key == "Europe/Berlin" and not settings.business_hours.always_open
    assert load_settings({}).business_hours.always_open and load_settings({}).agent_chat_id is None


def test_the_groups_pacing_is_telegrams_limit_unless_turned_off() -> None:
    assert load_settings({}).telegram_group_rate == 20
    assert load_settings({"TELEGRAM_GROUP_RATE": "0"}).telegram_group_rate == 0
    assert load_settings({"TELEGRAM_GROUP_RATE": "30"}).telegram_group_rate == 30


def test_the_overall_pacing_is_just_under_telegrams_limit_unless_turned_off() -> None:
    assert load_settings({}).telegram_rate == 28
    assert load_settings({"TELEGRAM_RATE": "0"}).telegram_rate == 0
    assert load_settings({"TELEGRAM_RATE": "14"}).telegram_rate == 14


def test_inbox_keep_days_defaults_to_a_week_and_retention_is_off() -> None:
    settings = load_settings({})
    assert (settings.inbox_keep_days, settings.retention_days) == (7.0, None)
    settings = load_settings({"INBOX_KEEP_DAYS": "2", "RETENTION_DAYS": "365"})
    assert (settings.inbox_keep_days, settings.retention_days) == (2.0, 365.0)


@pytest.mark.parametrize("name", ["INBOX_KEEP_DAYS", "RETENTION_DAYS"])
@pytest.mark.parametrize("value", ["0.5", "0", "-3", "a week"])
def test_days_must_be_at_least_one(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})
