"""`GET /metrics` of the app and of the action server in the real stack (issue 20): a customer's short
conversation that ends with a person asked for moves both processes' counters by what happened."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from bot.emulator.client import EmulatorClient
from devstack.stack import Stack
from tests.e2e.helpers import replies_after, say

Key = tuple[str, tuple[tuple[str, str], ...]]


def _scrape(url: str, token: str | None) -> tuple[int, dict[Key, float]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, {}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_bucket")
    }
    return 200, samples


def _both(stack: Stack) -> tuple[dict[Key, float], dict[Key, float]]:
    app_status, app = _scrape(f"http://127.0.0.1:{stack.app_port}/metrics", stack.metrics_token)
    actions_status, actions = _scrape(f"http://127.0.0.1:{stack.actions_port}/metrics", stack.metrics_token)
    assert (app_status, actions_status) == (200, 200)
    return app, actions


def _moved(before: dict[Key, float], after: dict[Key, float], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        labels: value - before.get((metric, labels), 0.0)
        for (metric, labels), value in after.items()
        if metric == name and value != before.get((metric, labels), 0.0)
    }


def test_both_refuse_a_scrape_without_the_metrics_token(stack: Stack) -> None:
    for port in (stack.app_port, stack.actions_port):
        assert _scrape(f"http://127.0.0.1:{port}/metrics", None)[0] == 401
        assert _scrape(f"http://127.0.0.1:{port}/metrics", stack.app_token)[0] == 401


async def test_a_conversation_that_asks_for_a_person_moves_both_processes_counters(
    stack: Stack, emulator: EmulatorClient, customer: dict
) -> None:
    user = customer["id"]
    app_before, actions_before = _both(stack)
    await say(emulator, user, "where is my parcel, order A12345?")
    after = (await emulator.sent(user)).last
    await emulator.send_text(user, "I want to talk to a real person please")
    await replies_after(emulator, user, after, until="in line")
    app_after, actions_after = _both(stack)

    # The app: two messages in, two answers from Rasa, one request for a person.
    assert _moved(app_before, app_after, "frontline_updates_total") == {(("kind", "message"),): 2}
    assert _moved(app_before, app_after, "frontline_rasa_seconds_count") == {(("outcome", "answered"),): 2}
    assert _moved(app_before, app_after, "frontline_handoffs_total") == {(("reason", "customer_request"),): 1}
    assert app_after[("frontline_queue_length", ())] >= 1
    assert app_after[("frontline_ready", (("check", "rasa"),))] == 1
    live = [labels for (name, labels), value in app_after.items() if name == "frontline_live_model_info" and value]
    assert len(live) == 1, "the live model's version and fingerprint"

    # The action server: the handoff it asked for, and each action it ran counted once and timed once.
    assert _moved(actions_before, actions_after, "frontline_action_handoffs_total") == {
        (("reason", "customer_request"),): 1
    }
    ran = _moved(actions_before, actions_after, "frontline_actions_total")
    timed = _moved(actions_before, actions_after, "frontline_action_seconds_count")
    assert ran and all(dict(labels)["outcome"] == "ok" for labels in ran)
    assert {dict(labels)["action"]: n for labels, n in ran.items()} == {
        dict(labels)["action"]: n for labels, n in timed.items()
    }
