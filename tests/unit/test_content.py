"""Content in the database: the files round trip, admins' edits, refused deletes, seed upgrades."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.config import load_settings
from bot.content import commands, current, edits, seeding
from bot.content.files import ContentError, read_files, read_tree, write_files, write_tree
from bot.rasa_runtime import ROOT
from bot.storage.models import AuditEntry


def repository_files() -> dict[str, str]:
    files = {"domain.yml": (ROOT / "domain.yml").read_text()}
    files.update({f"nlu/{p.name}": p.read_text() for p in sorted((ROOT / "nlu").glob("*.yml"))})
    return files


def test_the_repository_files_are_written_back_byte_for_byte() -> None:
    files = repository_files()
    assert write_files(read_files(files)) == files


def test_comments_and_verbatim_parts_survive_and_responses_are_canonical() -> None:
    files = {
        "domain.yml": 'version: "3.1"\n\n# head\nintents:\n  # greets\n  - greet\n  - faq\n\nslots: {}\n\n'
        'responses:\n  # hello\n  utter_greet:\n    - text: "Hi {first_name}!"\n      buttons:\n'
        '        - title: "Refund"\n          payload: \'/inform{"r":"x"}\'\n\n  utter_faq/a:\n'
        '    - text: "It\'s \\"A\\"."\n',
        "nlu/x.yml": 'version: "3.1"\n\nnlu:\n  # about a\n  - intent: faq/a\n    examples: |\n      - what is a\n'
        "      - [A12345](order_number) a?\n\nrules:\n  - rule: a\n    steps:\n      - intent: greet\n",
    }
    content = read_files(files)
    assert write_files(content) == files
    assert content.intents["greet"].domain_comment == "  # greets\n"
    assert content.intents["faq/a"].comment == "  # about a\n"
    assert content.intents["faq/a"].examples == ["what is a", "[A12345](order_number) a?"]
    assert content.responses["utter_greet"].variations[0]["buttons"][0]["payload"] == '/inform{"r":"x"}'


@pytest.mark.parametrize(
    "broken, reason",
    [
        ({"nlu/x.yml": "nlu: [unclosed"}, "not valid YAML"),
        ({"nlu/x.yml": 'nlu:\n  - intent: a\n    examples: "- one"\n'}, "could not read"),
        ({"nlu/x.yml": "nlu:\n  - intent: a\n    examples: |\n      - one\n        two\n"}, "one line"),
    ],
)
def test_files_that_cannot_be_edited_safely_are_refused_with_the_reason(broken: dict, reason: str) -> None:
    with pytest.raises(ContentError, match=reason):
        read_files({"domain.yml": 'version: "3.1"\nintents:\n  - a\n', **broken})


async def test_seeded_content_exports_to_the_same_files(sessions, tmp_path: Path) -> None:
    assert await sessions.run(seeding.ensure_seeded, read_tree(ROOT)) == "seeded"
    assert await sessions.run(seeding.ensure_seeded, read_tree(ROOT)) == "current"
    write_tree(await sessions.read(current.load), tmp_path)
    exported = {"domain.yml": (tmp_path / "domain.yml").read_text()}
    exported.update({f"nlu/{p.name}": p.read_text() for p in sorted((tmp_path / "nlu").glob("*.yml"))})
    assert exported == repository_files()


def test_frontline_export_writes_the_seeded_content_as_the_repositorys_files(tmp_path: Path, capsys) -> None:
    settings = load_settings(
        {"FRONTLINE_VAR": str(tmp_path), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    )
    assert commands.export(settings, str(tmp_path / "out")) == 0
    assert str(tmp_path / "out" / "domain.yml") in capsys.readouterr().out
    exported = {"domain.yml": (tmp_path / "out" / "domain.yml").read_text()}
    exported.update({f"nlu/{p.name}": p.read_text() for p in sorted((tmp_path / "out" / "nlu").glob("*.yml"))})
    assert exported == repository_files()


async def _seeded(sessions) -> None:
    await sessions.run(seeding.ensure_seeded, read_tree(ROOT))


async def test_a_new_question_is_a_faq_with_its_answer(sessions) -> None:
    await _seeded(sessions)
    await sessions.run(
        edits.add_intent,
        "faq/gift_wrap",
        ["do you gift wrap", "can you wrap it as a present", ""],
        "ann",
        answer="Yes: tick 'gift wrap' at checkout (£2.50).",
    )
    files = write_files(await sessions.read(current.load))
    async with sessions() as session:
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.who == "ann"))).all()
    faq = yaml.safe_load(files["nlu/faq.yml"])["nlu"]
    assert {"intent": "faq/gift_wrap", "examples": "- do you gift wrap\n- can you wrap it as a present\n"} in faq
    domain = yaml.safe_load(files["domain.yml"])
    assert domain["responses"]["utter_faq/gift_wrap"] == [{"text": "Yes: tick 'gift wrap' at checkout (£2.50)."}]
    assert "faq/gift_wrap" not in domain["intents"]  # a retrieval sub-intent is not listed
    assert [(a.action, a.target) for a in audit] == [("add intent", "faq/gift_wrap")]


async def test_a_new_plain_intent_goes_to_its_own_file_and_the_domain_list(sessions) -> None:
    await _seeded(sessions)
    await sessions.run(edits.add_intent, "ask_gift_card", ["i want a gift card", "do you sell gift vouchers"], "ann")
    files = write_files(await sessions.read(current.load))
    assert "ask_gift_card" in yaml.safe_load(files["domain.yml"])["intents"]
    assert yaml.safe_load(files["nlu/custom.yml"])["nlu"][0]["intent"] == "ask_gift_card"


@pytest.mark.parametrize(
    "name, examples, answer, reason",
    [
        ("Faq Gift", ["a", "b"], "x", "lower-case"),
        ("faq/opening_hours", ["a", "b"], "x", "already"),
        ("faq/new_one", ["only one"], "x", "at least two"),
        ("faq/new_one", ["a", "b"], "", "needs its answer"),
        ("other/thing", ["a", "b"], None, "Only FAQs"),
    ],
)
async def test_a_bad_new_intent_is_refused_with_the_reason(sessions, name, examples, answer, reason) -> None:
    await _seeded(sessions)
    with pytest.raises(ContentError, match=reason):
        await sessions.run(edits.add_intent, name, examples, "ann", answer=answer)


async def test_deleting_or_renaming_an_intent_in_use_is_refused_with_the_uses(sessions) -> None:
    await _seeded(sessions)
    with pytest.raises(edits.ContentInUse) as refused:
        await sessions.run(edits.delete_intent, "request_human", "ann")
    with pytest.raises(edits.ContentInUse):
        await sessions.run(edits.rename_intent, "request_human", "ask_for_person", "ann")
    uses = refused.value.uses
    assert any(use.startswith("rule ") for use in uses), uses
    assert any(use.startswith("response utter_anything_else") for use in uses), uses


async def test_a_faq_is_deleted_and_renamed_with_its_answer(sessions) -> None:
    await _seeded(sessions)
    await sessions.run(edits.rename_intent, "faq/opening_hours", "faq/service_hours", "ann")
    await sessions.run(edits.delete_intent, "faq/discount_codes", "ann")
    content = await sessions.read(current.load)
    assert "faq/service_hours" in content.intents and "utter_faq/service_hours" in content.responses
    assert "faq/opening_hours" not in content.intents and "utter_faq/opening_hours" not in content.responses
    assert "faq/discount_codes" not in content.intents and "utter_faq/discount_codes" not in content.responses
    files = write_files(content)
    assert "\n\n\n" not in files["nlu/faq.yml"]
    yaml.safe_load(files["nlu/faq.yml"])


async def test_a_seed_upgrade_keeps_admins_edits_and_deletes(sessions, tmp_path: Path) -> None:
    await _seeded(sessions)
    await sessions.run(edits.set_response, "utter_goodbye", [{"text": "Bye from the admins"}], "ann")
    await sessions.run(edits.delete_intent, "faq/discount_codes", "ann")
    seed = tmp_path / "seed"
    shutil.copytree(ROOT / "nlu", seed / "nlu")
    domain = (ROOT / "domain.yml").read_text()
    domain = domain.replace("Bye for now! If anything else comes up, just write here.", "Bye! (new seed)")
    domain = domain.replace("You're welcome!", "You're very welcome!")
    (seed / "domain.yml").write_text(domain + '\n  utter_new_seed_line:\n    - text: "New in the seed"\n')
    faq = (
        (seed / "nlu" / "faq.yml")
        .read_text()
        .replace("- opening hours?\n", "- opening hours?\n      - opening times?\n")
    )
    (seed / "nlu" / "faq.yml").write_text(faq)
    assert await sessions.run(seeding.ensure_seeded, read_tree(seed)) == "upgraded"
    content = await sessions.read(current.load)
    assert content.responses["utter_goodbye"].variations == [{"text": "Bye from the admins"}]
    assert content.responses["utter_youre_welcome"].variations[0] == {"text": "You're very welcome!"}
    assert content.responses["utter_new_seed_line"].variations == [{"text": "New in the seed"}]
    assert "opening times?" in content.intents["faq/opening_hours"].examples
    assert "faq/discount_codes" not in content.intents


async def test_responses_are_checked_before_they_are_stored(sessions) -> None:
    await _seeded(sessions)
    with pytest.raises(ContentError, match="at least one text"):
        await sessions.run(edits.set_response, "utter_goodbye", [{"text": "  "}], "ann")
    with pytest.raises(ContentError, match="title and what it says"):
        await sessions.run(edits.set_response, "utter_goodbye", [{"text": "x", "buttons": [{"title": "Go"}]}], "ann")


def test_the_repository_seed_reads() -> None:
    content = read_tree(ROOT)
    assert "utter_faq/opening_hours" in content.responses and "faq/opening_hours" in content.intents
