"""Answering from the help center, run as rasa_sdk runs the actions, on SQLite and PostgreSQL with the real encoder
and a few of the shop's articles: the answer with its title, link and Yes / No buttons and its recorded use; today's
behaviour when the search is not confident, and always during a form; Yes recorded and back to the normal flow;
No recorded and a person with the article in the handoff; buttons naming another customer's use change nothing."""

from __future__ import annotations

import json

from rasa_sdk.events import ConversationPaused, SlotSet

from actions.handoff import ActionFallback
from actions.kb_feedback import ActionAnswerFromHelpCenter, ActionArticleFeedback
from bot.storage import privacy
from tests.unit.kb_answer_support import button, run, tracker, user, uses

WASH = "how do I wash my merino jumper"
PAIR = "how do i pair my headphones"
WEATHER = "what's the weather going to be in leeds on saturday"
CARE_TITLE = "Washing and caring for cotton, linen and wool clothes"
CARE_URL = "https://help.northwind.example/articles/care-clothes"


async def test_a_message_not_understood_is_answered_from_the_article_and_the_use_recorded(shop) -> None:
    events, said, handoff = await run(ActionFallback(), tracker([user(WASH, "nlu_fallback", 0.2)]))
    [use] = await uses(shop["sessions"])
    assert (use.article_id, use.conversation_id, use.query, use.helpful) == (
        shop["ids"]["care-clothes"],
        shop["conversations"][42],
        WASH,
        None,
    )
    [message] = said
    assert message["response"] == "utter_help_center_answer_link"
    assert message["article_title"] == CARE_TITLE and message["article_url"] == CARE_URL
    assert message["article_use"] == str(use.id)
    assert 0 < len(message["passage"]) <= 650 and "wool" in message["passage"].lower()
    offered = {"use": use.id, "id": use.article_id, "title": CARE_TITLE, "url": CARE_URL, "helpful": None}
    assert events == [SlotSet("help_article", offered)] and handoff is None


async def test_out_of_scope_is_answered_from_an_article_or_declined_as_before(shop) -> None:
    _, said, _ = await run(ActionAnswerFromHelpCenter(), tracker([user(PAIR, "out_of_scope", 0.6)]))
    assert [m["response"] for m in said] == ["utter_help_center_answer_link"]
    assert said[0]["article_title"] == "How to pair the Northwind Aura headphones"
    events, said, _ = await run(ActionAnswerFromHelpCenter(), tracker([user(WEATHER, "out_of_scope", 0.9)]))
    assert [m["response"] for m in said] == ["utter_out_of_scope"] and events == []
    assert len(await uses(shop["sessions"])) == 1


async def test_not_confident_it_clarifies_then_offers_a_person_as_before(shop) -> None:
    first = [user(WEATHER, "nlu_fallback", 0.2)]
    events, said, _ = await run(ActionFallback(), tracker(first))
    assert [m["response"] for m in said] == ["utter_default"] and events == []
    second = [*first, {"event": "action", "name": "action_fallback"}, user("tell me a joke", "nlu_fallback", 0.1)]
    _, said, _ = await run(ActionFallback(), tracker(second))
    assert [m["response"] for m in said] == ["utter_offer_person"]
    assert await uses(shop["sessions"]) == []


async def test_during_a_form_no_article_is_offered(shop) -> None:
    _, said, _ = await run(ActionFallback(), tracker([user(WASH, "nlu_fallback", 0.2)], form="complaint_form"))
    assert [m["response"] for m in said] == ["utter_default"]
    assert await uses(shop["sessions"]) == []


async def test_yes_is_recorded_and_the_conversation_goes_on(shop) -> None:
    events, said, _ = await run(ActionFallback(), tracker([user(WASH, "nlu_fallback", 0.2)]))
    offered = events[0]["value"]
    t = tracker(
        [user(WASH, "nlu_fallback", 0.2), button("article_helpful", offered["use"])], slots={"help_article": offered}
    )
    events, said, handoff = await run(ActionArticleFeedback(), t)
    [use] = await uses(shop["sessions"])
    assert use.helpful is True
    assert [m["response"] for m in said] == ["utter_article_helped"] and handoff is None
    assert events == [SlotSet("help_article", {**offered, "helpful": True})]


async def test_no_is_recorded_and_a_person_gets_the_article_that_did_not_help(shop) -> None:
    events, _, _ = await run(ActionFallback(), tracker([user(WASH, "nlu_fallback", 0.2)]))
    offered = events[0]["value"]
    history = [user(WASH, "nlu_fallback", 0.2), button("article_not_helpful", offered["use"])]
    events, said, handoff = await run(ActionArticleFeedback(), tracker(history, slots={"help_article": offered}))
    [use] = await uses(shop["sessions"])
    assert use.helpful is False
    assert [m["response"] for m in said] == ["utter_article_not_helped"]
    assert handoff is not None and handoff["reason"] == "fallbacks"
    assert handoff["article"] == {
        "id": use.article_id,
        "title": CARE_TITLE,
        "url": CARE_URL,
        "use": use.id,
        "helpful": False,
    }
    assert events[-1] == ConversationPaused()


async def test_a_button_naming_another_customers_use_changes_nothing(shop) -> None:
    events, _, _ = await run(ActionFallback(), tracker([user(WASH, "nlu_fallback", 0.2)], chat=42))
    theirs = events[0]["value"]["use"]
    for intent in ("article_helpful", "article_not_helpful"):
        events, _, handoff = await run(ActionArticleFeedback(), tracker([button(intent, theirs)], chat=43))
        assert not any(e.get("name") == "help_article" for e in events if isinstance(e, dict))
        assert handoff is None or "article" not in handoff
    [use] = await uses(shop["sessions"])
    assert use.helpful is None
    for forged in ("0", "x", str(theirs + 100)):
        await run(ActionArticleFeedback(), tracker([button("article_helpful", forged)], chat=42))
    assert (await uses(shop["sessions"]))[0].helpful is None


async def test_a_chat_without_a_stored_conversation_is_answered_with_nothing_recorded(shop) -> None:
    _, said, _ = await run(ActionFallback(), tracker([user(WASH, "nlu_fallback", 0.2)], chat=999))
    assert [m["response"] for m in said] == ["utter_help_center_answer_link"] and said[0]["article_use"] == "0"
    assert await uses(shop["sessions"]) == []


async def test_mydata_holds_the_customers_article_queries_and_no_one_elses(shop) -> None:
    events, _, _ = await run(ActionFallback(), tracker([user(WASH, "nlu_fallback", 0.2)], chat=42))
    await run(ActionArticleFeedback(), tracker([button("article_not_helpful", events[0]["value"]["use"])], chat=42))
    mine = await shop["sessions"].read(privacy.export_customer, 42)
    [conversation] = mine["conversations"]
    [asked] = conversation["article_queries"]
    assert (asked["query"], asked["article"], asked["helpful"]) == (WASH, CARE_TITLE, False) and asked["asked_at"]
    json.dumps(mine)
    theirs = await shop["sessions"].read(privacy.export_customer, 43)
    assert theirs["conversations"][0]["article_queries"] == [] and WASH not in json.dumps(theirs)
