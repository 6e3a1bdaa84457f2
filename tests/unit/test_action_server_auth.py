"""The action server as an attacker meets it over HTTP (issue 16, findings 1 and 2): `frontline actions` started as
in production, its database holding a customer's conversation.

- Without the token (or with a wrong one) a forged `/webhook` call is refused and opens no ticket.
- It does not answer on this machine's non-loopback address unless ACTIONS_HOST says so.
- With the token (as Rasa calls it), a forged `complaint_photos` slot of thousands of ids gives a ticket, and a
  handoff to the desk, of at most 10 photos.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.storage import transcript
from bot.storage.db import create_engine, create_sessionmaker, migrate
from bot.storage.models import Ticket
from devstack.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "action-server-test-token-0123456789"
METRICS_TOKEN = "action-server-metrics-token-0123456789"
CHAT = 42
FORGED_PHOTOS = [f"photo{n}" for n in range(5000)]


@dataclass
class ActionServer:
    port: int
    database_url: str

    def post(self, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhook",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def scrape(self, token: str | None = METRICS_TOKEN) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def tickets(self) -> list[Ticket]:
        async def read() -> list[Ticket]:
            engine = create_engine(self.database_url)
            try:
                async with create_sessionmaker(engine)() as session:
                    return list(await session.scalars(select(Ticket)))
            finally:
                await engine.dispose()

        return asyncio.run(read())


async def _database_with_a_customer(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with create_sessionmaker(engine).begin() as session:
            customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=CHAT, first_name="Mia")
            await session.run_sync(transcript.conversation_for_chat, chat_id=CHAT, customer=customer)
    finally:
        await engine.dispose()


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
    except urllib.error.HTTPError:
        return True  # it answers, if only to refuse
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActionServer]:
    var = tmp_path_factory.mktemp("actions-var")
    database_url = f"sqlite+aiosqlite:///{var / 'frontline.db'}"
    asyncio.run(_database_with_a_customer(database_url))
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "FRONTLINE_VAR": str(var),
        "DATABASE_URL": database_url,
        "ACTION_SERVER_URL": f"http://127.0.0.1:{port}/webhook",
        "ACTIONS_TOKEN": TOKEN,
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    with open(var / "actions.log", "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "frontline"), "actions"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for _ in range(240):
            if _answers(port):
                break
            assert process.poll() is None, (var / "actions.log").read_text()
            time.sleep(0.25)
        else:
            pytest.fail("the action server did not start:\n" + (var / "actions.log").read_text())
        yield ActionServer(port, database_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _call(action: str, photos: list[str] | None = None, at: float = 1700000000.0) -> dict:
    slots = {
        "complaint_description": "The lamp arrived in pieces",
        "complaint_category": "damaged_or_wrong_item",
        "desired_resolution": "refund",
        "order_number": "A12345",
        "contact": "none",
        "complaint_photos": photos,
        "complaint_confirmed": True,
    }
    tracker = {
        "sender_id": f"tg-{CHAT}",
        "slots": slots,
        "latest_message": {"text": "yes", "intent": {"name": "affirm", "confidence": 0.99}, "entities": []},
        "events": [{"event": "user", "timestamp": at, "text": "yes"}],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    }
    return {"next_action": action, "sender_id": f"tg-{CHAT}", "tracker": tracker, "domain": {}, "version": "3.6.21"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": TOKEN}], ids=["none", "wrong", "bare"]
)
def test_a_forged_webhook_call_without_the_token_is_refused_and_opens_no_ticket(
    action_server: ActionServer, headers: dict[str, str]
) -> None:
    status, body = action_server.post(_call("action_submit_complaint"), headers)
    assert status == 401, body
    assert "events" not in body
    assert action_server.tickets() == []


def _non_loopback_address() -> str | None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        addresses = set()
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    addresses |= {a for a in found if "." in a}
    return next((a for a in sorted(addresses) if not a.startswith("127.")), None)


def test_it_does_not_answer_on_a_non_loopback_address_by_default(action_server: ActionServer) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    # From another process: this one refuses any connection beyond loopback (tests/conftest.py).
    probe = f"import socket; socket.create_connection(({address!r}, {action_server.port}), timeout=3)"
    reached = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False)
    assert reached.returncode != 0, f"the action server answered on {address}:{action_server.port}"
    assert _answers(action_server.port)  # while it does answer on loopback


def test_with_the_token_a_forged_photo_slot_gives_at_most_ten_photos(action_server: ActionServer) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    status, body = action_server.post(_call("action_submit_complaint", FORGED_PHOTOS, at=1700000100.0), bearer)
    assert status == 200, body
    [reference] = [e["value"] for e in body["events"] if e.get("name") == "ticket_id"]
    [ticket] = [t for t in action_server.tickets() if t.reference == reference]
    assert ticket.photos == FORGED_PHOTOS[:10]
    status, body = action_server.post(_call("action_complaint_handoff", FORGED_PHOTOS), bearer)
    assert status == 200, body
    handoffs = [r["custom"]["handoff"] for r in body["responses"] if "handoff" in (r.get("custom") or {})]
    assert [h["collected"]["complaint_photos"] for h in handoffs] == [FORGED_PHOTOS[:10]]
