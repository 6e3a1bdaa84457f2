"""Answering from the help center: a message not understood (nlu_fallback) or out of scope is searched in the
shop's articles (actions/help_center.py); a confident match is said with the article's title, its link, and
"Did that answer your question?" with Yes / No buttons. Otherwise the caller behaves as without a help center.

Each answer is recorded as an article use (the query, the article, the conversation). The buttons name the use
(`/article_helpful{"article_use":"<id>"}`): a payload typed by hand or naming another customer's use changes
nothing, since a use is rated only from the conversation it was offered in (`bot.content.articles.rate_use`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import db, metrics
from actions.help_center import LiveHelpCenter, live
from bot.content import articles
from bot.storage import transcript

log = logging.getLogger(__name__)
SLOT = "help_article"  # the article offered last: {"use", "id", "title", "url", "helpful"}
USE_ENTITY = "article_use"
ANSWER, ANSWER_WITH_LINK = "utter_help_center_answer", "utter_help_center_answer_link"


def help_center() -> LiveHelpCenter:
    """The index to search (tests put their own here)."""
    return live()


def database() -> Any:
    """The sessions to record uses in (tests put their own here)."""
    return db.sessions()


async def conversation_id(tracker: Tracker) -> int | None:
    """The stored conversation of this Rasa conversation, when the chat has one."""
    chat = db.chat_id(tracker.sender_id)
    if chat is None:
        return None
    found = await database().read(transcript.find_conversation, chat)
    return found.id if found is not None else None


async def offer_article(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]] | None:
    """Answer the latest message from an article when the search is confident (the events to return); None when it
    is not, or the help center is not available: the caller then does what it did before."""
    query = (tracker.latest_message.get("text") or "").strip()
    if not query or tracker.active_loop_name:
        return None
    center = help_center()
    started = time.monotonic()
    try:
        answer = await center.answer(query)
    except Exception:
        log.exception("help center: the search failed")
        return None
    if answer is not None:
        metrics.searched(time.monotonic() - started, answer.answered)
    if answer is None or not answer.answered or answer.hit is None:
        return None
    article_id = int(answer.hit.article_id)
    title, url = center.article(article_id) or (answer.hit.title, None)
    use_id = 0
    try:
        conversation = await conversation_id(tracker)
        if conversation is not None:
            use_id = await database().run(articles.record_use, article_id, conversation, query)
    except Exception:
        log.exception("help center: could not record the use of article %s", article_id)
    if url:
        dispatcher.utter_message(
            response=ANSWER_WITH_LINK,
            passage=answer.text,
            article_title=title,
            article_url=url,
            article_use=str(use_id),
        )
    else:
        dispatcher.utter_message(response=ANSWER, passage=answer.text, article_title=title, article_use=str(use_id))
    log.info("help center: answered with article %s (p=%.2f, use %s)", article_id, answer.probability, use_id)
    offered = {"use": use_id, "id": article_id, "title": title, "url": url, "helpful": None}
    return [SlotSet(SLOT, offered)]


def use_named(tracker: Tracker) -> int | None:
    """The use id a Yes / No button carries."""
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == USE_ENTITY:
            value = str(entity.get("value") or "")
            return int(value) if value.isdigit() else None
    return None


async def rate(tracker: Tracker, helpful: bool) -> dict[str, Any] | None:
    """Record the customer's Yes / No on the use their button names; the offered article (for the handoff), or
    None when the button names no use of this conversation."""
    use_id = use_named(tracker)
    if not use_id:
        return None
    try:
        conversation = await conversation_id(tracker)
        if conversation is None:
            return None
        row = await database().run(articles.rate_use, use_id, conversation, helpful)
    except Exception:
        log.exception("help center: could not record the rating of use %s", use_id)
        return None
    if row is None:
        log.warning("help center: a rating named use %s, which is not this conversation's", use_id)
        return None
    offered = tracker.get_slot(SLOT)
    offered = dict(offered) if isinstance(offered, dict) and offered.get("use") == use_id else {}
    title, url = help_center().article(row.article_id) or (offered.get("title"), offered.get("url"))
    return {"use": use_id, "id": row.article_id, "title": title, "url": url, "helpful": helpful}
