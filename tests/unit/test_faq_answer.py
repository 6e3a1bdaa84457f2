"""A FAQ question the classifier is unsure of: the help center answers first when an article is confident; a sure
topic, or one no article answers, gets the topic's answer as Rasa's retrieval action would say it. Run as rasa_sdk
runs the action, with the real encoder and a few of the shop's articles, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from actions import faq
from actions.faq import ActionAnswerFaq
from tests.unit.kb_answer_support import run, tracker, user, uses

WASH = "how do I wash my merino jumper"
CARE_URL = "https://help.northwind.example/articles/care-clothes"
HOURS = "what time do you open tomorrow"


def on_topic(text: str, topic: str, confidence: float) -> dict[str, Any]:
    """The user event of a message the classifier put on FAQ topic `topic`, as its response selector reports it."""
    event = user(text, "faq", confidence)
    event["parse_data"]["response_selector"] = {
        "all_retrieval_intents": ["faq"],
        "faq": {"response": {"intent_response_key": f"faq/{topic}", "utter_action": f"utter_faq/{topic}"}},
    }
    return event


async def test_an_unsure_topic_is_answered_from_a_confident_article(shop) -> None:
    events, said, handoff = await run(ActionAnswerFaq(), tracker([on_topic(WASH, "returns_policy", faq.SURE - 0.1)]))
    [use] = await uses(shop["sessions"])
    assert use.article_id == shop["ids"]["care-clothes"] and use.query == WASH
    assert [m["response"] for m in said] == ["utter_help_center_answer_link"] and said[0]["article_url"] == CARE_URL
    assert [e["name"] for e in events] == ["help_article"] and handoff is None


async def test_a_sure_topic_is_answered_with_its_own_answer_without_searching(shop) -> None:
    events, said, _ = await run(ActionAnswerFaq(), tracker([on_topic(WASH, "returns_policy", faq.SURE)]))
    assert [m["response"] for m in said] == ["utter_faq/returns_policy"] and events == []
    assert await uses(shop["sessions"]) == []


async def test_an_unsure_topic_no_article_answers_keeps_its_own_answer(shop) -> None:
    events, said, _ = await run(ActionAnswerFaq(), tracker([on_topic(HOURS, "opening_hours", 0.55)]))
    assert [m["response"] for m in said] == ["utter_faq/opening_hours"] and events == []
    assert await uses(shop["sessions"]) == []


async def test_a_faq_without_a_chosen_topic_is_searched_then_asked_again(shop) -> None:
    _, said, _ = await run(ActionAnswerFaq(), tracker([user(WASH, "faq", 0.99)]))
    assert [m["response"] for m in said] == ["utter_help_center_answer_link"]
    _, said, _ = await run(ActionAnswerFaq(), tracker([user(HOURS, "faq", 0.99)]))
    assert [m["response"] for m in said] == ["utter_default"]
