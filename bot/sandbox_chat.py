"""`frontline chat`: talk to the sandbox bot as a customer, from a terminal."""

from __future__ import annotations

import asyncio
import sys
import zlib
from typing import Any

import aiohttp

from bot.config import Settings
from bot.emulator.client import EmulatorClient, EmulatorClientError

POLL_SECONDS = 25.0


def _user_id(name: str) -> int:
    # The same name is the same customer across chats, so the bot can recognise them.
    return 100_000 + zlib.crc32(name.lower().encode()) % 900_000


def _show(message: dict[str, Any], buttons: list[dict[str, str]]) -> None:
    text = message.get("text") or message.get("caption") or f"[{message.get('method', 'message')}]"
    print(f"\nbot> {text}")
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    buttons.clear()
    for row in rows:
        for button in row:
            buttons.append(
                {"title": button["text"], "data": button.get("callback_data", ""), "message_id": message["message_id"]}
            )
            print(f"     [{len(buttons)}] {button['text']}")
    print("you> ", end="", flush=True)


async def _print_replies(emulator: EmulatorClient, chat_id: int, buttons: list[dict[str, str]]) -> None:
    after = (await emulator.sent(chat_id)).last
    while True:
        batch = await emulator.sent(chat_id, after, wait=POLL_SECONDS)
        for message in batch.messages:
            if message.get("method") == "sendMessage":  # edits only remove a pressed keyboard
                _show(message, buttons)
        after = batch.last


async def _session(base_url: str, name: str) -> None:
    async with EmulatorClient(base_url) as emulator:
        try:
            await emulator.health()
        except aiohttp.ClientError:
            sys.exit(f"The sandbox is not running at {base_url}. Start it with `make run` in another terminal.")
        user_id = _user_id(name)
        try:
            await emulator.add_user(name, user_id=user_id, username=name.lower())
        except EmulatorClientError as exc:
            if exc.status != 409:
                raise
        print(f"Chatting with the sandbox bot as {name}. Type a message; a number presses a button; Ctrl-D quits.")
        buttons: list[dict[str, str]] = []
        printer = asyncio.create_task(_print_replies(emulator, user_id, buttons))
        await emulator.send_text(user_id, "/start")
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    break
                line = line.strip()
                if line.isdigit() and 0 < int(line) <= len(buttons):
                    chosen = buttons[int(line) - 1]
                    await emulator.press(user_id, int(chosen["message_id"]), chosen["data"])
                elif line:
                    await emulator.send_text(user_id, line)
        finally:
            printer.cancel()


def chat(settings: Settings, *, name: str) -> None:
    """Open a terminal chat with the sandbox bot as the customer `name`."""
    try:
        asyncio.run(_session(f"http://{settings.emulator_host}:{settings.emulator_port}", name))
    except KeyboardInterrupt:
        print()
