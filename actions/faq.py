"""Answering a FAQ topic, or the help center when the classifier is not sure of the topic.

The classifier picks a FAQ topic (faq/<topic>) for many questions that are only near it: "can you deliver to Norway"
lands on the delivery-time topic, "how do I wash my merino jumper" on returns. Below `SURE` confidence the shop's
articles are searched first (actions/kb_answer.py, with its own calibrated decision); a confident article answers,
with its Yes / No buttons. Otherwise, and always at or above `SURE`, the topic's own answer is said, as Rasa's
retrieval action `utter_faq` would (`utter_faq/<topic>`, chosen by the classifier's response selector).

`SURE` is fit on the help center's validation questions only (tests/data/help_center_val.yml, never the sealed set):
`python -m bench.kb_faq_threshold` (see docs/help_center.md for the figures).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.kb_answer import offer_article

RETRIEVAL_INTENT = "faq"
SURE = 0.8  # at or above: the FAQ topic's answer without searching the articles (bench/kb_faq_threshold.py)


def faq_answer(tracker: Tracker) -> str | None:
    """The FAQ topic's response the classifier chose for the latest message (`utter_faq/<topic>`), if any."""
    selector = (tracker.latest_message.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
    chosen = (selector.get("response") or {}).get("utter_action")
    return chosen if isinstance(chosen, str) and chosen.startswith(f"utter_{RETRIEVAL_INTENT}/") else None


def confidence(tracker: Tracker) -> float:
    """The classifier's confidence in the latest message's intent."""
    value = (tracker.latest_message.get("intent") or {}).get("confidence")
    return float(value) if isinstance(value, int | float) else 0.0


class ActionAnswerFaq(Action):
    """A FAQ question: the topic's answer, or a help-center article when the topic is unsure and an article is sure."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        answer = faq_answer(tracker)
        if answer is None or confidence(tracker) < SURE:
            offered = await offer_article(dispatcher, tracker)
            if offered is not None:
                return offered
        dispatcher.utter_message(response=answer or "utter_default")
        return []
