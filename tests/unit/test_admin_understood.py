"""The console shows how well an intent's examples are understood after a save, and the closest intent for each
question the bot did not understand (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.admin.pages import PREFIX
from tests.unit import test_admin_dashboard
from tests.unit.test_admin_console import post, sign_in
from tests.unit.test_admin_dashboard import text_of
from tests.unit.test_insights import NOW, make_tracker

console = test_admin_dashboard.console  # the dashboard's fixture: seeded content, the tracker store, alice signed in


async def test_the_intent_page_shows_the_check_after_every_save(console) -> None:
    client, _ = console
    added = await post(
        client,
        "/intents",
        kind="question",
        name="gift_wrap",
        examples="do you gift wrap\ncan you gift wrap it\ngift wrapping please",
        answer="Yes, at checkout.",
    )
    words = text_of(await added.text())
    assert "How well the bot can tell it apart" in words
    assert "examples recognised as faq/gift_wrap" in words
    assert "Needs more examples: it has 3; give at least 5." in words
    more = await post(
        client,
        "/intent/examples",
        name="faq/gift_wrap",
        action="add",
        examples="is gift wrapping free\nwrap it as a present for my mum\ngift wrap my order please",
    )
    words = text_of(await more.text())
    assert "6 of 6 examples recognised as faq/gift_wrap (100 %)" in words and "Needs more examples" not in words
    confusing = await post(
        client, "/intent/examples", name="faq/gift_wrap", action="add", examples="how long does delivery take"
    )
    words = text_of(await confusing.text())
    assert "6 of 7 examples recognised as faq/gift_wrap (86 %)" in words
    assert "Most often taken for faq/delivery_time (1 example), e.g. “how long does delivery take”." in words


async def _tracker_with_ranking(url: str) -> None:
    """One message Rasa ranked (fallback first, then a FAQ topic), one it recorded without a ranking."""
    await make_tracker(url, [("user", "nlu_fallback", "do you take bitcoin", 0)])
    engine = create_async_engine(url, poolclass=NullPool)
    parse_data = {
        "intent": {"name": "nlu_fallback", "confidence": 0.7},
        "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.7}, {"name": "faq", "confidence": 0.38}],
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/payment_methods", "confidence": 0.38}}},
    }
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO events (sender_id, type_name, intent_name, timestamp, data) "
                "VALUES ('tg-2', 'user', 'nlu_fallback', :stamp, :data)"
            ),
            {
                "stamp": (NOW - timedelta(hours=1)).timestamp(),
                "data": json.dumps({"event": "user", "text": "where are my trousers", "parse_data": parse_data}),
            },
        )
    await engine.dispose()


async def test_each_question_not_understood_suggests_its_closest_intent(clock, console) -> None:
    clock.set_to(NOW)
    client, tracker = console
    await sign_in(client)
    await _tracker_with_ranking(tracker)
    page = await (await client.get(f"{PREFIX}/dashboard")).text()
    words = text_of(page)
    assert "where are my trousers 1" in words and "faq/payment_methods 38 % the bot's guess" in words
    assert "do you take bitcoin 1" in words
    row = words[words.index("do you take bitcoin") :]
    assert "similar wording" in row.split("Add as example")[0]
    assert "<option selected>faq/payment_methods</option>" in page
