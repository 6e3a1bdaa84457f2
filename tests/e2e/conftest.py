"""One running stack (emulator, actions, Rasa, app) shared by the end-to-end tests of a run."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.emulator.client import EmulatorClient
from bot.storage.db import create_engine, create_sessionmaker
from devstack.stack import Stack, running_stack
from tests.conftest import skip_or_fail
from tests.e2e import pgserver
from tests.e2e.pgserver import PostgresServer

_user_ids = itertools.count(700_001)
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (`make browser`); Playwright never downloads its own
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the real processes once; train first if no model matches the content."""
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
async def emulator(stack: Stack) -> AsyncIterator[EmulatorClient]:
    """A control-API client of the stack's emulator."""
    async with EmulatorClient(stack.emulator_url) as client:
        yield client


@pytest.fixture
async def customer(emulator: EmulatorClient) -> dict:
    """A new customer with a private chat, unique to the test."""
    return await emulator.add_user(
        "Maya", user_id=next(_user_ids), last_name="Lind", username="maya_l", language_code="en"
    )


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the app's database, to check what it stored."""
    engine = create_engine(stack.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium driven by Playwright (skips, or fails in CI, where either is missing)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        skip_or_fail("Playwright is not installed: pip install -r requirements/app.txt")
    if not CHROMIUM.exists():
        skip_or_fail(f"Chromium is not installed at {CHROMIUM}: `make browser` installs Debian's package")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the module's own (initdb'd in a temporary folder, on a spare loopback port), never the
    machine's: its tests may stop and restart it. Removed after the module."""
    try:
        pgserver.find_tools()
    except pgserver.PostgresMissing as exc:
        skip_or_fail(f"cannot run a throwaway PostgreSQL: {exc}")
    with pgserver.throwaway_postgres() as server:
        yield server
