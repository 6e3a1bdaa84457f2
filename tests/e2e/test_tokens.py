"""The running stack as someone else on the network meets it (issue 16, finding 4): Rasa's HTTP API and its REST
channel, the app's `/nlg` and `/models/live`, refuse a request without the token; the stack's own calls carry it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from devstack.stack import Stack

SENDER = "tg-31337"


def _call(url: str, body: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_rasas_api_and_rest_channel_refuse_a_request_without_the_token(stack: Stack, headers: dict) -> None:
    status, _ = _call(f"{stack.rasa_url}/conversations/{SENDER}/tracker", headers=headers)
    assert status == 401
    status, _ = _call(f"{stack.rasa_url}/conversations/{SENDER}/tracker?token=wrong", headers=headers)
    assert status == 401
    status, replies = _call(f"{stack.rasa_url}/webhooks/rest/webhook", {"sender": SENDER, "message": "hi"}, headers)
    assert status == 401
    assert replies is None
    # Nothing reached the conversation.
    status, tracker = _call(stack.rasa_api(f"/conversations/{SENDER}/tracker"))
    assert status == 200
    assert not [e for e in tracker["events"] if e.get("event") == "user"]


def test_the_app_refuses_nlg_and_the_model_without_the_token(stack: Stack) -> None:
    app = f"http://127.0.0.1:{stack.app_port}"
    status, _ = _call(f"{app}/nlg", {"response": "utter_greet", "arguments": {}, "tracker": {}, "channel": {}})
    assert status == 401
    status, _ = _call(f"{app}/models/live")
    assert status == 401


def test_with_the_token_the_rest_channel_answers(stack: Stack) -> None:
    status, replies = _call(
        f"{stack.rasa_url}/webhooks/rest/webhook", {"sender": "tg-31338", "message": "hello"}, stack.rasa_headers
    )
    assert status == 200
    assert replies


def test_rasa_does_not_answer_on_a_non_loopback_address(stack: Stack) -> None:
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    address = next((a for a in found if "." in a and not a.startswith("127.")), None)
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    probe = f"import socket; socket.create_connection(({address!r}, {stack.rasa_port}), timeout=3)"
    reached = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False)
    assert reached.returncode != 0, f"Rasa answered on {address}:{stack.rasa_port}"
    with socket.create_connection(("127.0.0.1", stack.rasa_port), timeout=3):
        pass
