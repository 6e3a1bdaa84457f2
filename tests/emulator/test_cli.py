"""`python -m bot.emulator` as the sandbox and benchmarks start it."""

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest
from telegram import Bot

from bot.emulator.client import EmulatorClient, wait_until_healthy
from tests.emulator.conftest import TOKEN

pytestmark = pytest.mark.asyncio

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_runs_as_a_module_and_stops_on_signal(stop_signal: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        cwd=REPOSITORY,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), 10)).decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+) ", line)
        assert match, line
        base_url = match.group(1)
        await wait_until_healthy(base_url)

        async with EmulatorClient(base_url) as client, Bot(TOKEN, base_url=f"{base_url}/bot") as bot:
            user = await client.add_user("Ann")
            await bot.send_message(user["id"], "hello from the CLI emulator")
            [entry] = await client.wait_for_text(user["id"], timeout=2)
        assert entry["text"] == "hello from the CLI emulator"
    finally:
        if process.returncode is None:
            process.send_signal(stop_signal)
    assert await asyncio.wait_for(process.wait(), 10) == 0
