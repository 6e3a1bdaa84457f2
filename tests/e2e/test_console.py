"""The admin console in a real browser against the real stack: a support lead adds a question, trains, puts
it live, the bot answers it; an edited answer is said at once; the earlier model goes back live."""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
from typing import Any

import aiohttp

from bot.content import versions
from bot.emulator.client import EmulatorClient
from bot.storage.models import ModelVersion
from devstack.stack import ROOT, VENV_BIN, Stack
from tests.e2e.helpers import last_text, say

TRAINING_BOUND = 900  # seconds; a training on a busy 2-core machine, with its evaluation
PULL_BOUND = 120  # seconds for Rasa to pull a model put live
ANSWER_BOUND = 30  # seconds for an edited response to be said


async def create_admin(env: dict[str, str], username: str, password: str) -> None:
    """`frontline admin add` against the database of `env` (a stack's), the password piped in."""
    result = await asyncio.to_thread(
        subprocess.run,
        [str(VENV_BIN / "frontline"), "admin", "add", username, "--password-stdin"],
        input=password + "\n",
        text=True,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


async def _rasa_model(stack: Stack) -> tuple[Any, ...]:
    async with aiohttp.ClientSession() as http, http.get(stack.rasa_api("/status")) as response:
        status = await response.json()
    return status.get("fingerprint"), status.get("model_file"), status.get("model_id")


async def _until_rasa_changes(stack: Stack, before: tuple[Any, ...]) -> None:
    async with asyncio.timeout(PULL_BOUND):
        while await _rasa_model(stack) == before:
            await asyncio.sleep(0.5)


async def _answer_becomes(emulator: EmulatorClient, user_id: int, question: str, expected: str) -> str:
    """Ask until the bot answers `expected` (the app re-reads edited responses at most once a second)."""
    async with asyncio.timeout(ANSWER_BOUND):
        while (answer := last_text(await say(emulator, user_id, question))) != expected:
            await asyncio.sleep(0.2)
    return answer


async def _live_id(db) -> int:
    async with db() as session:
        live = await session.run_sync(versions.live_version)
    assert live is not None
    return live.id


async def test_a_question_added_trained_put_live_answered_edited_and_rolled_back(
    browser, stack: Stack, emulator: EmulatorClient, customer: dict, db
) -> None:
    console = f"http://127.0.0.1:{stack.app_port}/admin"
    suffix = secrets.token_hex(3)
    username, password = f"lead_{suffix}", f"console-pass-{suffix}"
    topic = f"faq/gift_wrap_{suffix}"
    answer = f"Yes, we gift wrap! Choose gift wrapping at checkout ({suffix})."
    edited = f"Gift wrapping is free this month ({suffix})."
    question = "do you offer gift wrapping"
    await create_admin(stack.env(), username, password)
    original = await _live_id(db)
    trained: ModelVersion | None = None
    context = await browser.new_context()
    page = await context.new_page()
    try:
        # The anonymous are sent to the login; a forged post is refused.
        await page.goto(f"{console}/intents")
        assert page.url.startswith(f"{console}/login")
        async with aiohttp.ClientSession() as http, http.post(f"{console}/intents", data={"name": "x"}) as response:
            assert response.status == 401

        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", "not the password")
        await page.click("button:has-text('Sign in')")
        assert "Wrong username or password" in await page.inner_text("main")
        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", password)
        await page.click("button:has-text('Sign in')")
        await page.wait_for_url(f"{console}/intents")

        forged = await context.request.post(
            f"{console}/intents",
            form={"csrf": "forged", "kind": "question", "name": f"forged_{suffix}", "examples": "a\nb", "answer": "no"},
        )
        assert forged.status == 403

        # A new question with its examples and answer.
        await page.fill("input[name=name]", topic.removeprefix("faq/"))
        examples = (
            question,
            "can you gift wrap my order",
            "is gift wrapping available",
            "i want my present gift wrapped",
            "could you wrap it as a gift",
            "do you do gift wrap",
            "gift wrapping please",
        )
        await page.fill("textarea[name=examples]", "\n".join(examples))
        await page.fill("textarea[name=answer]", answer)
        await page.click("button:has-text('Add')")
        await page.wait_for_url(re.compile(r".*/admin/intent\?name="))
        assert f"Added {topic}" in await page.inner_text("main")

        # Train, watch it, put it live.
        await page.click("nav >> text=Train & deploy")
        await page.fill("input[name=note]", f"gift wrap question {suffix}")
        await page.click("button:has-text('Train')")
        assert "started" in await page.inner_text("main")
        heading = page.locator("section.candidate h2")
        await heading.wait_for(timeout=TRAINING_BOUND * 1000)  # the page refreshes itself while it trains
        assert "is trained" in await heading.inner_text(), await page.inner_text("main")
        # Its evaluation, next to the live model's, follows (the page refreshes itself until then).
        comparison = page.locator("table.compare")
        await comparison.wait_for(timeout=TRAINING_BOUND * 1000)
        figures = await comparison.inner_text()
        assert "All held-out examples" in figures and topic in figures
        async with db() as session:
            trained = (await session.run_sync(versions.history, limit=1))[0]
        before = await _rasa_model(stack)
        await page.click(f"button:has-text('Put version {trained.id} live')")
        assert f"Version {trained.id} is live" in await page.inner_text("main")
        await _until_rasa_changes(stack, before)

        messages = await say(emulator, customer["id"], question, expect=[answer], timeout=30)
        assert messages[-1]["text"].strip() == answer

        # An edited answer is said from the next message on, without training.
        await page.goto(f"{console}/response?name=utter_{topic}")
        await page.fill("textarea[name=text_0]", edited)
        await page.click("button[value=preview]")
        assert edited in await page.inner_text("section.phone")
        await page.click("button[value=save]")
        assert f"Saved utter_{topic}" in await page.inner_text("main")
        assert await _answer_becomes(emulator, customer["id"], question, edited) == edited

        # Roll back: the earlier version goes back live, and Rasa follows.
        await page.goto(f"{console}/training")
        row = page.locator("table.versions tr", has=page.locator(f"td:text-is('{original}')"))
        before = await _rasa_model(stack)
        await row.locator("button:has-text('Put back live')").click()
        assert f"Version {original} is live" in await page.inner_text("main")
        await _until_rasa_changes(stack, before)
        assert await _live_id(db) == original

        # The audit log shows who did it.
        await page.goto(f"{console}/audit?who={username}")
        audit = await page.inner_text("main")
        assert "add intent" in audit and "put model live" in audit and "edit response" in audit

        # Delete the question again (after a confirmation), so the shared stack's content is as it was.
        await page.goto(f"{console}/intent/delete?name={topic}")
        await page.click(f"button:has-text('Yes, delete {topic}')")
        assert f"Deleted {topic}" in await page.inner_text("main")

        await page.click("button:has-text('Sign out')")
        await page.goto(f"{console}/intents")
        assert page.url.startswith(f"{console}/login")
    finally:
        await context.close()
        await _restore(stack, db, original, trained)


async def _restore(stack: Stack, db, original: int, trained: ModelVersion | None) -> None:
    """Whatever happened, the stack's original model is live again and this test's model file is gone."""
    if await _live_id(db) != original:
        before = await _rasa_model(stack)
        async with db.begin() as session:
            await session.run_sync(versions.put_version_live, original, "e2e cleanup")
        await _until_rasa_changes(stack, before)
    if trained is not None and trained.file:
        (ROOT / "var" / "models" / trained.file).unlink(missing_ok=True)
