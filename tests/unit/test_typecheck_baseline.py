"""The type check's baseline (devstack/typecheck.py): its rules as properties of the comparison and the update.

tests/unit/test_typecheck.py runs the command itself on real mypy output.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack import typecheck

keys = st.sampled_from([f"bot/m{i}.py: [arg-type] message {j}" for i in range(3) for j in range(3)])
counters = st.lists(keys, max_size=12).map(Counter)


@settings(deadline=None)
@given(baseline=counters, current=counters)
def test_an_error_beyond_the_baseline_is_new_and_a_listed_one_that_is_gone_is_reported(
    baseline: Counter[str], current: Counter[str]
) -> None:
    new, gone = typecheck.compare(baseline, current)
    for key in set(baseline) | set(current):
        assert new[key] == max(current[key] - baseline[key], 0)
        assert gone[key] == max(baseline[key] - current[key], 0)
    assert (not new and not gone) == (baseline == current)


@settings(deadline=None)
@given(baseline=counters, current=counters)
def test_an_update_never_grows_the_baseline_unless_told_to(baseline: Counter[str], current: Counter[str]) -> None:
    shrunk = typecheck.updated(baseline, current, accept_new=False)
    assert not shrunk - baseline  # nothing added, not even one more of a listed kind
    assert not shrunk - current  # nothing fixed stays listed
    assert typecheck.compare(shrunk, current)[0] == typecheck.compare(baseline, current)[0]  # the new are still new
    assert typecheck.updated(baseline, current, accept_new=True) == current


messages = st.text(st.characters(exclude_categories=("Cs",)), min_size=1).filter(lambda m: m.strip())


@settings(deadline=None)
@given(
    found=st.lists(
        st.tuples(st.sampled_from(["bot/a.py", "actions/b.py"]), st.sampled_from(["misc", "arg-type"]), messages),
        max_size=8,
    ),
    line=st.integers(min_value=1, max_value=10_000),
)
def test_the_baseline_file_reads_back_what_was_written(
    tmp_path_factory: pytest.TempPathFactory, found: list[tuple[str, str, str]], line: int
) -> None:
    path = tmp_path_factory.mktemp("baseline") / "baseline.txt"
    baseline = Counter(typecheck.entry(*error) for error in found)
    typecheck.write(path, baseline)
    assert typecheck.read(path) == baseline
    # A line number quoted in a message does not tie the entry to where the code is.
    assert typecheck.entry("bot/a.py", "no-redef", f'Name "x" already defined on line {line}') == (
        'bot/a.py: [no-redef] Name "x" already defined on line N'
    )
