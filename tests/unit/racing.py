"""Processes released together onto the same new files: for the tests of SQLite's first opening."""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing import get_context
from typing import Any


def race(target: Callable[[list[str], Any, Any], None], paths: list[str], processes: int = 4) -> list[str]:
    """Run `target(paths, barrier, results)` in `processes` spawned processes; return every failure they put.

    `target` waits on the barrier before each path, so all the processes meet each new file at the same moment,
    and puts one list of failure descriptions on `results` when it is done.
    """
    context = get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=target, args=(paths, barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    failures = [failure for _ in workers for failure in results.get(timeout=300)]
    for worker in workers:
        worker.join()
    return failures
