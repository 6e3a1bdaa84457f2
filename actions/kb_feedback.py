"""The help center's two turns around an answer: a message out of scope searched in the articles first, and the
customer's Yes / No on the answer they were given (actions/kb_answer.py says how the answer is made and recorded).

Yes: recorded as helpful; the rule then asks whether there is anything else (nlu/rules.yml). No: recorded as not
helpful, and it counts as a miss of the fallback rule: a person takes over at once, reason `fallbacks`, with the
article in the handoff payload so the agent's card names it and that it did not help.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.handoff import FALLBACKS, hand_over
from actions.kb_answer import SLOT, offer_article, rate

HELPFUL, NOT_HELPFUL = "article_helpful", "article_not_helpful"


class ActionAnswerFromHelpCenter(Action):
    """Out of scope for the intents: answered from an article when the search is confident, else as before
    (utter_out_of_scope)."""

    def name(self) -> str:
        return "action_answer_from_help_center"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        answered = await offer_article(dispatcher, tracker)
        if answered is not None:
            return answered
        dispatcher.utter_message(response="utter_out_of_scope")
        return []


class ActionArticleFeedback(Action):
    """The customer's Yes or No on a help-center answer."""

    def name(self) -> str:
        return "action_article_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        helpful = (tracker.latest_message.get("intent") or {}).get("name") == HELPFUL
        article = await rate(tracker, helpful)
        if helpful:
            dispatcher.utter_message(response="utter_article_helped")
            return [SlotSet(SLOT, article)] if article is not None else []
        offered = tracker.get_slot(SLOT)
        if article is None and isinstance(offered, dict):  # a use we could not check: named, not rated
            article = {**offered, "helpful": False, "use": None}
        return [
            *([SlotSet(SLOT, article)] if article is not None else []),
            *hand_over(dispatcher, tracker, FALLBACKS, response="utter_article_not_helped", article=article),
        ]
