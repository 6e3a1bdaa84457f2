"""What the app tells Telegram when it starts: its commands, and (polling) that no webhook is left set."""

from __future__ import annotations

from pathlib import Path

from tests.unit.chat_harness import running_harness


async def test_a_polling_app_clears_any_webhook_and_sets_its_commands(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as harness:
        assert await harness.emulator.calls("deleteWebhook"), "a webhook left set would answer every poll with 409"
        set_commands = await harness.emulator.calls("setMyCommands")
        assert set_commands, "customers would see no command menu"
        assert (await harness.say("hello"))[-1]["text"] == "echo: hello"


async def test_a_webhook_app_keeps_its_webhook_and_sets_its_commands(tmp_path: Path) -> None:
    async with running_harness(tmp_path, webhook=True) as harness:
        assert (await harness.say("hello"))[-1]["text"] == "echo: hello"
        assert await harness.emulator.calls("setWebhook")
        assert not await harness.emulator.calls("deleteWebhook")
        commands = (await harness.emulator.calls("setMyCommands"))[0]["params"]["commands"]
        assert "forget" in str(commands) and "tickets" in str(commands)
