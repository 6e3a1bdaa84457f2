"""Request bodies on the app's web server: 1 MiB at most, except Rasa's NLG requests, which carry whole trackers."""

from __future__ import annotations

import re

import aiohttp

from bot.admin.console import build_console
from bot.admin.pages import PREFIX
from bot.config import load_settings
from bot.content import nlg
from bot.content.deploy import Trainer
from bot.content.files import read_tree
from bot.rasa_runtime import ROOT
from bot.web import HealthServer

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def test_bodies_over_1_mib_are_refused_except_rasas_nlg_requests(sessions, tmp_path) -> None:
    """A 2 MiB sign-in is refused before it is read (413); an NLG request of a long conversation (2 MiB) is served,
    one over 16 MiB is not."""
    settings = load_settings({"FRONTLINE_VAR": str(tmp_path)})
    catalog = nlg.ResponseCatalog(sessions, read_tree(ROOT).responses)
    server = HealthServer(
        posts={"/nlg": catalog.handle},
        subapps={PREFIX: build_console(settings, sessions, Trainer(settings, sessions), behind_proxy=False)},
    )
    port = await server.start("127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"

    def nlg_request(size: int) -> bytes:
        padding = "x" * size
        return (
            b'{"response": "utter_greet", "arguments": {}, "channel": {"name": "rest"}, '
            b'"tracker": {"slots": {}, "events": [{"event": "user", "text": "' + padding.encode() + b'"}]}}'
        )

    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{base}{PREFIX}/login") as response:
                token = CSRF.search(await response.text()).group(1)
            form = {"csrf": token, "username": "alice", "password": "p" * (2 * 1024 * 1024), "next": ""}
            async with http.post(f"{base}{PREFIX}/login", data=form) as response:
                assert response.status == 413
            form["password"] = "a wrong password"
            async with http.post(f"{base}{PREFIX}/login", data=form) as response:
                assert response.status == 401, "an ordinary sign-in is read as before"
            headers = {"Content-Type": "application/json"}
            async with http.post(f"{base}/nlg", data=nlg_request(2 * 1024 * 1024), headers=headers) as response:
                assert response.status == 200 and (await response.json())["text"]
            async with http.post(f"{base}/nlg", data=nlg_request(17 * 1024 * 1024), headers=headers) as response:
                assert response.status == 413
    finally:
        await server.stop()
