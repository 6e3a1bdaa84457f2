"""The console's Saved replies page over HTTP, on SQLite and PostgreSQL: add, change, preview, refuse, delete,
every change in the audit log, and the uses on the dashboard."""

from __future__ import annotations

from sqlalchemy import select

from bot.admin.pages import PREFIX
from bot.storage.desk_models import SavedReply
from tests.unit.test_admin_console import audit, post
from tests.unit.test_admin_dashboard import console, text_of  # noqa: F401 (console: the fixture)


async def _replies(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        return [(r.name, r.category, r.text) for r in (await session.scalars(select(SavedReply))).all()]


async def test_admins_add_change_preview_and_delete_saved_replies_each_change_audited(console, sessions) -> None:  # noqa: F811
    client, _ = console
    page = text_of(
        await (
            await post(
                client,
                "/saved-replies/save",
                name="Refund sent",
                category="Billing",
                text="Hi {first_name}, {ticket} is refunded. {agent}",
            )
        ).text()
    )
    assert "Saved “Refund sent”" in page
    assert "Preview: Hi Maya, T000042 is refunded. Alex" in page and "Billing · sent 0 times" in page
    assert len(await _replies(sessions)) == 1
    async with sessions() as session:
        number = (await session.scalar(select(SavedReply))).id
    page = text_of(
        await (
            await post(
                client,
                "/saved-replies/save",
                reply=str(number),
                name="Refund sent",
                category="",
                text="Your {order} for {ticket}",
            )
        ).text()
    )
    assert "Nothing was saved: Unknown placeholder {order}" in page and "{first_name}, {ticket}, {agent}" in page
    assert await _replies(sessions) == [("Refund sent", "Billing", "Hi {first_name}, {ticket} is refunded. {agent}")]
    await post(
        client, "/saved-replies/save", reply=str(number), name="Refund done", category="", text="Done, {first_name}."
    )
    assert await _replies(sessions) == [("Refund done", "", "Done, {first_name}.")]
    preview = text_of(
        await (await client.get(f"{PREFIX}/saved-replies", params={"preview": "Hi {first_name} {x}"})).text()
    )
    assert "Hi Maya {x}" in preview and "Unknown placeholder: {x}" in preview
    page = text_of(await (await post(client, "/saved-replies/delete", reply=str(number))).text())
    assert "Deleted “Refund done”" in page and await _replies(sessions) == []
    assert [entry for entry in await audit(sessions) if "saved reply" in entry[1]] == [
        ("alice", "add saved reply", "Refund sent"),
        ("alice", "change saved reply", "Refund done"),
        ("alice", "delete saved reply", "Refund done"),
    ]


async def test_the_dashboard_shows_how_often_each_saved_reply_was_sent(console, sessions) -> None:  # noqa: F811
    client, _ = console
    await post(client, "/saved-replies/save", name="Greeting", category="", text="Hello {first_name}!")
    await post(client, "/saved-replies/save", name="Invoice copy", category="Billing", text="Here it is.")
    async with sessions.begin() as session:
        for reply in (await session.scalars(select(SavedReply))).all():
            reply.uses = 7 if reply.name == "Invoice copy" else 2
    page = text_of(await (await client.get(f"{PREFIX}/dashboard")).text())
    assert "Saved replies sent Invoice copy Billing 7 Greeting 2" in page
