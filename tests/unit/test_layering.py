"""The import rules of the design (DESIGN.md, "Layout"), read from the source with `ast`: nothing is imported.

Imports flow one way: features (chat, desk, admin) use content, telegram and storage; storage and configuration
import no feature; the desk never imports the console; the Rasa runtime never imports content; benchmarks never
import tests; the app never imports `actions/` or `rasa`; the sentence encoder (`encoder/`)
imports neither Rasa nor either side's code. Modules stay under about 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ("bot.chat", "bot.desk", "bot.admin", "bot.content", "bot.telegram")
MAX_LINES = 400
# Over MAX_LINES today and being split: take a module off once it is under. Never add one. (None today.)
BEING_SPLIT: frozenset[str] = frozenset()

# (what the rule says, the files it is about, the modules they must not import: each with its submodules)
RULES = [
    ("storage imports no feature", ["bot/storage/**/*.py"], FEATURES),
    ("configuration imports no feature", ["bot/config.py", "bot/hours.py"], FEATURES),
    ("the clock imports nothing of the app", ["bot/clock.py"], ("bot", "actions")),
    ("the desk never imports the console", ["bot/desk/**/*.py"], ("bot.admin",)),
    ("the Rasa runtime never imports content", ["bot/rasa_runtime.py"], ("bot.content",)),
    ("benchmarks never import tests", ["bench/**/*.py"], ("tests",)),
    ("the app never imports the actions or Rasa", ["bot/**/*.py"], ("actions", "rasa")),
    (
        "the sentence encoder, shared by both environments, imports neither Rasa nor either side's code",
        ["encoder/**/*.py"],
        ("rasa", "rasa_sdk", "bot", "actions", "nlu", "bench", "tests", "devstack"),
    ),
    (
        "the shipped code never imports development code",
        ["bot/**/*.py", "actions/**/*.py"],
        ("tests", "bench", "devstack"),
    ),
]


def module_name(path: Path) -> str:
    """`bot/desk/cards.py` -> `bot.desk.cards`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, *, package: bool = False) -> set[str]:
    """Every module the source imports, anywhere in it (inside functions too), as absolute dotted names.

    `from a import b` gives `a` and `a.b` (b may be a module); relative imports are resolved against `module` (itself
    a package when `package`).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".") if package else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def files(patterns: list[str]) -> list[Path]:
    return sorted({path for pattern in patterns for path in ROOT.glob(pattern) if "__pycache__" not in path.parts})


def broken(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    """`path: imports name` for every forbidden import in those files."""
    found = []
    for path in paths:
        names = imports(path.read_text(encoding="utf-8"), module_name(path), package=path.name == "__init__.py")
        found += [f"{path.relative_to(ROOT)}: imports {name}" for name in sorted(names) if under(name, forbidden)]
    return found


@pytest.mark.parametrize(("rule", "patterns", "forbidden"), RULES, ids=[rule for rule, _, _ in RULES])
def test_imports_flow_one_way(rule: str, patterns: list[str], forbidden: tuple[str, ...]) -> None:
    paths = files(patterns)
    assert paths, f"no file matches {patterns}: the rule checks nothing"
    found = broken(paths, forbidden)
    assert not found, f"{rule} ({', '.join(forbidden)}):\n" + "\n".join(found)


def test_imports_are_found_however_and_wherever_written() -> None:
    source = (
        "import a.b\nfrom c import d\nfrom .e import f\nfrom .. import g\nfrom . import h\n"
        "def late():\n    from i.j import k\n"
    )
    assert imports(source, "bot.desk.x") == {
        "a.b",
        "c",
        "c.d",
        "bot.desk.e",
        "bot.desk.e.f",
        "bot",
        "bot.g",
        "bot.desk",
        "bot.desk.h",
        "i.j",
        "i.j.k",
    }
    assert imports("from . import y\n", "bot.desk", package=True) == {"bot.desk", "bot.desk.y"}
    assert under("bot.admin.insights", ("bot.admin",)) and under("bot.admin", ("bot.admin",))
    assert not under("bot.administration", ("bot.admin",)) and not under("bot.rasa", ("rasa",))
    assert not under("rasa_sdk", ("rasa",))


def test_modules_stay_under_400_lines() -> None:
    lengths = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in files(["bot/**/*.py"])
    }
    too_long = sorted(
        f"{name} ({count} lines)" for name, count in lengths.items() if count > MAX_LINES and name not in BEING_SPLIT
    )
    assert not too_long, f"over {MAX_LINES} lines, split them by concern: " + ", ".join(too_long)
    split = sorted(name for name in BEING_SPLIT if lengths.get(name, 0) <= MAX_LINES)
    assert not split, "split (or gone), take them off BEING_SPLIT: " + ", ".join(split)
