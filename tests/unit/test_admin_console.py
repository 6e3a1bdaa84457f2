"""The admin console over HTTP, mounted as the app mounts it, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.admin import accounts
from bot.admin.console import PUBLIC, build_console
from bot.admin.pages import PREFIX
from bot.config import load_settings
from bot.content import current, seeding, versions
from bot.content.deploy import Trainer
from bot.content.files import read_tree
from bot.content.usages import usages
from bot.rasa_runtime import ROOT
from bot.storage.models import AdminSession, AuditEntry, ModelStatus, ModelVersion, utcnow
from bot.web import HealthServer

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class RefusingTrainer(Trainer):
    """A trainer whose Rasa always refuses the content (no Rasa runs in unit tests)."""

    async def _run(self, version_id: int) -> None:
        await self._update(
            version_id,
            status=ModelStatus.FAILED,
            stage="failed",
            error="An intent needs more examples. Rasa said: faq/x has 1 example",
        )


@pytest.fixture
async def console(sessions, tmp_path) -> AsyncIterator[tuple[TestClient, web.Application, Trainer]]:
    """The console at /admin over seeded content, with the account alice."""
    await sessions.run(seeding.ensure_seeded, read_tree(ROOT))
    await accounts.add_account(sessions, "alice", PASSWORD, "test")
    trainer = RefusingTrainer(load_settings({"FRONTLINE_VAR": str(tmp_path)}), sessions)
    admin = build_console(load_settings({"FRONTLINE_VAR": str(tmp_path)}), sessions, trainer, behind_proxy=False)
    root = web.Application()
    root.add_subapp(PREFIX, admin)
    client = TestClient(TestServer(root))
    await client.start_server()
    try:
        yield client, admin, trainer
    finally:
        await trainer.wait()
        await client.close()


async def sign_in(client: TestClient, username: str = "alice", password: str = PASSWORD) -> tuple[int, str]:
    """Post the login form as a browser does; the status and the page (after redirects)."""
    page = await (await client.get(f"{PREFIX}/login")).text()
    response = await client.post(
        f"{PREFIX}/login",
        data={"csrf": CSRF.search(page).group(1), "username": username, "password": password, "next": ""},
    )
    return response.status, await response.text()


async def csrf_of(client: TestClient, path: str = "/intents") -> str:
    page = await (await client.get(PREFIX + path)).text()
    return html.unescape(CSRF.search(page).group(1))


async def post(client: TestClient, path: str, **data: str):
    data.setdefault("csrf", await csrf_of(client))
    return await client.post(PREFIX + path, data=data)


async def audit(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        return [
            (e.who, e.action, e.target)
            for e in (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        ]


async def test_a_wrong_password_and_an_unknown_name_are_refused_alike(console) -> None:
    client, _, _ = console
    status, page = await sign_in(client, password="wrong password")
    assert status == 401 and "Wrong username or password" in page
    status, unknown = await sign_in(client, username="nobody")
    assert status == 401 and CSRF.sub("", unknown) == CSRF.sub("", page)
    assert (await client.get(f"{PREFIX}/intents", allow_redirects=False)).status == 303
    status, page = await sign_in(client)
    assert status == 200 and "alice" in page


async def test_sign_in_shows_pages_and_sign_out_ends_the_session(console) -> None:
    client, _, _ = console
    status, page = await sign_in(client)
    assert status == 200 and "faq/delivery_time" in page and "alice" in page
    token = await csrf_of(client)
    response = await client.post(f"{PREFIX}/logout", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"{PREFIX}/login"
    assert (await client.get(f"{PREFIX}/intents", allow_redirects=False)).status == 303
    refused = await client.post(f"{PREFIX}/intents", data={"csrf": token, "name": "x", "examples": "a\nb"})
    assert refused.status == 401


async def test_the_session_cookie_is_http_only_and_strict(console) -> None:
    client, _, _ = console
    page = await (await client.get(f"{PREFIX}/login")).text()
    response = await client.post(
        f"{PREFIX}/login",
        allow_redirects=False,
        data={"csrf": CSRF.search(page).group(1), "username": "alice", "password": PASSWORD},
    )
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "frontline_console=" in v)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie


@pytest.mark.parametrize(
    "field,age", [("last_seen_at", timedelta(hours=2, minutes=1)), ("created_at", timedelta(hours=12, minutes=1))]
)
async def test_sessions_expire_when_idle_or_old(console, sessions, field: str, age: timedelta) -> None:
    client, _, _ = console
    await sign_in(client)
    assert (await client.get(f"{PREFIX}/intents", allow_redirects=False)).status == 200
    async with sessions.begin() as session:
        await session.execute(update(AdminSession).values({field: utcnow() - age}))
    response = await client.get(f"{PREFIX}/intents", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith(f"{PREFIX}/login")
    async with sessions() as session:
        assert (await session.scalars(select(AdminSession))).all() == []


async def test_every_route_refuses_the_anonymous_and_forged_posts(console) -> None:
    client, admin, _ = console
    routes = [
        (r.method, r.resource.canonical)
        for r in admin.router.routes()
        if r.resource.canonical[len(PREFIX) :] not in PUBLIC
    ]
    assert {"/admin/intents", "/admin/training/live", "/admin/audit"} <= {path for _, path in routes}
    for method, path in routes:
        response = await client.request(
            method, path, allow_redirects=False, data={"csrf": "x"} if method == "POST" else None
        )
        if method == "POST":
            assert response.status == 401, path
        else:
            assert response.status == 303 and response.headers["Location"].startswith(f"{PREFIX}/login"), path
    await sign_in(client)
    for method, path in routes:
        if method == "POST":
            for forged in ({"csrf": "forged", "name": "faq/forged"}, {"name": "faq/forged"}):
                response = await client.post(path, data=forged, allow_redirects=False)
                assert response.status == 403, path


async def test_a_forged_post_changes_nothing(console, sessions) -> None:
    client, _, _ = console
    await sign_in(client)
    response = await post(
        client, "/intents", csrf="not-the-token", kind="question", name="forged", examples="one\ntwo", answer="no"
    )
    assert response.status == 403
    assert "faq/forged" not in (await sessions.read(current.load)).intents


async def test_login_form_needs_its_own_token(console) -> None:
    client, _, _ = console
    response = await client.post(f"{PREFIX}/login", data={"csrf": "guess", "username": "alice", "password": PASSWORD})
    assert response.status == 403


async def test_a_new_question_its_examples_and_warnings_are_audited(console, sessions) -> None:
    client, _, _ = console
    await sign_in(client)
    response = await post(
        client,
        "/intents",
        kind="question",
        name="Gift wrap",
        examples="do you gift wrap\ncan you wrap it as a present\ndelivery time?",
        answer="Yes, choose gift wrapping at checkout.",
    )
    page = await response.text()
    assert response.url.path == f"{PREFIX}/intent" and "Added faq/gift_wrap" in page
    assert "“delivery time?” is also an example of faq/delivery_time" in page
    response = await post(
        client,
        "/intent/examples",
        name="faq/gift_wrap",
        action="add",
        examples="gift wrapping please\ndo you gift wrap\nwrap my order",
    )
    page = await response.text()
    assert "Added 2 examples." in page and "“do you gift wrap” was already an example here" in page
    examples = (await sessions.read(current.load)).intents["faq/gift_wrap"].examples
    assert examples == [
        "do you gift wrap",
        "can you wrap it as a present",
        "delivery time?",
        "gift wrapping please",
        "wrap my order",
    ]
    await post(
        client,
        "/intent/examples",
        name="faq/gift_wrap",
        action="edit",
        index="2",
        original="delivery time?",
        text="can i get it gift wrapped",
    )
    await post(
        client, "/intent/examples", name="faq/gift_wrap", action="delete", index="0", original="do you gift wrap"
    )
    stale = await post(
        client, "/intent/examples", name="faq/gift_wrap", action="delete", index="0", original="do you gift wrap"
    )
    assert "The examples changed meanwhile" in await stale.text()
    content = await sessions.read(current.load)
    assert content.intents["faq/gift_wrap"].examples == [
        "can you wrap it as a present",
        "can i get it gift wrapped",
        "gift wrapping please",
        "wrap my order",
    ]
    assert content.responses["utter_faq/gift_wrap"].variations == [{"text": "Yes, choose gift wrapping at checkout."}]
    listing = await (await client.get(f"{PREFIX}/intents")).text()
    assert "Yes, choose gift wrapping at checkout." in listing
    assert [a for a in await audit(sessions) if a[0] == "alice"] == [("alice", "add intent", "faq/gift_wrap")] + [
        ("alice", "edit examples", "faq/gift_wrap")
    ] * 3


async def test_a_refused_delete_shows_what_uses_the_intent(console, sessions) -> None:
    client, _, _ = console
    await sign_in(client)
    confirm = await (await client.get(f"{PREFIX}/intent/delete", params={"name": "request_human"})).text()
    assert "It cannot be deleted" in confirm and "rule" in confirm
    response = await post(client, "/intent/delete", name="request_human")
    page = await response.text()
    assert response.status == 409 and "request_human cannot be deleted" in page
    content = await sessions.read(current.load)
    for use in usages(content, "request_human"):
        assert use in html.unescape(page)
    assert "request_human" in content.intents
    renamed = await post(client, "/intent/rename", name="request_human", new_name="ask_for_person")
    assert renamed.status == 409 and "request_human cannot be renamed" in await renamed.text()


async def test_an_unused_question_is_renamed_and_deleted(console, sessions) -> None:
    client, _, _ = console
    await sign_in(client)
    await post(client, "/intents", kind="question", name="gift_wrap", examples="a gift wrap\nwrap it", answer="Yes.")
    page = await (await post(client, "/intent/rename", name="faq/gift_wrap", new_name="wrapping")).text()
    assert "Renamed faq/gift_wrap to faq/wrapping" in page
    page = await (await post(client, "/intent/delete", name="faq/wrapping")).text()
    assert "Deleted faq/wrapping" in page
    content = await sessions.read(current.load)
    assert "faq/wrapping" not in content.intents and "utter_faq/wrapping" not in content.responses
    assert ("alice", "delete intent", "faq/wrapping") in await audit(sessions)


async def test_a_response_is_previewed_with_samples_then_saved(console, sessions) -> None:
    client, _, _ = console
    await sign_in(client)
    page = await (await client.get(f"{PREFIX}/response", params={"name": "utter_anything_else"})).text()
    assert "Talk to a person | /request_human" in page
    draft = {
        "name": "utter_anything_else",
        "count": "2",
        "text_0": "Anything else, {first_name}?",
        "buttons_0": "Talk to a person | /request_human\nNo thanks | /deny",
        "text_1": "",
    }
    page = await (await post(client, "/response", action="preview", **draft)).text()
    assert "Anything else, Maya?" in page and "nothing is saved yet" in page and "No thanks" in page
    assert (await sessions.read(current.load)).responses["utter_anything_else"].variations[0][
        "text"
    ] != "Anything else, {first_name}?"
    bad = await post(client, "/response", action="save", **{**draft, "buttons_0": "No payload here"})
    refused = html.unescape(await bad.text())
    assert bad.status == 400 and "Button line 1 needs a title" in refused
    assert ">Anything else, {first_name}?</textarea>" in refused and ">No payload here</textarea>" in refused
    page = await (await post(client, "/response", action="save", **draft)).text()
    assert "Saved utter_anything_else" in page
    assert (await sessions.read(current.load)).responses["utter_anything_else"].variations == [
        {
            "text": "Anything else, {first_name}?",
            "buttons": [
                {"title": "Talk to a person", "payload": "/request_human"},
                {"title": "No thanks", "payload": "/deny"},
            ],
        }
    ]
    assert ("alice", "edit response", "utter_anything_else") in await audit(sessions)


async def _versions(sessions, models: Path) -> tuple[int, int]:
    """Two trained versions, the older one live; their model files under `models` (the console's model store)."""
    models.mkdir(parents=True, exist_ok=True)
    for name in ("old", "new"):
        (models / f"{name}.tar.gz").write_bytes(name.encode())
    metrics_old = {
        "accuracy": 0.9,
        "macro_f1": 0.88,
        "held_out": 40,
        "intents": {"greet": {"accuracy": 1.0, "examples": 4}, "faq/delivery_time": {"accuracy": 0.75, "examples": 4}},
    }
    metrics_new = {
        "accuracy": 0.95,
        "macro_f1": 0.93,
        "held_out": 42,
        "intents": {"greet": {"accuracy": 1.0, "examples": 4}, "faq/delivery_time": {"accuracy": 0.5, "examples": 4}},
    }
    async with sessions.begin() as session:
        old = ModelVersion(
            file="old.tar.gz",
            fingerprint="old",
            status=ModelStatus.READY,
            stage="ready",
            created_by="seed",
            metrics=metrics_old,
        )
        new = ModelVersion(
            file="new.tar.gz",
            fingerprint="new",
            status=ModelStatus.READY,
            stage="ready",
            created_by="bob",
            note="more delivery examples",
            metrics=metrics_new,
        )
        session.add_all([old, new])
        await session.flush()
        await session.run_sync(versions.put_version_live, old.id, "seed")
        return old.id, new.id


async def test_training_page_compares_and_puts_versions_live_and_back(console, sessions, tmp_path: Path) -> None:
    client, _, _ = console
    old, new = await _versions(sessions, tmp_path / "models")
    await sign_in(client)
    page = await (await client.get(f"{PREFIX}/training")).text()
    assert f"Version {new} is trained" in page and "more delivery examples" in page
    assert "95.0 %" in page and "90.0 %" in page and "-25.0" in page
    intents = await (await client.get(f"{PREFIX}/intents")).text()
    assert re.search(r"faq/delivery_time</a></td>\s*<td[^>]*>\d+</td>\s*<td[^>]*>50 %", intents)
    page = await (
        await post(client, "/training/live", csrf=await csrf_of(client, "/training"), version=str(new))
    ).text()
    assert f"Version {new} is live" in page
    assert "Put back live" in page
    await post(client, "/training/live", csrf=await csrf_of(client, "/training"), version=str(old))
    assert (await sessions.read(versions.live_version)).id == old
    assert [a for a in await audit(sessions) if a[0] == "alice"] == [
        ("alice", "put model live", f"version {new}"),
        ("alice", "put model live", f"version {old}"),
    ]
    page = await (await post(client, "/training/live", csrf=await csrf_of(client, "/training"), version="999")).text()
    assert "Nothing changed" in page


async def test_a_failed_training_says_why_and_that_the_live_model_stays(console, sessions, tmp_path: Path) -> None:
    client, _, trainer = console
    old, _ = await _versions(sessions, tmp_path / "models")
    await sign_in(client)
    page = await (await post(client, "/training/start", csrf=await csrf_of(client, "/training"), note="try")).text()
    assert "started" in page
    await trainer.wait()
    page = await (await client.get(f"{PREFIX}/training")).text()
    assert "failed" in page and "An intent needs more examples" in page and "The live model is unchanged" in page
    assert (await sessions.read(versions.live_version)).id == old
    assert ("alice", "train") in [a[:2] for a in await audit(sessions)]


async def test_the_audit_page_shows_who_and_before_after(console, sessions) -> None:
    client, _, _ = console
    await sign_in(client)
    await post(client, "/intent/examples", name="faq/delivery_time", action="add", examples="shipping days?")
    page = await (await client.get(f"{PREFIX}/audit", params={"who": "alice"})).text()
    assert "edit examples" in page and "faq/delivery_time" in page and "shipping days?" in page
    assert "1 change," in page


async def test_the_app_server_mounts_the_console_beside_its_endpoints(sessions, tmp_path) -> None:
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path)})
    server = HealthServer(
        subapps={PREFIX: build_console(settings, sessions, Trainer(settings, sessions), behind_proxy=False)}
    )
    port = await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/health") as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{port}{PREFIX}/", allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"].startswith(f"{PREFIX}/login")
            async with http.get(f"http://127.0.0.1:{port}{PREFIX}/login") as response:
                assert response.status == 200 and "Sign in" in await response.text()
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "behind_proxy,forwarded,secure", [(True, "https", True), (True, "http", False), (False, "https", False)]
)
async def test_cookies_are_secure_behind_a_tls_proxy(sessions, tmp_path, behind_proxy, forwarded, secure) -> None:
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path)})
    root = web.Application()
    root.add_subapp(PREFIX, build_console(settings, sessions, Trainer(settings, sessions), behind_proxy=behind_proxy))
    async with TestClient(TestServer(root)) as client:
        response = await client.get(f"{PREFIX}/login", headers={"X-Forwarded-Proto": forwarded})
        assert ("; Secure" in response.headers["Set-Cookie"]) is secure
