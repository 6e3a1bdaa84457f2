"""The console's blocked customers: the list (who blocked them, when, why) and unblocking, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from bot.admin.pages import PREFIX
from bot.storage import blocks
from bot.storage.desk_models import Block
from bot.storage.models import AuditEntry
from tests.unit import test_admin_dashboard
from tests.unit.test_admin_console import post
from tests.unit.test_admin_dashboard import text_of
from tests.unit.test_insights import NOW, customer

console = test_admin_dashboard.console  # the signed-in console (alice) over the test's database


async def _seed(sessions, clock) -> None:
    """Ann Doe (@ann_w, Telegram user 1001) blocked by Alex; Telegram user 77, no longer on record, by Bo."""
    clock.set_to(NOW, frozen=True)
    async with sessions.begin() as session:
        await customer(session, 1, "Ann", "ann_w")
        await session.run_sync(
            lambda s: blocks.block(s, telegram_user_id=1001, reason="insults <b>agents</b>", by="Alex", by_user_id=5151)
        )
        await session.run_sync(lambda s: blocks.block(s, telegram_user_id=77, reason="spam", by="Bo", by_user_id=5252))


async def _blocked(sessions) -> list[int]:
    async with sessions() as session:
        return sorted((await session.scalars(select(Block.telegram_user_id))).all())


async def test_the_page_lists_who_blocked_whom_when_and_why(console, sessions, clock) -> None:
    client, _ = console
    assert "Nobody is blocked." in text_of(await (await client.get(f"{PREFIX}/blocks")).text())
    await _seed(sessions, clock)
    page = await (await client.get(f"{PREFIX}/blocks")).text()
    words = text_of(page)
    assert "Ann Doe (@ann_w) Telegram user 1001 Alex 2026-11-25 12:00 insults <b>agents</b> Unblock" in words
    assert "Not on record Telegram user 77 Bo 2026-11-25 12:00 spam Unblock" in words
    assert "<b>agents</b>" not in page, "the reason is shown as text, never as markup"
    assert page.count('name="csrf"') >= 2, "every unblock form carries the console's CSRF token"


async def test_an_admin_unblocks_and_the_audit_log_says_who(console, sessions, clock) -> None:
    client, _ = console
    await _seed(sessions, clock)
    forged = await client.post(f"{PREFIX}/blocks/unblock", data={"csrf": "forged", "user": "1001"})
    assert forged.status == 403
    assert await _blocked(sessions) == [77, 1001], "a forged form unblocks no one"
    done = await post(client, "/blocks/unblock", user="1001")
    assert done.url.path == f"{PREFIX}/blocks"
    words = text_of(await done.text())
    assert "Telegram user 1001 is unblocked." in words and "Ann Doe" not in words
    assert await _blocked(sessions) == [77]
    async with sessions() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(e.who, e.action, e.target) for e in entries if "block" in e.action] == [
        ("Alex (agent, Telegram user 5151)", "block customer", "Telegram user 1001"),
        ("Bo (agent, Telegram user 5252)", "block customer", "Telegram user 77"),
        ("alice", "unblock customer", "Telegram user 1001"),
    ]
    again = await post(client, "/blocks/unblock", user="1001")
    assert "That customer is not blocked any more." in text_of(await again.text())
    nonsense = await post(client, "/blocks/unblock", user="not a number")
    assert "That customer is not blocked any more." in text_of(await nonsense.text())
    assert "Telegram user 1001" in text_of(await (await client.get(f"{PREFIX}/audit")).text())
