"""What the help-center end-to-end tests share: waiting until the action server has indexed the shop's articles,
and reading which article (if any) a reply answered with."""

from __future__ import annotations

import asyncio
import re
from functools import cache

from bot.content.help_center import read_folder
from devstack.stack import ROOT, Stack, get_json

SOURCE = re.compile(r"From our help center: “(?P<title>[^”]+)”")
QUESTION = "Did that answer your question?"
READY = re.compile(r"ready: (\d+) articles")


@cache
def shop_titles() -> dict[str, str]:
    """The shop's articles' slugs by title."""
    return {item.title: item.slug for item in read_folder(ROOT / "help_center").articles}


async def wait_until_indexed(stack: Stack, timeout: float = 600) -> str:
    """Wait until the action server's index holds every article of the shop's help center (the first start encodes
    them all); its /ready status."""
    wanted = f"ready: {len(shop_titles())} articles"
    status = ""
    for _ in range(int(timeout)):
        body = await asyncio.to_thread(
            get_json, f"http://127.0.0.1:{stack.actions_port}/ready", 10, stack.actions_headers
        )
        status = str(body.get("help_center"))
        if status == wanted:
            return status
        await asyncio.sleep(1)
    raise TimeoutError(f"the help center was not indexed in {timeout} s: {status}")


def answered_with(text: str) -> str | None:
    """The slug of the article a reply answered with, or None when it is no help-center answer."""
    found = SOURCE.search(text or "")
    return shop_titles().get(found.group("title")) if found and QUESTION in text else None
