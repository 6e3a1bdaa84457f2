"""Training only when the content changed: the model's fingerprint and the reuse of a current model."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot import rasa_runtime
from bot.config import load_settings


def _settings(tmp_path: Path, **env: str):
    return load_settings({"FRONTLINE_VAR": str(tmp_path), **env})


def test_the_fingerprint_is_stable_and_follows_the_order_number_format(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert rasa_runtime.fingerprint(settings) == rasa_runtime.fingerprint(settings)
    assert rasa_runtime.fingerprint(settings) != rasa_runtime.fingerprint(
        _settings(tmp_path, ORDER_NUMBER_PATTERN="ORD[0-9]{6}")
    )


def test_the_fingerprint_follows_the_training_content(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    files = rasa_runtime.repository_content()
    unchanged = rasa_runtime.fingerprint(settings, files)
    assert unchanged == rasa_runtime.fingerprint(settings)  # by default, the repository's content
    edited = {**files, "nlu/faq.yml": files["nlu/faq.yml"] + "\n  - intent: faq/new\n    examples: |\n      - new\n"}
    assert rasa_runtime.fingerprint(settings, edited) != unchanged


def test_the_content_read_for_training_is_what_the_database_exports(tmp_path: Path) -> None:
    """The Rasa runtime reads the files as they are; the content is exported in a canonical form, and the repository's
    files are in it: a model trained from the seeded database is current for the repository, and an export read back
    from its folder has the fingerprint of the files it was written from."""
    from bot.content.files import read_tree, write_files, write_tree

    content = read_tree(rasa_runtime.ROOT)
    assert rasa_runtime.repository_content() == write_files(content)
    content.intents["greet"].examples.append("ahoy there")
    write_tree(content, tmp_path / "export")
    assert rasa_runtime.content_files(tmp_path / "export") == write_files(content)


def test_the_fingerprint_follows_the_code_the_model_depends_on(tmp_path: Path, monkeypatch) -> None:
    settings = _settings(tmp_path)
    copy = tmp_path / "repo"
    for name in rasa_runtime.CODE_INPUTS:
        source = rasa_runtime.ROOT / name
        if source.is_dir():
            for file in (f for f in source.rglob("*") if f.is_file() and "__pycache__" not in f.parts):
                (copy / name / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                (copy / name / file.relative_to(source)).write_bytes(file.read_bytes())
        else:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_bytes(source.read_bytes())
    files = rasa_runtime.repository_content()
    monkeypatch.setattr(rasa_runtime, "ROOT", copy)
    unchanged = rasa_runtime.fingerprint(settings, files)
    (copy / "config.yml").write_text((copy / "config.yml").read_text() + "\n# tuned\n")
    assert rasa_runtime.fingerprint(settings, files) != unchanged


def test_a_current_model_is_reused_without_training(tmp_path: Path, monkeypatch) -> None:
    settings = _settings(tmp_path)
    settings.models_dir.mkdir(parents=True)
    current = settings.models_dir / f"{rasa_runtime.fingerprint(settings)}.tar.gz"
    current.write_bytes(b"model")
    monkeypatch.setattr(
        rasa_runtime.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained"))
    )
    assert rasa_runtime.train(settings) == current
    assert rasa_runtime.latest_model(settings) == current


def test_a_stale_model_is_served_only_until_one_is_trained(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.models_dir.mkdir(parents=True)
    stale = settings.models_dir / "0123456789abcdef.tar.gz"
    stale.write_bytes(b"old")
    assert rasa_runtime.current_model(settings) is None
    assert rasa_runtime.latest_model(settings) == stale


def test_endpoints_share_conversations_on_postgresql_with_a_redis_lock_store(tmp_path) -> None:
    from bot.config import load_settings
    from bot.rasa_runtime import endpoints_config

    embedded = endpoints_config(load_settings({"FRONTLINE_VAR": str(tmp_path)}))
    assert embedded["tracker_store"] == {
        "type": rasa_runtime.TRACKER_STORE,
        "dialect": "sqlite",
        "db": str(tmp_path / "rasa-tracker.db"),
    }
    assert "lock_store" not in embedded
    scaled = endpoints_config(
        load_settings(
            {
                "FRONTLINE_VAR": str(tmp_path),
                "DATABASE_URL": "postgresql://front%40line:s3cret@db.internal:6432/frontline",
                "REDIS_URL": "redis://:pw@cache.internal:6380/2",
                "ACTION_SERVER_URL": "http://actions:5055/webhook",
            }
        )
    )
    assert scaled["tracker_store"] == {
        "type": rasa_runtime.TRACKER_STORE,
        "dialect": "postgresql",
        "url": "db.internal",
        "port": 6432,
        "db": "frontline",
        "username": "front@line",
        "password": "s3cret",
    }
    assert scaled["lock_store"] == {
        "type": "redis",
        "url": "cache.internal",
        "port": 6380,
        "db": 2,
        "password": "pw",
        "use_ssl": False,
        "key_prefix": "frontline",
    }
    actions = (tmp_path / "tokens" / "actions").read_text().strip()
    assert scaled["action_endpoint"] == {
        "url": "http://actions:5055/webhook",
        "headers": {"Authorization": f"Bearer {actions}"},
    }


def test_rasa_asks_the_app_for_responses_and_pulls_the_live_model_from_it(tmp_path) -> None:
    settings = _settings(tmp_path, APP_PORT="8099", MODEL_PULL_SECONDS="3")
    config = rasa_runtime.endpoints_config(settings)
    app = {"Authorization": f"Bearer {(tmp_path / 'tokens' / 'app').read_text().strip()}"}
    assert config["nlg"] == {"url": "http://127.0.0.1:8099/nlg", "headers": app}
    assert config["models"] == {
        "url": "http://127.0.0.1:8099/models/live",
        "wait_time_between_pulls": 3,
        "headers": app,
    }
    elsewhere = rasa_runtime.endpoints_config(_settings(tmp_path, APP_URL="http://app.internal:8080/"))
    assert elsewhere["nlg"]["url"] == "http://app.internal:8080/nlg"


def test_every_hop_carries_its_own_token_in_a_header_and_the_files_are_private(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ACTIONS_TOKEN="a" * 20, RASA_TOKEN="r" * 20, APP_TOKEN="p" * 20)
    endpoints, credentials = rasa_runtime.write_endpoints(settings)
    config = yaml.safe_load(endpoints.read_text())
    assert config["action_endpoint"]["headers"] == {"Authorization": "Bearer " + "a" * 20}
    assert config["nlg"]["headers"] == config["models"]["headers"] == {"Authorization": "Bearer " + "p" * 20}
    assert not any("token" in str(endpoint.get("url", "")) for endpoint in config.values())
    assert yaml.safe_load(credentials.read_text()) == {rasa_runtime.CHANNEL: {"token": "r" * 20}}
    assert endpoints.stat().st_mode & 0o777 == credentials.stat().st_mode & 0o777 == 0o600


def test_only_training_keeps_the_encoders_embeddings_on_disk(tmp_path: Path, monkeypatch) -> None:
    from encoder.cache import ENVIRONMENT

    monkeypatch.delenv(ENVIRONMENT, raising=False)
    settings = _settings(tmp_path)
    assert rasa_runtime.ENCODER_CACHE_VARIABLE == ENVIRONMENT
    assert rasa_runtime.training_env(settings)[ENVIRONMENT] == str(rasa_runtime.ROOT / "var" / "encoders" / "cache")
    # A serving Rasa would write customers' messages' embeddings there: it never gets the variable.
    assert ENVIRONMENT not in rasa_runtime.rasa_env(settings)
