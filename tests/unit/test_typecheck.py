"""The type check (`make lint`): mypy's errors held to a baseline that only shrinks (devstack/typecheck.py).

The command runs the real mypy, with the project's settings, on a small package made here: a new error fails it, a
fixed one must be taken off, and an update never adds an error unless told to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def entries(baseline: Path) -> Counter[str]:
    """The baseline's entries, read as a person would: every line that is not a comment."""
    lines = baseline.read_text(encoding="utf-8").splitlines()
    return Counter(line for line in lines if line.strip() and not line.startswith("#"))


def _check(package: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`python -m devstack.typecheck shop` with the project's mypy settings, from the package's folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MYPY_CACHE_DIR": str(package.parent / "cache")}
    command = [sys.executable, "-m", "devstack.typecheck", "shop", "--config-file", str(ROOT / "pyproject.toml")]
    return subprocess.run(
        [*command, "--baseline", "baseline.txt", *options],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


OLD = 'def price() -> int:\n    return "free"\n'


def test_a_new_type_error_fails_the_check_and_a_fixed_one_must_come_off(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "shop").mkdir(parents=True)
    (work / "shop" / "__init__.py").write_text("")
    (work / "shop" / "old.py").write_text(OLD)
    baseline = work / "baseline.txt"

    started = _check(work, "--update", "--accept-new")
    assert started.returncode == 0, started.stdout + started.stderr
    assert entries(baseline) == Counter(
        {'shop/old.py: [return-value] Incompatible return value type (got "str", expected "int")': 1}
    )
    (work / "shop" / "old.py").write_text("# moved down by an edit above it\n\n" + OLD)
    known = _check(work)
    assert known.returncode == 0, known.stdout + known.stderr

    # A new module gets the whole check (strict: an unannotated function is an error), and one more error of a
    # kind the baseline lists is new too.
    (work / "shop" / "new.py").write_text("def total(items):\n    return sum(items)\n")
    (work / "shop" / "old.py").write_text(OLD + "\n\n" + OLD.replace("price", "discount"))
    listed = baseline.read_bytes()
    failed = _check(work)
    assert failed.returncode == 1
    assert "shop/new.py:1: [no-untyped-def]" in failed.stdout
    assert "shop/old.py:6: [return-value]" in failed.stdout and "the baseline allows 1 of these" in failed.stdout

    refused = _check(work, "--update")
    assert refused.returncode == 1
    assert "not added" in refused.stdout and "shop/new.py:1: [no-untyped-def]" in refused.stdout
    assert baseline.read_bytes() == listed

    # Fixed: the check fails until the baseline is brought down, and the update does that.
    (work / "shop" / "new.py").unlink()
    (work / "shop" / "old.py").write_text(OLD.replace('"free"', "0"))
    stale = _check(work)
    assert stale.returncode == 1
    assert "1 error listed in baseline.txt fixed" in stale.stdout
    assert "shop/old.py: [return-value]" in stale.stdout
    shrunk = _check(work, "--update")
    assert shrunk.returncode == 0, shrunk.stdout + shrunk.stderr
    assert entries(baseline) == Counter()
    assert _check(work).returncode == 0
