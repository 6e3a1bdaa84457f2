"""The console's dashboard and flagged answers over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.admin import accounts, dashboard
from bot.admin.console import build_console
from bot.admin.pages import PREFIX
from bot.config import load_settings
from bot.content import current, seeding
from bot.content.files import read_tree
from bot.rasa_runtime import ROOT
from bot.storage import figures, flags
from bot.storage.desk_models import Flag
from bot.storage.models import Agent, AuditEntry, Ticket, utcnow
from tests.unit.test_admin_console import PASSWORD, RefusingTrainer, post, sign_in
from tests.unit.test_insights import NOW, customer, flagged_conversation, handed, make_tracker, said
from tests.unit.test_response_figures import history


@pytest.fixture
async def console(sessions, tmp_path) -> AsyncIterator[tuple[TestClient, str]]:
    """The console over seeded content and the test's database (so Rasa's tracker store is found as the app finds
    it); alice signed in. Yields the client and the tracker store's URL."""
    await sessions.run(seeding.ensure_seeded, read_tree(ROOT))
    await accounts.add_account(sessions, "alice", PASSWORD, "test")
    settings = load_settings(
        {"FRONTLINE_VAR": str(tmp_path), "DATABASE_URL": sessions.kw["bind"].url.render_as_string(hide_password=False)}
    )
    trainer = RefusingTrainer(settings, sessions)
    root = web.Application()
    root.add_subapp(PREFIX, build_console(settings, sessions, trainer, behind_proxy=False))
    client = TestClient(TestServer(root))
    await client.start_server()
    await sign_in(client)
    try:
        yield client, settings.rasa_tracker_url
    finally:
        await trainer.wait()
        await client.close()


def text_of(page: str) -> str:
    """The page's words, tags and runs of spaces gone."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_durations_and_bars_read_well() -> None:
    assert [figures.duration(s) for s in (None, 45, 240, 260, 3600, 7500)] == [
        "–",
        "45 s",
        "4 min",
        "4 min 20 s",
        "1 h",
        "2 h 5 min",
    ]
    assert (dashboard.bar(3, 6), dashboard.bar(0, 0)) == (dashboard.BAR_WIDTH / 2, 0)
    chart = dashboard.day_bars([("mon", 2), ("tue", 4), ("wed", 0)])
    assert [c["height"] for c in chart["columns"]] == [70.0, 140.0, 0.0] and chart["top"] == 4
    assert all(c["y"] + c["height"] == chart["base"] for c in chart["columns"])


async def test_the_dashboard_shows_the_figures_and_charts(console, sessions) -> None:
    client, _ = console
    now = utcnow()
    async with sessions.begin() as session:
        ann, ben, cy = (
            await customer(session, 1, "Ann"),
            await customer(session, 2, "Ben"),
            await customer(session, 3, "Cy"),
        )
        session.add_all(
            [
                said(ann, now - timedelta(minutes=30), "hello"),
                said(ben, now - timedelta(minutes=20), "I want a person"),
                said(cy, now - timedelta(minutes=10), "blorp"),
                said(cy, now - timedelta(days=40), "long ago"),
            ]
        )
        await handed(session, ben, "customer_request", now - timedelta(minutes=50), wait=240, reply=60, csat=5)
        await handed(session, cy, "fallbacks", now - timedelta(minutes=40), wait=120, reply=20, csat=2)
    page = await (await client.get(f"{PREFIX}/dashboard?days=7")).text()
    words = text_of(page)
    assert "3 conversations" in words and "33 % contained" in words and "2 handoffs to a person" in words
    assert "3 min median wait" in words and "40 s median first response" in words
    assert "3.5/5 rating (2 rated)" in words
    assert "asked for a person 1" in words and "the bot did not understand them several times 1" in words
    assert "★★★★★ 1 ★★★★ 0 ★★★ 0 ★★ 1 ★ 0" in words
    assert page.count('class="bar"><title>') == 7, "a column a day"
    assert "<script" not in page and "http://" not in page and "https://" not in page, "nothing loads from elsewhere"
    assert "selected>last 7 days" in page


async def test_the_dashboard_shows_the_first_response_from_the_request_and_the_agents(console, sessions) -> None:
    client, _ = console
    async with sessions.begin() as session:
        await history(session, utcnow())
    words = text_of(await (await client.get(f"{PREFIX}/dashboard?days=7")).text())
    assert "1 min median first response (claimed → first reply)" in words
    assert "5 min 30 s median first response from the request (queued → first reply)" in words
    assert "Alex (@alex_w) 3 45 s 4 min 15 s 4.0/5 (2 rated)" in words
    assert "Bo 1 2 min 12 min 4.0/5 (1 rated)" in words
    assert words.index("Alex (@alex_w) 3") < words.index("Bo 1 2 min")


async def test_questions_not_understood_are_listed_and_added_as_examples(clock, console, sessions) -> None:
    clock.set_to(NOW)  # the tracker's events are dated from NOW
    client, tracker = console
    await sign_in(client)  # afresh: the fixture's sign-in may have been made a month later than NOW
    await make_tracker(
        tracker,
        [
            ("user", "nlu_fallback", "can I pay with crypto", 0),
            ("user", "nlu_fallback", "Can I pay with crypto?", 1),
            ("user", "out_of_scope", "tell me a joke", 2),
        ],
    )
    words = text_of(await (await client.get(f"{PREFIX}/dashboard")).text())
    assert "can I pay with crypto 2" in words and "tell me a joke 1" in words
    assert words.index("can I pay with crypto") < words.index("tell me a joke")
    response = await post(
        client,
        "/dashboard/example",
        text="can I pay with  crypto",
        intent="faq/payment_methods",
        back=f"{PREFIX}/dashboard?days=7",
    )
    assert response.url.path_qs == f"{PREFIX}/dashboard?days=7"
    assert (
        "Added “can I pay with crypto” to faq/payment_methods. The bot understands it after the next training"
        in text_of(await response.text())
    )
    assert (await sessions.read(current.load)).intents["faq/payment_methods"].examples[-1] == "can I pay with crypto"
    async with sessions() as session:
        entry = await session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
    assert (entry.who, entry.action, entry.target) == ("alice", "edit examples", "faq/payment_methods")
    again = await post(client, "/dashboard/example", text="Can I pay with crypto?", intent="faq/payment_methods")
    assert "already an example of faq/payment_methods" in text_of(await again.text())
    refused = await post(client, "/dashboard/example", text="tell me a joke", intent="")
    assert "Nothing was added: Choose an intent" in text_of(await refused.text())
    elsewhere = await post(
        client, "/dashboard/example", text="tell me a joke", intent="greet", back="https://evil.example/"
    )
    assert elsewhere.url.path == f"{PREFIX}/dashboard", "only back to a console page"


async def test_flagged_answers_are_listed_taught_and_resolved(console, sessions) -> None:
    client, _ = console
    ticket_id, agent_id = await flagged_conversation(sessions)
    async with sessions.begin() as session:
        ticket, agent = await session.get(Ticket, ticket_id), await session.get(Agent, agent_id)
        await session.run_sync(flags.flag, ticket=ticket, agent=agent, note="she asked about delivery times")
    dash = text_of(await (await client.get(f"{PREFIX}/dashboard")).text())
    assert "1 flagged answer waiting for a look" in dash
    words = text_of(await (await client.get(f"{PREFIX}/flags")).text())
    assert f"T{ticket_id:06d} · Fay Doe flagged by Alex" in words
    assert "Customer when will my sofa get here Bot You can return anything within 30 days." in words
    assert "Agent's note she asked about delivery times" in words
    taught = await post(
        client,
        "/dashboard/example",
        text="when will my sofa get here",
        intent="faq/delivery_time",
        back=f"{PREFIX}/flags",
    )
    assert (
        taught.url.path == f"{PREFIX}/flags"
        and "Added “when will my sofa get here” to faq/delivery_time" in text_of(await taught.text())
    )
    async with sessions() as session:
        flag_id = await session.scalar(select(Flag.id))
    resolved = await post(client, "/flags/resolve", flag=str(flag_id))
    assert f"Flag {flag_id} resolved." in text_of(await resolved.text()) and "No open flags." in text_of(
        await resolved.text()
    )
    assert "flagged answer" not in text_of(await (await client.get(f"{PREFIX}/dashboard")).text())
    history = text_of(await (await client.get(f"{PREFIX}/flags?resolved=1")).text())
    assert "Resolved by alice" in history
    again = await post(client, "/flags/resolve", flag=str(flag_id))
    assert "already resolved or no longer exists" in text_of(await again.text())


async def _csrf(client: TestClient) -> str:
    page = await (await client.get(f"{PREFIX}/flags")).text()
    return html.unescape(re.search(r'name="csrf" value="([^"]+)"', page).group(1))


async def test_every_new_page_needs_a_signed_in_admin(console) -> None:
    client, _ = console
    await client.post(f"{PREFIX}/logout", data={"csrf": await _csrf(client)})
    for path in ("/dashboard", "/flags", "/conversations", "/conversation?id=1"):
        response = await client.get(PREFIX + path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith(f"{PREFIX}/login"), path
    for path in ("/dashboard/example", "/flags/resolve"):
        assert (await client.post(PREFIX + path, data={"csrf": "x"}, allow_redirects=False)).status == 401, path
