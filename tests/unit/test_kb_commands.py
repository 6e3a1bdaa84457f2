"""`frontline kb import` and `frontline kb export`: a folder of Markdown and HTML files in, each article by its slug,
the bad files skipped with the reason; and back out as `<slug>.md` files that import again as no change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.config import load_settings
from bot.content import kb_commands
from bot.content.help_center import parse_file

ROOT = Path(__file__).resolve().parents[2]
SIZES = "---\ntitle: Sizes\ncategory: Clothing\n---\nS is 90 cm.\n\n- M is 100 cm\n- L is 110 cm\n"
CARE = "<html><head><title>Care</title></head><body><h1>Care</h1><p>Wash <b>cold</b>.</p></body></html>"


def _settings(tmp_path: Path):
    return load_settings({"FRONTLINE_VAR": str(tmp_path), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"})


def test_import_then_export_then_import_again_changes_nothing(tmp_path: Path, capsys) -> None:
    settings, source = _settings(tmp_path), tmp_path / "in"
    source.mkdir()
    (source / "README.md").write_text("# Our articles\n")
    (source / "sizes.md").write_text(SIZES)
    (source / "Care.html").write_text(CARE)
    (source / "broken.md").write_text("---\ntitle: Broken\nurl: file:///etc/passwd\n---\nBody\n")
    assert kb_commands.import_folder(settings, str(source)) == 1
    out = capsys.readouterr().out
    assert f"Imported {source}: 2 created, 0 updated, 0 unchanged, 2 skipped" in out
    assert "created: sizes, care" in out and "skipped broken.md: The link must be a web address" in out
    assert "1 file(s) were not imported" in out
    (source / "sizes.md").write_text(SIZES.replace("90 cm", "92 cm"))
    (source / "broken.md").unlink()
    assert kb_commands.import_folder(settings, str(source)) == 0
    assert "0 created, 1 updated, 1 unchanged, 1 skipped" in capsys.readouterr().out

    target = tmp_path / "out"
    assert kb_commands.export_folder(settings, str(target)) == 0
    exported = sorted(target.glob("*.md"))
    assert {p.name for p in exported} >= {"sizes.md", "care.md"}
    assert (target / "sizes.md").read_text() == SIZES.replace("90 cm", "92 cm")
    assert (target / "care.md").read_text() == "---\ntitle: Care\n---\nWash cold.\n"
    assert parse_file(target / "care.md") == parse_file(source / "Care.html")
    capsys.readouterr()
    assert kb_commands.import_folder(settings, str(target)) == 0
    assert f"0 created, 0 updated, {len(exported)} unchanged, 0 skipped" in capsys.readouterr().out


def test_a_missing_folder_is_refused(tmp_path: Path, capsys) -> None:
    assert kb_commands.import_folder(_settings(tmp_path), str(tmp_path / "nowhere")) == 1
    assert "is not a folder" in capsys.readouterr().out


def test_the_command_line_runs_kb_import(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sizes.md").write_text(SIZES)
    env = {
        "PATH": "/usr/bin:/bin",
        "FRONTLINE_VAR": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "kb", "import", str(tmp_path / "in")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1 created, 0 updated, 0 unchanged, 0 skipped" in result.stdout
