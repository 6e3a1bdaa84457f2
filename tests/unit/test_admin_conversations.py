"""The console's conversations: searching transcripts and reading one, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bot.admin import conversations
from bot.admin.pages import PREFIX
from bot.storage.models import Agent, Direction, Handoff, Message
from tests.unit import test_admin_dashboard
from tests.unit.test_admin_dashboard import text_of
from tests.unit.test_insights import NOW, customer, handed, said

GROUP = -1001234
console = test_admin_dashboard.console  # the signed-in console over the test's database


async def seed(sessions) -> dict[str, int]:
    """Ann (@ann_w) asked where her parcel is; Ben asked for a person and Alex helped him (ticket, rating); Cy only
    said hello. Ben's words were also copied to the agents' group. Returns the conversation ids."""
    async with sessions.begin() as session:
        ann, ben, cy = (
            await customer(session, 1, "Ann", "ann_w"),
            await customer(session, 2, "Ben", "benny"),
            await customer(session, 3, "Cy"),
        )
        session.add_all(
            [
                said(ann, NOW - timedelta(hours=3), "where is my parcel 100%"),
                said(ann, NOW - timedelta(hours=3), "It is on its way.", Direction.OUT),
                said(ben, NOW - timedelta(hours=2), "my lamp is broken", update_id=7),
                said(cy, NOW - timedelta(hours=1), "hello"),
            ]
        )
        handoff = await handed(session, ben, "customer_request", NOW - timedelta(hours=2), wait=300, reply=45, csat=4)
        agent = Agent(telegram_user_id=5151, first_name="Alex")
        session.add(agent)
        await session.flush()
        (await session.get(Handoff, handoff.id)).agent_id = agent.id
        (await session.get(Handoff, handoff.id)).csat_comment = "quick and kind"
        session.add_all(
            [
                Message(
                    conversation_id=ben.id,
                    chat_id=GROUP,
                    direction=Direction.OUT,
                    text="💬 Ben · copied secret words",
                    kind="relay",
                    created_at=NOW - timedelta(hours=2),
                ),
                Message(
                    conversation_id=ben.id,
                    chat_id=ben.chat_id,
                    direction=Direction.OUT,
                    text="Alex: sorry about the lamp",
                    kind="agent",
                    payload={"agent_id": agent.id, "agent_name": "Alex"},
                    created_at=NOW - timedelta(minutes=110),
                ),
                Message(
                    conversation_id=ben.id,
                    chat_id=ben.chat_id,
                    direction=Direction.OUT,
                    text="",
                    kind="note",
                    payload={"agent_name": "Alex", "text": "refund approved"},
                    created_at=NOW - timedelta(minutes=100),
                ),
            ]
        )
        return {"ann": ann.id, "ben": ben.id, "cy": cy.id, "ticket": handoff.ticket_id}


async def _names(sessions, words: str, page: int = 1) -> list[str]:
    found, _ = await sessions.read(conversations.search, words, page)
    return [f.customer.first_name for f in found]


async def test_search_by_name_username_ticket_and_words(sessions) -> None:
    ids = await seed(sessions)
    assert await _names(sessions, "") == ["Cy", "Ben", "Ann"], "the most recent first"
    assert await _names(sessions, "ANN") == ["Ann"]
    assert await _names(sessions, "@benny") == ["Ben"]
    assert await _names(sessions, "ann doe") == ["Ann"]
    assert await _names(sessions, f"T{ids['ticket']:06d}") == ["Ben"]
    assert await _names(sessions, f"t{ids['ticket']}") == ["Ben"]
    assert await _names(sessions, "T999999") == [] and await _names(sessions, "T99999999999") == []
    assert await _names(sessions, "broken") == ["Ben"]
    assert await _names(sessions, "on its way") == ["Ann"], "the bot's words too"
    assert await _names(sessions, "100%") == ["Ann"] and await _names(sessions, "%") == ["Ann"], (
        "% is a character, not a wildcard"
    )
    assert await _names(sessions, "secret words") == [], "copies sent to the agents are not the customer's transcript"
    [found], total = await sessions.read(conversations.search, "parcel")
    assert (total, found.match, found.messages) == (1, "where is my parcel 100%", 2)


async def test_search_results_come_a_page_at_a_time(sessions) -> None:
    async with sessions.begin() as session:
        for number in range(conversations.PER_PAGE + 3):
            person = await customer(session, 100 + number, f"Zed{number:02d}")
            session.add(said(person, NOW - timedelta(minutes=number), "hi"))
    first, second = await _names(sessions, "zed"), await _names(sessions, "zed", page=2)
    assert len(first) == conversations.PER_PAGE and second == ["Zed25", "Zed26", "Zed27"]
    assert (await sessions.read(conversations.search, "zed", 2))[1] == conversations.PER_PAGE + 3


async def test_the_conversations_page_searches(console, sessions) -> None:
    client, _ = console
    await seed(sessions)
    words = text_of(await (await client.get(f"{PREFIX}/conversations?q=lamp")).text())
    assert "1 conversation matching “lamp”" in words and "Ben Doe @benny" in words
    assert "Alex: sorry about the lamp" in words, "the newest message with the words"
    assert "Ann" not in words


async def test_one_conversation_with_its_handoffs_tickets_and_transcript(console, sessions, monkeypatch) -> None:
    client, _ = console
    ids = await seed(sessions)
    page = await (await client.get(f"{PREFIX}/conversation?id={ids['ben']}")).text()
    words = text_of(page)
    ticket = f"T{ids['ticket']:06d}"
    assert "Ben Doe @benny" in words
    assert f"{ticket} asked for a person Alex" in words and "5 min 45 s" in words and "4/5 “quick and kind”" in words
    assert "Ben my lamp is broken" in words and "Alex sorry about the lamp" in words
    assert "Alex (internal note) refund approved" in words
    assert "secret words" not in words, "only the customer's own chat"
    monkeypatch.setattr(conversations, "LINES_PER_PAGE", 2)
    second = text_of(await (await client.get(f"{PREFIX}/conversation?id={ids['ben']}&page=2")).text())
    assert "Page 2 of 2" in second and "refund approved" in second and "my lamp is broken" not in second
    missing = await client.get(f"{PREFIX}/conversation?id=999999")
    assert missing.status == 404 and "There is no conversation 999999" in text_of(await missing.text())
    assert (await client.get(f"{PREFIX}/conversation?id=x")).status == 404
