"""Processes released together onto the same new files: for the tests of SQLite's first opening."""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing import get_context
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
