"""The app's one clock (bot/clock.py): nothing else reads the wall clock, tests and FRONTLINE_CLOCK set it."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import clock as app_clock
from bot.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
CLOCK_MODULE = ROOT / "bot" / "clock.py"

# Calls that read the wall clock as a date or a time of day. Monotonic timers (time.monotonic, loop.time()) are not
# dates and stay allowed.
WALL_CLOCK = {
    "time.time",
    "time.time_ns",
    "time.localtime",
    "time.gmtime",
    "time.ctime",
    "time.asctime",
    "time.strftime",
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
    "sqlalchemy.func.now",
    "sqlalchemy.func.current_timestamp",
    "sqlalchemy.func.current_date",
    "sqlalchemy.func.current_time",
    "sqlalchemy.func.localtimestamp",
    "sqlalchemy.sql.func.now",
}
# A date the database writes itself, in SQL text or a server default: a clock the tests cannot set.
DATABASE_CLOCK = re.compile(
    r"\b(current_timestamp|current_date|current_time|localtimestamp)\b|\bnow\(\)", re.IGNORECASE
)


def _names(tree: ast.AST) -> dict[str, str]:
    """What each imported name stands for: `import datetime as dt` → dt: datetime; `from time import time` → time.time."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.asname and alias.name or alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(parts)])


def wall_clock_reads(source: str) -> list[str]:
    """`line: what` for every direct read of the wall clock in this source, and every date the database would write."""
    tree = ast.parse(source)
    names, found = _names(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (name := _dotted(node.func, names)) in WALL_CLOCK:
            found.append(f"{node.lineno}: {name}()")
        elif _sql_with_a_clock(tree, node):
            found.append(f"{node.lineno}: SQL reads the database's clock: {node.value[:60]!r}")
    return found


def _sql_with_a_clock(tree: ast.AST, node: ast.AST) -> bool:
    """A string (not a docstring) naming the database's own clock: CURRENT_TIMESTAMP, now()…"""
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and DATABASE_CLOCK.search(node.value) is not None
        and not _is_docstring(tree, node)
    )


def _is_docstring(tree: ast.AST, constant: ast.Constant) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and first.value is constant:
                return True
    return False


def test_nothing_in_the_app_reads_the_wall_clock_but_the_clock_module() -> None:
    sources = sorted({*ROOT.glob("bot/**/*.py"), *ROOT.glob("actions/**/*.py")} - {CLOCK_MODULE})
    assert len(sources) > 50
    found = [
        f"{path.relative_to(ROOT)}:{read}"
        for path in sources
        if "__pycache__" not in path.parts
        for read in wall_clock_reads(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "read the time through bot.clock.now() (bot/clock.py), which tests and FRONTLINE_CLOCK set"


@pytest.mark.parametrize(
    "line",
    [
        "import time\nx = time.time()",
        "from time import time\nx = time()",
        "import datetime as dt\nx = dt.datetime.now(dt.UTC)",
        "from datetime import datetime\nx = datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import sqlalchemy as sa\nc = sa.Column('at', sa.DateTime, server_default=sa.func.now())",
        "from sqlalchemy import func\nc = func.current_timestamp()",
        "from sqlalchemy import text\nq = text('UPDATE inbox SET done_at = CURRENT_TIMESTAMP')",
    ],
)
def test_the_source_check_sees_each_way_of_reading_the_wall_clock(line: str) -> None:
    assert wall_clock_reads(line)


def test_the_source_check_leaves_timers_and_the_clock_alone() -> None:
    allowed = (
        "import asyncio, time\nfrom bot import clock\nfrom bot.storage.models import utcnow\n"
        "a = time.monotonic()\nb = asyncio.get_running_loop().time()\nc = clock.now()\nd = utcnow()\n"
        "def f(local):\n    '''Opening hours read now() from the clock.'''\n    return local.time()\n"
    )
    assert wall_clock_reads(allowed) == []


MOMENTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
).flatmap(
    lambda m: st.integers(-14 * 60, 14 * 60).map(lambda minutes: m.astimezone(timezone(timedelta(minutes=minutes))))
)


@settings(deadline=None, max_examples=200)
@given(MOMENTS)
def test_any_moment_with_its_utc_offset_is_a_start_the_clock_takes(moment: datetime) -> None:
    start, anchor = app_clock.parse(moment.isoformat())
    assert start == moment and start.tzinfo is UTC and anchor is None


@settings(deadline=None, max_examples=200)
@given(st.text(max_size=40))
def test_any_other_text_is_refused_saying_what_is_expected(text: str) -> None:
    try:
        start, _ = app_clock.parse(text)
    except app_clock.ClockError as exc:
        assert "FRONTLINE_CLOCK" in str(exc)
    else:
        assert start.tzinfo is UTC


@pytest.mark.parametrize("value", ["2027-03-27 23:30", "2027-03-27T23:30:00", "saturday", "2027-02-30T10:00+00:00"])
def test_a_moment_without_its_offset_or_no_moment_at_all_is_refused(value: str) -> None:
    with pytest.raises(app_clock.ClockError, match="FRONTLINE_CLOCK must"):
        app_clock.parse(value)


@settings(deadline=None, max_examples=100)
@given(MOMENTS, st.lists(st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)), max_size=5))
def test_a_frozen_clock_moves_only_as_far_as_it_is_advanced(moment: datetime, steps: list[timedelta]) -> None:
    try:
        app_clock.set_to(moment, frozen=True)
        for step in steps:
            app_clock.advance(step)
        assert app_clock.now() == moment + sum(steps, timedelta())
        assert app_clock.now().tzinfo is UTC
    finally:
        app_clock.reset()


def test_a_running_clock_set_to_a_moment_runs_on_from_it(clock) -> None:
    saturday = datetime(2027, 3, 27, 23, 30, tzinfo=UTC)
    clock.set_to(saturday)
    first = clock.now()
    second = clock.now()
    assert saturday <= first <= second < saturday + timedelta(hours=1)
    clock.advance(timedelta(days=1))
    assert clock.now() >= saturday + timedelta(days=1)
    clock.freeze()
    assert clock.now() == clock.now()


def test_reset_puts_the_clock_back_where_the_process_started_it() -> None:
    started = app_clock.now()
    app_clock.set_to(datetime(1999, 12, 31, 23, 59, tzinfo=UTC), frozen=True)
    app_clock.reset()
    assert started <= app_clock.now() < started + timedelta(hours=1)
    assert app_clock._frozen is None and app_clock._shift == app_clock._START_SHIFT


SHOW = (
    "import json, os, subprocess, sys; from bot import clock; first = clock.now().isoformat(); "
    "child = subprocess.run([sys.executable, '-c', 'from bot import clock; print(clock.now().isoformat())'], "
    "capture_output=True, text=True, check=True).stdout.strip(); "
    "print(json.dumps([first, child, clock.now().isoformat(), os.environ['FRONTLINE_CLOCK']]))"
)


def _python(code: str, clock_value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FRONTLINE_CLOCK": clock_value, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=False)


def test_frontline_clock_starts_the_process_there_and_its_children_on_the_same_timeline() -> None:
    start = datetime(2027, 3, 27, 23, 30, tzinfo=UTC)
    shown = _python(SHOW, start.isoformat())
    assert shown.returncode == 0, shown.stderr
    first, child, last, pinned = json.loads(shown.stdout)
    first, child, last = (datetime.fromisoformat(t) for t in (first, child, last))
    assert start <= first <= child <= last < start + timedelta(hours=1), "the child continues, it does not restart"
    assert pinned.startswith(f"{start.isoformat()}@"), "the children are told where the timeline started"


@pytest.mark.parametrize("value", ["tomorrow", "2027-03-27T23:30:00", "2027-03-27T23:30:00+00:00@soon"])
def test_a_malformed_frontline_clock_stops_the_process_saying_why(value: str) -> None:
    refused = _python("import bot.storage.models", value)
    assert refused.returncode != 0
    assert "ClockError: FRONTLINE_CLOCK must" in refused.stderr and repr(value) in refused.stderr


def test_the_configuration_refuses_a_malformed_frontline_clock() -> None:
    with pytest.raises(ConfigError, match="FRONTLINE_CLOCK must be an ISO 8601 moment"):
        load_settings({"FRONTLINE_CLOCK": "next saturday"})
    load_settings({"FRONTLINE_CLOCK": "2027-03-27T23:30:00+00:00"})
