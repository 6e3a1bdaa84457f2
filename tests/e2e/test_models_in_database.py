"""On PostgreSQL the model lives in the database: Rasa pulls from an app that has no model file on its disk."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.emulator.client import EmulatorClient
from bot.rasa_runtime import current_model
from devstack.stack import ROOT, VENV_BIN, Stack, get_json
from tests.e2e.helpers import variations
from tests.unit.conftest import _drop_postgres_database, _fresh_postgres_database

CUSTOMER = 770_001


@pytest.fixture(scope="module")
def database_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path, str]]:
    """The app started with the trained model in a folder of its own, which it stores in PostgreSQL; the folder is
    emptied before Rasa starts. Yields the stack, that folder and the model's SHA-256."""
    model = current_model(load_settings())
    if model is None:
        subprocess.run([str(VENV_BIN / "frontline"), "train"], cwd=ROOT, check=True)
        model = current_model(load_settings())
    assert model is not None
    database = asyncio.run(_fresh_postgres_database())
    stack = Stack(tmp_path_factory.mktemp("models-db"), database=database)
    shelf = stack.workdir / "models"
    shelf.mkdir()
    shutil.copyfile(model, shelf / model.name)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    try:
        stack.start_emulator()
        stack.start_actions()
        stack.start_app(FRONTLINE_MODELS=str(shelf))  # stores the content's model in the database, puts it live
        (shelf / model.name).unlink()  # no disk has it now: only the database
        stack.start_rasa()
        yield stack, shelf, digest
    except (subprocess.SubprocessError, TimeoutError, RuntimeError):
        for name in ("emulator", "actions", "rasa", "app"):
            print(f"--- {name} log ---\n{stack.log(name)}")
        raise
    finally:
        stack.stop()
        asyncio.run(_drop_postgres_database(database))


def _live_model(stack: Stack) -> tuple[str, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.app_port}/models/live", headers={"Authorization": f"Bearer {stack.app_token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["ETag"], response.read()


async def test_rasa_pulls_the_model_from_the_database_and_answers(database_only: tuple[Stack, Path, str]) -> None:
    stack, shelf, digest = database_only
    assert list(shelf.iterdir()) == []
    etag, body = await asyncio.to_thread(_live_model, stack)
    assert hashlib.sha256(body).hexdigest() == digest
    status = await asyncio.to_thread(get_json, stack.rasa_api("/status"))
    assert status["model_file"] and etag in status["model_file"]
    async with EmulatorClient(stack.emulator_url) as emulator:
        await emulator.add_user("Noa", user_id=CUSTOMER)
        after = (await emulator.sent(CUSTOMER)).last
        await emulator.send_text(CUSTOMER, "how long does delivery take")
        [reply] = (await emulator.wait_for_text(CUSTOMER, after, timeout=60))[-1:]
    assert reply["text"] in variations("utter_faq/delivery_time")
