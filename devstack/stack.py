"""The real stack as separate processes: Bot API emulator, action server, Rasa, app."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
TEST_TOKEN = "123456789:e2e-test-token"
AGENT_ID = 800_001  # Alex, a member of the agents' group


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout: float = 10, headers: dict[str, str] | None = None) -> Any:
    """The JSON a GET of `url` answers (blocking: from async code, `await asyncio.to_thread(get_json, url)`)."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
        return json.loads(response.read())


def _get_json(url: str, headers: dict[str, str] | None = None) -> dict | None:
    try:
        return get_json(url, timeout=2, headers=headers)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_until(predicate, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    """Poll until predicate() is true; fail with `what` (and the process's fate) after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {process.returncode}")
        time.sleep(0.25)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


@dataclass
class Stack:
    """Ports, environment and processes of one running stack."""

    workdir: Path
    emulator_port: int = field(default_factory=free_port)
    actions_port: int = field(default_factory=free_port)
    rasa_port: int = field(default_factory=free_port)
    app_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    agent_chat_id: int | None = None  # the agents' forum group, made when the emulator starts
    # The scale-out mode: PostgreSQL, Redis, more Rasa instances (their ports) beside the first.
    database: str | None = None
    redis_url: str | None = None
    more_rasa_ports: list[int] = field(default_factory=list)
    # The tokens between the processes (bot/tokens.py), fresh for each stack.
    actions_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    rasa_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    app_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    metrics_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def rasa_api(self, path: str, base_url: str | None = None) -> str:
        """The URL of `path` on Rasa's HTTP API, with RASA_TOKEN (`--auth-token` reads the query string)."""
        separator = "&" if "?" in path else "?"
        return f"{base_url or self.rasa_url}{path}{separator}{urllib.parse.urlencode({'token': self.rasa_token})}"

    @property
    def rasa_headers(self) -> dict[str, str]:
        """What the REST channel (nlu/channel.py) wants to see."""
        return {"Authorization": f"Bearer {self.rasa_token}"}

    @property
    def actions_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.actions_token}"}

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite+aiosqlite:///{self.workdir / 'frontline.db'}"

    @property
    def rasa_urls(self) -> list[str]:
        return [self.rasa_url, *(f"http://127.0.0.1:{port}" for port in self.more_rasa_ports)]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment every process of this stack runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "FRONTLINE_FAILPOINTS"))}
        env.update(
            FRONTLINE_VAR=str(self.workdir),
            FRONTLINE_MODELS=str(ROOT / "var" / "models"),
            DATABASE_URL=self.database_url,
            RASA_URL=",".join(self.rasa_urls),
            REDIS_URL=self.redis_url or "",
            # Above Rasa's tracker-store retries through a database restart (nlu/tracker_store.py: the last try
            # 7.75 s in), so a restart delays an answer instead of handing the customer to a person.
            RASA_TIMEOUT="10",
            TICKET_RETRY_SECONDS="1",
            APP_PORT=str(self.app_port),
            AGENT_CHAT_ID=str(self.agent_chat_id) if self.agent_chat_id else "",
            ACTION_SERVER_URL=f"http://127.0.0.1:{self.actions_port}/webhook",
            ACTIONS_TOKEN=self.actions_token,
            RASA_TOKEN=self.rasa_token,
            APP_TOKEN=self.app_token,
            METRICS_TOKEN=self.metrics_token,
            TELEGRAM_BOT_TOKEN=TEST_TOKEN,
            TELEGRAM_API_URL=f"{self.emulator_url}/bot",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def _spawn(self, name: str, command: list[str], **extra: str) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "ab") as log:  # the process has its own copy of the file
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env(**extra), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        return process

    def start_emulator(self) -> None:
        process = self._spawn("emulator", [sys.executable, "-m", "bot.emulator", "--port", str(self.emulator_port)])
        wait_until(lambda: _get_json(f"{self.emulator_url}/_emulator/health"), 20, "emulator", process)
        _post_json(
            f"{self.emulator_url}/_emulator/users", {"id": AGENT_ID, "first_name": "Alex", "username": "alex_agent"}
        )
        group = _post_json(
            f"{self.emulator_url}/_emulator/groups",
            {
                "title": "Agents",
                "is_forum": True,
                "members": [AGENT_ID],
                "bot_rights": {"can_manage_topics": True, "can_delete_messages": True},
            },
        )
        self.agent_chat_id = group["id"]

    def start_actions(self) -> None:
        process = self._spawn("actions", [str(VENV_BIN / "frontline"), "actions"])
        health = f"http://127.0.0.1:{self.actions_port}/health"
        wait_until(lambda: _get_json(health, self.actions_headers), 60, "action server", process)

    def start_rasa(self, instance: int = 0) -> None:
        """The first Rasa instance (`rasa`), or another one (`rasa<n>`) on its own port."""
        name = f"rasa{instance}" if instance else "rasa"
        port = self.more_rasa_ports[instance - 1] if instance else self.rasa_port
        process = self._spawn(name, [str(VENV_BIN / "frontline"), "rasa"], RASA_PORT=str(port))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: (_get_json(self.rasa_api("/status", url)) or {}).get("model_file"), 240, name, process)

    def start_app(self, ready_call: str = "getUpdates", name: str = "app", **extra: str) -> subprocess.Popen:
        """The app; ready once it polls (or, in webhook mode, `ready_call="setWebhook"`, has set its webhook).
        Another instance ("machine") has its own `name`, and its own FRONTLINE_VAR and APP_PORT in `extra`."""
        before = self._last_call()
        process = self._spawn(name, [str(VENV_BIN / "frontline"), "app"], **extra)
        wait_until(lambda: self._last_call(ready_call) > before, 30, name, process)
        return process

    def start_proxy(self, backends: list[int]) -> None:
        """devstack/proxy.py on APP_PORT, round robin over the app instances on `backends` (their ports), so that
        Telegram's webhook and Rasa (its NLG and model pulls) reach whichever instance lives."""
        urls = [f"http://127.0.0.1:{port}" for port in backends]
        command = [sys.executable, "-m", "devstack.proxy", "--port", str(self.app_port), *urls]
        process = self._spawn("proxy", command)
        wait_until(lambda: _get_json(f"http://127.0.0.1:{self.app_port}/_proxy/stats"), 20, "proxy", process)

    def _last_call(self, method: str | None = None) -> int:
        query = f"?method={method}" if method else ""
        calls = (_get_json(f"{self.emulator_url}/_emulator/calls{query}") or {}).get("calls") or []
        return max((call["seq"] for call in calls), default=0)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one process (SIGKILL by default: no chance to clean up)."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        """Stop everything politely, then firmly."""
        for name in list(self.processes):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name in list(self.processes):
            try:
                self.processes[name].wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(name)
        self.processes.clear()

    def log(self, name: str) -> str:
        """What a process printed, for failure messages."""
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


PROCESSES = ("emulator", "actions", "rasa", "app")


@contextmanager
def running_stack(
    workdir: Path | None = None, *, database: str | None = None, webhook: bool = False
) -> Iterator[Stack]:
    """Emulator, actions, Rasa and app on free ports (training first when no model matches), stopped on exit;
    their logs are printed when the start fails. `database`: a PostgreSQL URL instead of SQLite files in `workdir`
    (the app's, the action server's and Rasa's tracker store). `webhook`: the app in webhook mode (the emulator
    posts each update to it) instead of long polling."""
    from bot.config import load_settings
    from bot.rasa_runtime import current_model

    if current_model(load_settings()) is None:
        subprocess.run([str(VENV_BIN / "frontline"), "train"], cwd=ROOT, check=True)
    stack = Stack(workdir or Path(tempfile.mkdtemp(prefix="frontline-stack-")), database=database)
    stack.workdir.mkdir(parents=True, exist_ok=True)
    try:
        stack.start_emulator()
        stack.start_actions()
        # The app before Rasa: Rasa pulls its model from the app, and asks it for every response.
        if webhook:
            url = f"http://127.0.0.1:{stack.app_port}/telegram"
            stack.start_app(ready_call="setWebhook", WEBHOOK_URL=url, WEBHOOK_SECRET="stack-webhook-secret-0123")
        else:
            stack.start_app()
        stack.start_rasa()
        yield stack
    except Exception:
        for name in PROCESSES:
            print(f"--- {name} log ({stack.workdir}) ---\n{stack.log(name)}")
        raise
    finally:
        stack.stop()
