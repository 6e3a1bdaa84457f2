"""The app's NLG endpoint (responses from the database, the seed as fallback) and its model server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.content import current, edits, model_store, modelserver, nlg, seeding, versions
from bot.content.files import Response, read_tree
from bot.rasa_runtime import ROOT
from bot.web import HealthServer

SEED = read_tree(ROOT).responses


def test_placeholders_are_filled_from_slots_and_arguments() -> None:
    response = Response(
        "utter_x",
        [
            {
                "text": "Hi {first_name}, ticket {ticket_id}",
                "buttons": [{"title": "About {ticket_id}", "payload": "/check_ticket_status"}],
            }
        ],
    )
    message = nlg.render(response, {"first_name": "Maya", "ticket_id": "T000007"}, {})
    assert message == {
        "text": "Hi Maya, ticket T000007",
        "buttons": [{"title": "About T000007", "payload": "/check_ticket_status"}],
    }


def test_an_unfilled_placeholder_is_a_render_error() -> None:
    with pytest.raises(nlg.RenderError, match="first_name"):
        nlg.render(Response("utter_x", [{"text": "Hi {first_name}"}]), {"first_name": None}, {})


def test_a_variation_whose_condition_holds_is_preferred() -> None:
    response = Response(
        "utter_x", [{"text": "plain"}, {"text": "vip", "condition": [{"type": "slot", "name": "vip", "value": True}]}]
    )
    assert nlg.render(response, {}, {"vip": True})["text"] == "vip"
    assert nlg.render(response, {}, {"vip": False})["text"] == "plain"


async def _catalog(sessions, monkeypatch) -> nlg.ResponseCatalog:
    await sessions.run(seeding.ensure_seeded, read_tree(ROOT))
    return nlg.ResponseCatalog(sessions, SEED)


async def _post(catalog: nlg.ResponseCatalog, body: dict) -> tuple[int, dict]:
    server = HealthServer(posts={"/nlg": catalog.handle})
    async with TestClient(TestServer(server_app(server))) as client:
        response = await client.post("/nlg", json=body)
        return response.status, await response.json()


def server_app(server: HealthServer):  # the same routes HealthServer.start serves
    from aiohttp import web

    app = web.Application()
    for path, handler in server.posts.items():
        app.router.add_post(path, handler)
    for path, handler in server.gets.items():
        app.router.add_get(path, handler)
    return app


def rasa_request(name: str, **slots) -> dict:
    return {
        "response": name,
        "arguments": {},
        "tracker": {"sender_id": "tg-1", "slots": slots},
        "channel": {"name": "rest"},
    }


async def test_an_edit_is_said_at_the_next_message(sessions, monkeypatch) -> None:
    catalog = await _catalog(sessions, monkeypatch)
    status, before = await _post(catalog, rasa_request("utter_youre_welcome"))
    assert status == 200 and before["text"] in [v["text"] for v in SEED["utter_youre_welcome"].variations]
    await sessions.run(edits.set_response, "utter_youre_welcome", [{"text": "My pleasure, {first_name}!"}], "ann")
    assert (await _post(catalog, rasa_request("utter_youre_welcome", first_name="Maya")))[1] == {
        "text": "My pleasure, Maya!"
    }


async def test_an_edit_from_another_worker_is_said_within_the_version_check(sessions, monkeypatch) -> None:
    catalog = await _catalog(sessions, monkeypatch)
    # The interval is set, not waited for, so a slow machine cannot turn "within" into "after".
    monkeypatch.setattr(nlg, "VERSION_CHECK_SECONDS", 3600.0)
    monkeypatch.setattr(current, "local_changes", lambda: 0)  # the edit below is saved as if by another process
    await _post(catalog, rasa_request("utter_youre_welcome"))  # read, and cached
    await sessions.run(edits.set_response, "utter_youre_welcome", [{"text": "Edited elsewhere!"}], "ann")
    _, cached = await _post(catalog, rasa_request("utter_youre_welcome"))
    assert cached["text"] != "Edited elsewhere!"  # within the check interval: the catalogue did not ask the database
    monkeypatch.setattr(nlg, "VERSION_CHECK_SECONDS", 0.0)  # the interval has passed
    assert (await _post(catalog, rasa_request("utter_youre_welcome")))[1] == {"text": "Edited elsewhere!"}


async def test_a_broken_or_missing_response_falls_back_to_the_seed_and_is_logged(sessions, monkeypatch, caplog) -> None:
    catalog = await _catalog(sessions, monkeypatch)
    await sessions.run(edits.set_response, "utter_goodbye", [{"text": "Bye {nonexistent_slot}"}], "ann")
    with caplog.at_level(logging.WARNING, logger="bot.content.nlg"):
        _, message = await _post(catalog, rasa_request("utter_goodbye"))
    assert message["text"] in [v["text"] for v in SEED["utter_goodbye"].variations]
    assert "fell back to the seed" in caplog.text and "nonexistent_slot" in caplog.text


async def test_what_cannot_be_said_at_all_is_a_polite_line_never_empty(sessions, monkeypatch) -> None:
    catalog = await _catalog(sessions, monkeypatch)
    _, message = await _post(catalog, rasa_request("utter_never_written"))
    assert message == {"text": nlg.LAST_RESORT}
    _, message = await _post(catalog, rasa_request("utter_greet_name"))  # no first_name: neither text can be said
    assert message == {"text": nlg.LAST_RESORT}


@pytest.mark.parametrize(
    "body",
    [
        {"nothing": 1},
        [],
        "utter_greet",
        None,
        {"response": 7},
        {"response": "utter_greet", "tracker": []},
        {"response": "utter_greet", "tracker": {"slots": "x"}},
        {"response": "utter_greet", "arguments": [1]},
        {"response": "utter_greet", "channel": "rest"},
    ],
)
async def test_a_request_that_is_not_rasas_is_refused(sessions, monkeypatch, body) -> None:
    catalog = await _catalog(sessions, monkeypatch)
    status, answer = await _post(catalog, body)
    assert status == 400 and "expected Rasa's NLG request" in answer["error"]


async def test_a_body_that_is_not_json_is_refused(sessions, monkeypatch) -> None:
    server = HealthServer(posts={"/nlg": (await _catalog(sessions, monkeypatch)).handle})
    async with TestClient(TestServer(server_app(server))) as client:
        response = await client.post("/nlg", data=b"\xff{not json")
        assert response.status == 400


async def test_the_model_server_speaks_rasas_protocol(sessions, tmp_path: Path) -> None:
    server = HealthServer(gets={modelserver.PATH: modelserver.ModelServer(sessions, tmp_path).handle})
    store = model_store.store_for(sessions, tmp_path)
    async with TestClient(TestServer(server_app(server))) as client:
        assert (await client.get(modelserver.PATH)).status == 404  # nothing live yet
        for name in ("aaaa", "bbbb"):
            (tmp_path / f"{name}.tar.gz").write_bytes(name.encode() * 100)
            await store.put(tmp_path / f"{name}.tar.gz", name)
        first = await sessions.run(versions.register, tmp_path / "aaaa.tar.gz", "aaaa", "ann")
        second = await sessions.run(versions.register, tmp_path / "bbbb.tar.gz", "bbbb", "ann")
        await sessions.run(versions.put_version_live, second.id, "ann")
        response = await client.get(modelserver.PATH)
        assert response.status == 200 and response.headers["ETag"] == "bbbb" and await response.read() == b"bbbb" * 100
        assert (await client.get(modelserver.PATH, headers={"If-None-Match": "bbbb"})).status == 304
        # Back to the earlier version: a changed ETag, so Rasa pulls it.
        await sessions.run(versions.put_version_live, first.id, "ann")
        response = await client.get(modelserver.PATH, headers={"If-None-Match": "bbbb"})
        assert response.status == 200 and response.headers["ETag"] == "aaaa"


async def test_with_no_live_model_the_current_contents_model_goes_live(sessions) -> None:
    assert await sessions.run(versions.ensure_live, "cccc", False) is None
    live = await sessions.run(versions.ensure_live, "cccc", True)
    assert live is not None and live.fingerprint == "cccc" and live.file == "cccc.tar.gz"
    assert (await sessions.read(versions.live_version)).id == live.id


async def test_a_model_whose_evaluation_breaks_stays_ready(sessions, tmp_path: Path, monkeypatch) -> None:
    from bot.config import load_settings
    from bot.content import deploy
    from bot.storage.models import ModelStatus, ModelVersion

    class BrokenEvaluation(deploy.Trainer):
        async def _rasa(self, version_id: int, arguments: list[str]) -> None:  # "trains": the model file appears
            out = Path(arguments[arguments.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{arguments[arguments.index('--fixed-model-name') + 1]}.tar.gz").write_bytes(b"model")

        async def _evaluate(self, version_id, content, work):
            raise RuntimeError("the report could not be read")

    monkeypatch.setattr(deploy, "build_spacy_pipeline", lambda settings: None)
    await sessions.run(seeding.ensure_seeded, read_tree(ROOT))
    trainer = BrokenEvaluation(load_settings({"FRONTLINE_VAR": str(tmp_path)}), sessions)
    version_id = await trainer.start("ann")
    await trainer.wait()
    async with sessions() as session:
        version = await session.get(ModelVersion, version_id)
    assert (version.status, version.stage, version.error) == (ModelStatus.READY, "ready", None)
    assert "evaluation could not run" in version.metrics["error"]
    await sessions.run(versions.put_version_live, version_id, "ann")  # it can be put live like any trained model
