"""The Rasa side, run from our environment: training when the content changed, and serving."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from bot.config import Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
RASA_VENV = Path(os.environ.get("RASA_VENV", ROOT / ".venv-rasa"))
SPACY_PIPELINE = Path("spacy") / "frontline_en"
TRAINING_INPUTS = ("config.yml", "domain.yml", "nlu", "requirements/rasa.txt")


def fingerprint(settings: Settings) -> str:
    """A hash of everything the trained model depends on."""
    digest = hashlib.sha256(settings.order_number_pattern.encode())
    for name in TRAINING_INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def current_model(settings: Settings) -> Path | None:
    """The model trained from the content as it is now, if there is one."""
    path = settings.models_dir / f"{fingerprint(settings)}.tar.gz"
    return path if path.exists() else None


def latest_model(settings: Settings) -> Path | None:
    """The current model, or else the most recently trained one."""
    found = sorted(settings.models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return current_model(settings) or (found[-1] if found else None)


def _rasa_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["RASA_TELEMETRY_ENABLED"] = "false"  # it would report to a server on the internet
    env["ORDER_NUMBER_PATTERN"] = settings.order_number_pattern
    env["PYTHONPATH"] = str(ROOT)
    return env


def build_spacy_pipeline(settings: Settings) -> None:
    """Build the project's own spaCy pipeline (rules it ships) where config.yml expects it."""
    command = [
        str(RASA_VENV / "bin" / "python"), "-m", "nlu.spacy_pipeline",
        "--out", str(ROOT / "var" / SPACY_PIPELINE),
        "--order-number-pattern", settings.order_number_pattern,
    ]
    subprocess.run(command, cwd=ROOT, env=_rasa_env(settings), check=True)


def train(settings: Settings, *, force: bool = False) -> Path:
    """Train unless a model for the current content exists; return the model's path."""
    existing = current_model(settings)
    if existing and not force:
        log.info("model %s is current; not retraining", existing.name)
        return existing
    build_spacy_pipeline(settings)
    name = fingerprint(settings)
    command = [
        str(RASA_VENV / "bin" / "rasa"), "train",
        "--config", "config.yml", "--domain", "domain.yml", "--data", "nlu",
        "--out", str(settings.models_dir), "--fixed-model-name", name,
    ]
    subprocess.run(command, cwd=ROOT, env=_rasa_env(settings), check=True)
    return settings.models_dir / f"{name}.tar.gz"


def endpoints_config(settings: Settings) -> dict[str, Any]:
    """Rasa's endpoints: our action server; the tracker store in SQLite, or in our PostgreSQL with a Redis lock
    store (then every Rasa instance shares the conversations, and one conversation is handled by one at a time)."""
    config: dict[str, Any] = {"action_endpoint": {"url": settings.action_server_url}}
    tracker = urlparse(settings.rasa_tracker_url.replace("+asyncpg", "").replace("+aiosqlite", ""))
    if tracker.scheme == "postgresql":
        config["tracker_store"] = {
            "type": "SQL", "dialect": "postgresql", "url": tracker.hostname or "127.0.0.1", "port": tracker.port or 5432,
            "db": tracker.path.lstrip("/"), "username": unquote(tracker.username or ""), "password": unquote(tracker.password or ""),
        }
    else:
        config["tracker_store"] = {"type": "SQL", "dialect": "sqlite", "db": str(settings.rasa_tracker_db)}
    if settings.redis_url:
        redis = urlparse(settings.redis_url)
        config["lock_store"] = {
            "type": "redis", "url": redis.hostname, "port": redis.port or 6379, "db": int(redis.path.lstrip("/") or 0),
            "password": unquote(redis.password or "") or None, "use_ssl": redis.scheme == "rediss", "key_prefix": "frontline",
        }
    return config


def write_endpoints(settings: Settings) -> tuple[Path, Path]:
    """Rasa's endpoints and credentials files, generated from our configuration."""
    folder = settings.var_dir / "rasa"
    folder.mkdir(parents=True, exist_ok=True)
    endpoints = folder / "endpoints.yml"
    endpoints.write_text(yaml.safe_dump(endpoints_config(settings), sort_keys=False))
    credentials = folder / "credentials.yml"
    credentials.write_text("rest:\n")
    return endpoints, credentials


def serve(settings: Settings) -> None:
    """Replace this process with the Rasa server, serving the newest model."""
    model = latest_model(settings)
    if model is None:
        sys.exit("No trained model under var/models: run `make train` (or `frontline train`) first.")
    endpoints, credentials = write_endpoints(settings)
    url = urlparse(settings.rasa_url)
    rasa = str(RASA_VENV / "bin" / "rasa")
    os.chdir(ROOT)
    env = _rasa_env(settings)
    env.setdefault("PYTHONWARNINGS", "ignore")  # Rasa 3.6's dependencies print pages of deprecation warnings
    os.execve(rasa, [
        rasa, "run", "--enable-api", "--model", str(model),
        "--endpoints", str(endpoints), "--credentials", str(credentials),
        "--interface", url.hostname or "127.0.0.1", "--port", str(settings.rasa_port or url.port or 5005),
    ], env)
