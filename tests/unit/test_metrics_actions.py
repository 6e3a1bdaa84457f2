"""`GET /metrics` of the action server (issue 20), started as in production (test_action_server_auth.py's server):
only METRICS_TOKEN opens it, and the actions Rasa runs move its counters by what they did."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actions.metrics import handoff_reasons
from tests.unit.test_action_server_auth import TOKEN, ActionServer, _call, action_server  # noqa: F401 (a fixture)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _samples(server: ActionServer) -> Samples:
    status, text = server.scrape()
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_bucket")
    }


def _moved(before: Samples, after: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key[0].endswith(("_total", "_count")) and after[key] != before.get(key, 0.0)
    }


@pytest.mark.parametrize("token", [None, "not-the-metrics-token-0123", TOKEN], ids=["none", "wrong", "actions-token"])
def test_only_the_metrics_token_opens_it(action_server: ActionServer, token: str | None) -> None:  # noqa: F811
    assert action_server.scrape(token)[0] == 401


def test_the_actions_run_move_its_counters_by_what_they_did(action_server: ActionServer) -> None:  # noqa: F811
    before = _samples(action_server)
    assert action_server.post(_call("action_complaint_handoff"), BEARER)[0] == 200
    assert action_server.post(_call("action_complaint_handoff"), BEARER)[0] == 200
    assert action_server.post(_call("action_no_such_thing"), BEARER)[0] == 404
    assert action_server.post(_call("action_complaint_handoff"))[0] == 401  # refused: not counted
    moved = _moved(before, _samples(action_server))
    assert moved == {
        ("frontline_actions_total", (("action", "action_complaint_handoff"), ("outcome", "ok"))): 2,
        ("frontline_actions_total", (("action", "unknown"), ("outcome", "rejected"))): 1,
        ("frontline_action_seconds_count", (("action", "action_complaint_handoff"),)): 2,
        ("frontline_action_seconds_count", (("action", "unknown"),)): 1,
        ("frontline_action_handoffs_total", (("reason", "customer_request"),)): 2,  # asked for a person (affirm)
    }


@pytest.mark.parametrize(
    ("body", "reasons"),
    [
        (
            b'{"responses": [{"text": "A person will help"}, {"custom": {"handoff": {"reason": "fallbacks"}}}]}',
            ["fallbacks"],
        ),
        (b'{"responses": [{"custom": {"handoff": {}}}]}', ["customer_request"]),
        (b'{"responses": [{"custom": {"other": 1}}, "odd"]}', []),
        (b'{"events": []}', []),
        (b"[1, 2]", []),
        (b"not json", []),
        (None, []),
    ],
)
def test_the_handoffs_in_an_answer_are_found_by_reason(body: bytes | None, reasons: list[str]) -> None:
    assert handoff_reasons(body) == reasons
