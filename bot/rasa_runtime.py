"""The Rasa side, run from our environment: training when the content changed, and serving."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from bot import tokens
from bot.config import Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
RASA_VENV = Path(os.environ.get("RASA_VENV", ROOT / ".venv-rasa"))
SPACY_PIPELINE = Path("spacy") / "frontline_en"
# Besides the content (domain and training data), what the trained model depends on: the pipeline, Rasa's
# version, the custom components and the entity rules (everything under nlu/ that is not training data), and the
# sentence encoder the components embed examples with (encoder/: its code and its pinned weights' hash).
# Rasa's SQL tracker store, checking pooled connections and waiting out a database restart (nlu/tracker_store.py).
TRACKER_STORE = "nlu.tracker_store.ResilientSQLTrackerStore"
CODE_INPUTS = ("config.yml", "requirements/rasa.txt", "nlu", "encoder")
# Rasa's REST channel, refusing any request without RASA_TOKEN (`--auth-token` covers the HTTP API only).
CHANNEL = "nlu.channel.TokenRestInput"
# encoder.cache.ENVIRONMENT (not imported: the app needs no numpy to train).
ENCODER_CACHE_VARIABLE = "FRONTLINE_ENCODER_CACHE"


def _content_file(path: Path) -> bool:
    return path.parent == ROOT / "nlu" and path.suffix == ".yml"


def content_files(content_dir: Path) -> dict[str, str]:
    """The content Rasa trains on under `content_dir` (`domain.yml`, `nlu/*.yml`), as text keyed by relative path."""
    files = {"domain.yml": (content_dir / "domain.yml").read_text(encoding="utf-8")}
    for path in sorted((content_dir / "nlu").glob("*.yml")):
        files[f"nlu/{path.name}"] = path.read_text(encoding="utf-8")
    return files


def repository_content() -> dict[str, str]:
    """The repository's content files (the seed). They are in the canonical form the database's content is
    exported in (tests/unit/test_content.py), so a model trained from the seeded database is current for them."""
    return content_files(ROOT)


def fingerprint(settings: Settings, files: dict[str, str] | None = None) -> str:
    """A hash of everything the trained model depends on: the content `files` (by default the repository's)
    and the code inputs."""
    digest = hashlib.sha256(settings.order_number_pattern.encode())
    for name, text in sorted((files if files is not None else repository_content()).items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    for name in CODE_INPUTS:
        path = ROOT / name
        found = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in (f for f in found if not _content_file(f)):
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def current_model(settings: Settings, files: dict[str, str] | None = None) -> Path | None:
    """The model trained from the content as it is now (by default the repository's), if there is one."""
    path = settings.models_dir / f"{fingerprint(settings, files)}.tar.gz"
    return path if path.exists() else None


def latest_model(settings: Settings) -> Path | None:
    """The current model, or else the most recently trained one."""
    found = sorted(settings.models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return current_model(settings) or (found[-1] if found else None)


def rasa_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["RASA_TELEMETRY_ENABLED"] = "false"  # it would report to a server on the internet
    env["ORDER_NUMBER_PATTERN"] = settings.order_number_pattern
    env["PYTHONPATH"] = str(ROOT)
    return env


def build_spacy_pipeline(settings: Settings) -> None:
    """Build the project's own spaCy pipeline (rules it ships) where config.yml expects it."""
    command = [
        str(RASA_VENV / "bin" / "python"),
        "-m",
        "nlu.spacy_pipeline",
        "--out",
        str(ROOT / "var" / SPACY_PIPELINE),
        "--order-number-pattern",
        settings.order_number_pattern,
    ]
    subprocess.run(command, cwd=ROOT, env=rasa_env(settings), check=True)


def train(
    settings: Settings, *, force: bool = False, content_dir: Path = ROOT, files: dict[str, str] | None = None
) -> Path:
    """Train on the content under `content_dir` (its `domain.yml` and `nlu/`) unless a model for it exists;
    `files` is that content as text (read from `content_dir` when not given). Returns the model's path."""
    if files is None:
        files = content_files(content_dir)
    existing = current_model(settings, files)
    if existing and not force:
        log.info("model %s is current; not retraining", existing.name)
        return existing
    build_spacy_pipeline(settings)
    name = fingerprint(settings, files)
    command = [
        str(RASA_VENV / "bin" / "rasa"),
        "train",
        "--config",
        str(ROOT / "config.yml"),
        "--domain",
        str(content_dir / "domain.yml"),
        "--data",
        str(content_dir / "nlu"),
        "--out",
        str(settings.models_dir),
        "--fixed-model-name",
        name,
    ]
    subprocess.run(command, cwd=ROOT, env=training_env(settings), check=True)
    return settings.models_dir / f"{name}.tar.gz"


def training_env(settings: Settings) -> dict[str, str]:
    """Rasa's environment for training: the sentence encoder keeps its embeddings in var/encoders/cache/ (see
    encoder/cache.py), so a retrain encodes only new or changed examples. Serving never sets it: customers'
    messages are not written to disk."""
    env = rasa_env(settings)
    env.setdefault(ENCODER_CACHE_VARIABLE, str(ROOT / "var" / "encoders" / "cache"))
    return env


def validate(settings: Settings, content_dir: Path) -> str | None:
    """What `rasa data validate` rejects in the content under `content_dir`, in its words; None when it passes."""
    command = [
        str(RASA_VENV / "bin" / "rasa"),
        "data",
        "validate",
        "--fail-on-warnings",
        "--config",
        str(ROOT / "config.yml"),
        "--domain",
        str(content_dir / "domain.yml"),
        "--data",
        str(content_dir / "nlu"),
    ]
    result = subprocess.run(command, cwd=ROOT, env=rasa_env(settings), capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return None
    lines = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if ("UserWarning" in line or "ERROR" in line or "Error" in line or "error" in line.lower())
        and "Traceback" not in line
    ]
    return "\n".join(lines[-20:]) or f"rasa data validate failed (exit {result.returncode})"


def endpoints_config(settings: Settings) -> dict[str, Any]:
    """Rasa's endpoints: our action server; the tracker store in SQLite, or in our PostgreSQL with a Redis lock
    store (then every Rasa instance shares the conversations, and one conversation is handled by one at a time)."""
    app = tokens.bearer(tokens.token(settings, "app"))
    config: dict[str, Any] = {
        # Every hop carries its token as a header (a query string would end up in logs).
        "action_endpoint": {
            "url": settings.action_server_url,
            "headers": tokens.bearer(tokens.token(settings, "actions")),
        },
        # Responses from the app's database; the live model pulled from the app (a change of the live pointer).
        "nlg": {"url": f"{settings.app_url}/nlg", "headers": app},
        "models": {
            "url": f"{settings.app_url}/models/live",
            "wait_time_between_pulls": settings.model_pull_seconds,
            "headers": app,
        },
    }
    tracker = urlparse(settings.rasa_tracker_url.replace("+asyncpg", "").replace("+aiosqlite", ""))
    if tracker.scheme == "postgresql":
        config["tracker_store"] = {
            "type": TRACKER_STORE,
            "dialect": "postgresql",
            "url": tracker.hostname or "127.0.0.1",
            "port": tracker.port or 5432,
            "db": tracker.path.lstrip("/"),
            "username": unquote(tracker.username or ""),
            "password": unquote(tracker.password or ""),
        }
    else:
        config["tracker_store"] = {"type": TRACKER_STORE, "dialect": "sqlite", "db": str(settings.rasa_tracker_db)}
    if settings.redis_url:
        redis = urlparse(settings.redis_url)
        config["lock_store"] = {
            "type": "redis",
            "url": redis.hostname,
            "port": redis.port or 6379,
            "db": int(redis.path.lstrip("/") or 0),
            "password": unquote(redis.password or "") or None,
            "use_ssl": redis.scheme == "rediss",
            "key_prefix": "frontline",
        }
    return config


def _write_secret(path: Path, text: str) -> None:
    """Write a file only its owner may read: it holds the tokens."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def write_endpoints(settings: Settings) -> tuple[Path, Path]:
    """Rasa's endpoints and credentials files, generated from our configuration (mode 0600: they hold tokens)."""
    folder = settings.var_dir / "rasa"
    folder.mkdir(parents=True, exist_ok=True)
    endpoints = folder / "endpoints.yml"
    _write_secret(endpoints, yaml.safe_dump(endpoints_config(settings), sort_keys=False))
    credentials = folder / "credentials.yml"
    _write_secret(credentials, yaml.safe_dump({CHANNEL: {"token": tokens.token(settings, "rasa")}}))
    return endpoints, credentials


def serve(settings: Settings) -> None:
    """Replace this process with the Rasa server; it pulls the live model from the app (and again on every change)."""
    endpoints, credentials = write_endpoints(settings)
    log.info("Rasa pulls the live model from %s/models/live (none live yet? run `make train`)", settings.app_url)
    url = urlparse(settings.rasa_url)
    python = str(RASA_VENV / "bin" / "python")
    os.chdir(ROOT)
    env = rasa_env(settings)
    env.setdefault("PYTHONWARNINGS", "ignore")  # Rasa 3.6's dependencies print pages of deprecation warnings
    # nlu.serve passes it to Rasa as --auth-token: in the environment, it stays out of the process list.
    env["RASA_TOKEN"] = tokens.token(settings, "rasa")
    # `rasa run`, loading a newly pulled model beside the serving one (nlu/serve.py), so no conversation waits;
    # its HTTP API behind RASA_TOKEN (--auth-token, added by nlu/serve.py).
    os.execve(
        python,
        [
            python,
            "-m",
            "nlu.serve",
            "run",
            "--enable-api",
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(credentials),
            "--interface",
            url.hostname or "127.0.0.1",
            "--port",
            str(settings.rasa_port or url.port or 5005),
        ],
        env,
    )
