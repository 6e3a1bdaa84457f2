"""SQLite's first opening raced: processes released together onto the same new files, and a writer holding a new
file while another connection switches it to WAL."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any

TIMEOUT = 120  # seconds a process waits for the others at each file, and the test for all their results


def race(target: Callable[[list[str], Any, Any], None], paths: list[str], processes: int = 4) -> list[str]:
    """Run `target(paths, barrier, results)` in `processes` spawned processes; return every failure they put.

    `target` waits on the barrier before each path, so all the processes meet each new file at the same moment,
    and puts one list of failure descriptions on `results` when it is done. A process that dies breaks the barrier
    for the others (they fail rather than wait), and every process is gone when this returns.
    """
    context = get_context("spawn")
    barrier, results = context.Barrier(processes, timeout=TIMEOUT), context.Queue()
    workers = [context.Process(target=target, args=(paths, barrier, results), daemon=True) for _ in range(processes)]
    try:
        for worker in workers:
            worker.start()
        failures = [failure for _ in workers for failure in results.get(timeout=TIMEOUT)]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    return failures + [f"process exited with {w.exitcode}" for w in workers if w.exitcode]


def switch_waits_for_writer(path: Path, switch: Callable[[sqlite3.Connection], None]) -> str:
    """A first connection holds the write lock of the new file `path`; a second's plain `PRAGMA journal_mode=WAL`
    must fail at once (SQLite does not wait there, whatever the timeout), then `switch(second)` runs while a timer
    commits the first after 0.3 s. Returns the second connection's journal mode afterwards."""
    import pytest

    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # a new file, still in rollback mode: this holds its write lock
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("PRAGMA journal_mode=WAL")
        release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
        release.start()
        switch(other)
        release.join()
        return str(other.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        other.close()
        holder.close()
