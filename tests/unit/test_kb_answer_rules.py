"""Only the fallback paths reach the articles: in every rule and story, the actions that search the help center
follow a message not understood or out of scope, never another intent (a complaint, a greeting, an FAQ); the
Yes / No actions follow only their buttons' intents; and during the complaint form out of scope is answered as
before."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SEARCHING = {"action_fallback": {"nlu_fallback"}, "action_answer_from_help_center": {"out_of_scope"}}
FEEDBACK = {"action_article_feedback": {"article_helpful", "article_not_helpful"}}


def _flows() -> list[tuple[str, dict, list[dict]]]:
    found = []
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for kind in ("rules", "stories"):
            for flow in data.get(kind) or []:
                found.append((f"{path.name}: {flow.get('rule') or flow.get('story')}", flow, flow.get("steps") or []))
    return found


def _intent_before(steps: list[dict], position: int) -> str | None:
    """The intent of the user turn this action answers (the nearest intent before it)."""
    for step in reversed(steps[:position]):
        if "intent" in step:
            return step["intent"]
    return None


def test_the_help_center_is_searched_only_after_a_message_not_understood_or_out_of_scope() -> None:
    seen = set()
    for name, _, steps in _flows():
        for position, step in enumerate(steps):
            action = step.get("action")
            if action in SEARCHING or action in FEEDBACK:
                allowed = {**SEARCHING, **FEEDBACK}[action]
                intent = _intent_before(steps, position)
                # action_fallback also follows itself in the rule for a "no" after the offer of a person.
                assert intent in allowed or intent is None, f"{name}: {action} after {intent}"
                seen.add(action)
    assert seen == set(SEARCHING) | set(FEEDBACK)


def test_during_the_complaint_form_out_of_scope_is_answered_as_before() -> None:
    [steps] = [
        steps
        for _, flow, steps in _flows()
        if {"active_loop": "complaint_form"} in (flow.get("condition") or []) and {"intent": "out_of_scope"} in steps
    ]
    assert {"action": "utter_out_of_scope"} in steps and {"action": "action_answer_from_help_center"} not in steps


def test_the_buttons_intents_and_the_actions_are_in_the_domain() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    assert {"article_helpful", "article_not_helpful"} <= set(domain["intents"])
    assert {"action_answer_from_help_center", "action_article_feedback"} <= set(domain["actions"])
    for response in ("utter_help_center_answer", "utter_help_center_answer_link"):
        [variation] = domain["responses"][response]
        assert variation["text"].endswith("Did that answer your question?")
        assert [(b["title"], b["payload"]) for b in variation["buttons"]] == [
            ("Yes", '/article_helpful{"article_use":"{article_use}"}'),
            ("No, talk to a person", '/article_not_helpful{"article_use":"{article_use}"}'),
        ]
