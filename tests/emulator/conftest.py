"""Fixtures: an in-process emulator on a free port, its control client and a PTB bot."""

from collections.abc import AsyncIterator

import pytest_asyncio
from telegram import Bot

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer

TOKEN = "123456789:AAEmulatorTestTokenAbcdefghijklmnopq"


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    """A running emulator."""
    server = EmulatorServer()
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def client(emulator: EmulatorServer) -> AsyncIterator[EmulatorClient]:
    """The control client of the running emulator."""
    async with EmulatorClient(emulator.base_url) as control:
        yield control


@pytest_asyncio.fixture
async def bot(emulator: EmulatorServer) -> AsyncIterator[Bot]:
    """A real PTB bot talking to the emulator."""
    async with Bot(TOKEN, base_url=emulator.bot_api_url, base_file_url=emulator.file_url) as ptb:
        yield ptb
