"""The type check: mypy on `bot/` and `actions/` (settings in pyproject.toml's `[tool.mypy]`), held to a baseline of
the errors that were there before it, a list that only shrinks.

`python -m devstack.typecheck` (run by `make lint`) fails on any error the baseline does not list, and on any listed
error that no longer occurs, so that a fix is recorded and its place cannot be taken by a new error later.
`python -m devstack.typecheck --update` (`make typecheck-baseline`) takes the errors that are gone off the baseline;
it adds new ones only with `--accept-new` (`ACCEPT_NEW=1`), and names each one it adds.

An error is known by its file, its error code and its message (line numbers left out), so that editing a module does
not disturb the baseline, and a new module, or one renamed, has every error reported.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "devstack" / "typecheck_baseline.txt"
HEADER = """\
# The type errors mypy found in bot/ and actions/ when the type check began, less those fixed since: one line per
# error, `path: [code] message`. `make lint` fails on an error not listed here and on a listed one that is gone.
# This list only shrinks: `make typecheck-baseline` takes fixed errors off; it adds new ones only with ACCEPT_NEW=1.
"""
_LINE_NUMBER = re.compile(r"\bline \d+")


@dataclass(frozen=True)
class Error:
    """One error as mypy reports it; `key` is what the baseline holds."""

    path: str
    line: int
    code: str
    message: str

    @property
    def key(self) -> str:
        return entry(self.path, self.code, self.message)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.code}] {self.message}"


def entry(path: str, code: str, message: str) -> str:
    """The baseline's line for an error: no line number, also not one quoted in the message, and on one line."""
    message = " ".join(_LINE_NUMBER.sub("line N", message).split())
    return f"{path}: [{code}] {message}"


def parse(output: str) -> list[Error]:
    """mypy's `--output json` lines: the errors, without the notes that come with some of them."""
    errors = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        found = json.loads(line)
        if found.get("severity") != "error":
            continue
        path = Path(found["file"]).as_posix()
        errors.append(Error(path, int(found.get("line") or 0), found.get("code") or "misc", found["message"]))
    return errors


def compare(baseline: Counter[str], current: Counter[str]) -> tuple[Counter[str], Counter[str]]:
    """(new, gone): errors beyond what the baseline allows, and baseline entries that no longer occur."""
    return current - baseline, baseline - current


def updated(baseline: Counter[str], current: Counter[str], *, accept_new: bool) -> Counter[str]:
    """The baseline after an update: the errors that still occur; the new ones too only when accepted."""
    return Counter(current) if accept_new else baseline & current


def read(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    lines = path.read_text(encoding="utf-8").splitlines()
    return Counter(line for line in lines if line.strip() and not line.startswith("#"))


def write(path: Path, baseline: Counter[str]) -> None:
    path.write_text(HEADER + "".join(f"{key}\n" for key in sorted(baseline.elements())), encoding="utf-8")


def run_mypy(targets: Iterable[str], config_file: str | None) -> list[Error]:
    settings = ["--config-file", config_file] if config_file else []
    command = [sys.executable, "-m", "mypy", "--output", "json", *settings, *targets]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not parse(done.stdout)):
        sys.exit(f"mypy did not run to the end (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return parse(done.stdout)


def count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def _listing(errors: list[Error], keys: Counter[str], baseline: Counter[str]) -> list[str]:
    lines = []
    for error in errors:
        if keys[error.key]:
            allowed = f" (the baseline allows {baseline[error.key]} of these)" if baseline[error.key] else ""
            lines.append(f"  {error}{allowed}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.typecheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="what to check (default: pyproject.toml's `files`)")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--config-file", help="mypy's settings (default: pyproject.toml here)")
    parser.add_argument("--update", action="store_true", help="take the errors that are gone off the baseline")
    parser.add_argument("--accept-new", action="store_true", help="with --update: add the new errors too")
    args = parser.parse_args(argv)

    errors = run_mypy(args.targets, args.config_file)
    baseline, current = read(args.baseline), Counter(error.key for error in errors)
    new, gone = compare(baseline, current)
    where = args.baseline.name
    if args.update:
        write(args.baseline, updated(baseline, current, accept_new=args.accept_new))
        kept = updated(baseline, current, accept_new=args.accept_new).total()
        print(
            f"{where}: {count(gone.total(), 'fixed error')} taken off; {kept} listed, of the {len(errors)} mypy finds"
        )
        if new and args.accept_new:
            print(f"{count(new.total(), 'new error')} added on purpose:", *sorted(new.elements()), sep="\n  ")
        elif new:
            print(f"{count(new.total(), 'new error')}, not added: fix them (or add them on purpose with ACCEPT_NEW=1)")
            print(*_listing(errors, new, baseline), sep="\n")
            return 1
        return 0
    if new:
        print(f"mypy: {count(new.total(), 'type error')} that {where} does not list: fix them")
        print(*_listing(errors, new, baseline), sep="\n")
    if gone:
        print(
            f"mypy: {count(gone.total(), 'error')} listed in {where} fixed: take them off with `make typecheck-baseline`"
        )
        print(*(f"  {key}" for key in sorted(gone.elements())), sep="\n")
    if new or gone:
        return 1
    print(f"mypy: no new type errors ({baseline.total()} known ones listed in {where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
