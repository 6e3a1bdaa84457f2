"""Log lines carry the conversation id of the update being handled; JSON lines parse."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from telegram import Update

from bot import logs
from bot.config import ConfigError
from bot.telegram.dispatch import ChatDispatcher

log = logging.getLogger("frontline.test.logs")


def _update(update_id: int, chat_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 1_700_000_000,
                "text": "hello",
                "chat": {"id": chat_id, "type": "private", "first_name": "Maya"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "Maya"},
            },
        },
        None,
    )


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """Records of this test's logger, as `json` lines, in a buffer."""
    buffer = io.StringIO()
    handler = logs.make_handler("json", buffer)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield buffer, handler
    finally:
        log.removeHandler(handler)


def _lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


async def test_a_line_logged_while_handling_an_update_carries_its_conversation_id(captured) -> None:
    buffer, _ = captured

    async def handle(update: Update) -> None:
        log.info("handling %s", update.update_id)

        async def later() -> None:  # a task started by the handler inherits the id
            log.warning("background for %s", update.update_id)

        await asyncio.create_task(later())
        if update.update_id == 3:
            raise RuntimeError("boom")

    dispatcher = ChatDispatcher(handle)
    for update_id, chat_id in ((1, 4242), (2, 5151), (3, 4242)):
        dispatcher.submit(_update(update_id, chat_id))
    await dispatcher.join()
    log.info("outside any update")

    lines = _lines(buffer)
    by_message = {line["message"]: line for line in lines}
    assert by_message["handling 1"]["conversation_id"] == "tg-4242"
    assert by_message["background for 1"]["conversation_id"] == "tg-4242"
    assert by_message["handling 2"]["conversation_id"] == "tg-5151"
    assert by_message["background for 2"]["conversation_id"] == "tg-5151"
    assert by_message["handling 3"]["conversation_id"] == "tg-4242"
    assert by_message["outside any update"]["conversation_id"] is None
    line = by_message["handling 1"]
    assert (line["level"], line["logger"]) == ("INFO", "frontline.test.logs")
    assert datetime.fromisoformat(line["time"]).tzinfo is not None


async def test_a_failing_update_is_logged_with_its_id_and_the_exception(captured) -> None:
    buffer, handler = captured
    logging.getLogger("bot.telegram.dispatch").addHandler(handler)

    async def handle(update: Update) -> None:
        raise RuntimeError("boom")

    try:
        dispatcher = ChatDispatcher(handle)
        dispatcher.submit(_update(7, 4242))
        await dispatcher.join()
    finally:
        logging.getLogger("bot.telegram.dispatch").removeHandler(handler)
    [line] = [line for line in _lines(buffer) if line["logger"] == "bot.telegram.dispatch"]
    assert line["conversation_id"] == "tg-4242" and line["level"] == "ERROR"
    assert "RuntimeError: boom" in line["exception"]


def test_text_lines_show_the_id_in_brackets_only_inside_an_update() -> None:
    buffer = io.StringIO()
    handler = logs.make_handler("text", buffer)
    record = logging.LogRecord("bot.chat", logging.INFO, __file__, 1, "hello %s", ("Maya",), None)
    handler.handle(record)
    token = logs.conversation_id.set("tg-42")
    try:
        handler.handle(logging.LogRecord("bot.chat", logging.INFO, __file__, 1, "inside", (), None))
    finally:
        logs.conversation_id.reset(token)
    first, second = buffer.getvalue().splitlines()
    assert first.endswith(" INFO bot.chat: hello Maya")
    assert second.endswith(" INFO bot.chat [tg-42]: inside")


def test_log_format_is_text_or_json() -> None:
    assert logs.log_format({}) == "text"
    assert logs.log_format({"LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be text or json"):
        logs.log_format({"LOG_FORMAT": "yaml"})
