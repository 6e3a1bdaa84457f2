"""The agents see the help center's part: the card of a handoff after a help-center answer names the article and
what the customer said of it (the app against the emulator and a scripted Rasa sending actions/handoff.py's
payload); and the line alone for each answer the customer gave."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.config import load_settings
from bot.content import articles
from bot.desk import handoff
from bot.desk.briefing import article_line
from bot.desk.unit import Unit
from bot.storage import handoffs, transcript
from bot.storage.kb_models import Article, ArticleUse
from bot.storage.models import Base, Handoff
from tests.unit.chat_harness import Harness, running_harness
from tests.unit.test_desk import _last, _new

ARTICLE = {
    "id": 3,
    "title": "Washing and caring for cotton, linen and wool clothes",
    "url": "https://help.northwind.example/articles/care-clothes",
    "use": 11,
    "helpful": False,
}
HANDOFF = {
    "handoff": {
        "reason": "fallbacks",
        "ticket_id": None,
        "collected": {},
        "intents": [{"name": "nlu_fallback", "confidence": 0.3}, {"name": "article_not_helpful", "confidence": 1.0}],
        "message": '/article_not_helpful{"article_use":"11"}',
        "article": ARTICLE,
    }
}


def _answers(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body["message"] == "No, talk to a person":
        return [{"text": "Sorry that didn't answer it. I'm bringing in a person from our team."}, {"custom": HANDOFF}]
    return [{"text": f"echo: {body['message']}"}]


@pytest.fixture
async def desk(tmp_path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, desk=True) as running:
        running.rasa.answer = _answers
        yield running


async def test_the_card_names_the_article_that_did_not_help(desk: Harness) -> None:
    group_start = await _last(desk, desk.group_id)
    await desk.say("No, talk to a person")
    [card] = [m for m in await _new(desk, desk.group_id, group_start, "🎫") if "🎫" in (m.get("text") or "")]
    assert "Needs a person: " in card["text"]
    assert (
        "Help-center article offered: “Washing and caring for cotton, linen and wool clothes” "
        "https://help.northwind.example/articles/care-clothes · the customer said it did not help"
    ) in card["text"]


@pytest.mark.parametrize(
    ("helpful", "said"),
    [(False, "it did not help"), (True, "it helped"), (None, "the customer did not say whether it helped")],
)
def test_the_article_line_says_what_the_customer_answered(helpful: bool | None, said: str) -> None:
    line = article_line(Handoff(reason="fallbacks", context={"article": {**ARTICLE, "url": None, "helpful": helpful}}))
    assert line == f"Help-center article offered: “{ARTICLE['title']}” · " + (
        said if helpful is None else f"the customer said {said}"
    )


def test_no_line_without_an_article() -> None:
    assert article_line(None) is None
    assert article_line(Handoff(reason="customer_request", context={"intents": []})) is None
    assert article_line(Handoff(reason="customer_request", context={"article": "forged"})) is None


def test_the_answer_that_did_not_help_is_tied_to_the_handoff_it_ended_in(tmp_path) -> None:
    """The handoff's context names the use of the article offered: the use of this conversation is tied to the new
    handoff; a use id of another customer's conversation is left alone."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path), "AGENT_CHAT_ID": "-1001234567890"})
    with Session(engine) as session:
        article = Article(slug="care-clothes", title=ARTICLE["title"], body="Wash cold.")
        session.add(article)
        session.flush()
        chats = []
        for chat_id, name in ((4242, "Robin"), (4343, "Kim")):
            customer = transcript.upsert_customer(session, telegram_user_id=chat_id, first_name=name)
            chats.append(transcript.conversation_for_chat(session, chat_id=chat_id, customer=customer))
        robin, kim = chats
        robins, kims = (articles.record_use(session, article.id, c.id, "how do i wash wool") for c in chats)
        handoff.escalate(
            Unit(session, settings), robin, reason="fallbacks", context={"article": {**ARTICLE, "use": robins}}
        )
        handoff.escalate(
            Unit(session, settings), kim, reason="fallbacks", context={"article": {**ARTICLE, "use": robins}}
        )
        session.flush()
        robin_handoff, kim_handoff = (handoffs.active_for(session, c.id) for c in chats)
        assert robin_handoff is not None and kim_handoff is not None
        uses = {u.id: u.handoff_id for u in session.scalars(select(ArticleUse))}
        assert uses == {robins: robin_handoff.id, kims: None}
