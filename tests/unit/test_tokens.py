"""The tokens between the processes (bot/tokens.py): from the environment, or generated once under FRONTLINE_VAR,
private to its owner; a request is accepted only with exactly the expected token."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import tokens
from bot.config import ConfigError, load_settings


def test_a_missing_token_is_generated_once_private_and_then_kept(tmp_path: Path) -> None:
    config = load_settings({"FRONTLINE_VAR": str(tmp_path)})
    assert tokens.configured(config, "actions") is None
    first = tokens.token(config, "actions")
    assert len(first) >= 32
    assert tokens.token(load_settings({"FRONTLINE_VAR": str(tmp_path)}), "actions") == first
    assert tokens.path(config, "actions").stat().st_mode & 0o777 == 0o600
    assert tokens.path(config, "actions").parent.stat().st_mode & 0o077 == 0
    assert len({first, tokens.token(config, "rasa"), tokens.token(config, "app")}) == 3  # one per hop


def test_processes_starting_together_share_one_generated_token(tmp_path: Path) -> None:
    config = load_settings({"FRONTLINE_VAR": str(tmp_path)})
    with ThreadPoolExecutor(8) as pool:
        found = set(pool.map(lambda _: tokens.token(config, "rasa"), range(32)))
    assert len(found) == 1
    assert sorted(p.name for p in tokens.path(config, "rasa").parent.iterdir()) == ["rasa"]


def test_the_environment_sets_a_token_for_several_machines(tmp_path: Path) -> None:
    config = load_settings({"FRONTLINE_VAR": str(tmp_path), "ACTIONS_TOKEN": "x" * 24})
    assert tokens.token(config, "actions") == "x" * 24
    assert not tokens.path(config, "actions").exists()


@pytest.mark.parametrize("variable", ["ACTIONS_TOKEN", "RASA_TOKEN", "APP_TOKEN"])
@pytest.mark.parametrize("value", ["short", "has space inside it here", "x" * 300, "semi;colon-0123456789"])
def test_a_malformed_token_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: value})


def test_the_action_server_binds_loopback_unless_told() -> None:
    assert load_settings({}).actions_host == "127.0.0.1"
    assert load_settings({"ACTIONS_HOST": "0.0.0.0"}).actions_host == "0.0.0.0"


@settings(deadline=None, max_examples=300)
@given(expected=st.text(min_size=0, max_size=40), header=st.one_of(st.none(), st.text(max_size=60)))
def test_only_the_exact_bearer_token_is_accepted(expected: str, header: str | None) -> None:
    assert tokens.accepts(header, expected) == (bool(expected) and header == f"Bearer {expected}")
    if expected:
        assert tokens.accepts(f"Bearer {expected}", expected)
        assert not tokens.accepts(f"Bearer {expected}x", expected)
        assert not tokens.accepts(expected, expected)
