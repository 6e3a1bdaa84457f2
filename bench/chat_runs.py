"""The runs of bench/chat.py taken together: medians over the runs, and the issue's goals against them.

The goals are ratios to bare Rasa in the same run (so the machine's speed cancels out): with 10 customers, p50 at
most 1.5x and p95 at most 2x Rasa's; with 50, answers per second at least 0.85x Rasa's and p95 at most 2.5x, and no
customer handed to a person because Rasa did not answer in time; at any N, no Bot API 429 in steady state. A ratio is
taken within each run, and its median over the runs is what a goal is held to.
"""

from __future__ import annotations

from typing import Any

from bench._common import median, table

# (customers, name, figure in the medians, "max" or "min", target)
GOALS: tuple[tuple[int | None, str, str, str, float], ...] = (
    (10, "p50 / bare Rasa's", "p50_ratio", "max", 1.5),
    (10, "p95 / bare Rasa's", "p95_ratio", "max", 2.0),
    (50, "answers/s / bare Rasa's", "throughput_ratio", "min", 0.85),
    (50, "p95 / bare Rasa's", "p95_ratio", "max", 2.5),
    (50, "customers handed to a person (Rasa too slow)", "handoffs", "max", 0),
    (None, "Bot API 429s", "429", "max", 0),
)


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over runs of each figure of bench/chat.py's result, the ratios taken within each run first."""

    def each(path: str) -> list[Any]:
        values = []
        for run in runs:
            value: Any = run
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            values.append(value)
        return values

    frontline, rasa = "frontline_via_emulator", "bare_rasa_rest"
    processes = sorted({name for run in runs for name in run[frontline]["cpu"]})
    return {
        "frontline_p50_ms": median(each(f"{frontline}.latency.p50_ms")),
        "frontline_p95_ms": median(each(f"{frontline}.latency.p95_ms")),
        "frontline_first_message_p50_ms": median(each(f"{frontline}.first_message_latency.p50_ms")),
        "frontline_answers_per_second": median(each(f"{frontline}.answers_per_second")),
        "rasa_p50_ms": median(each(f"{rasa}.latency.p50_ms")),
        "rasa_p95_ms": median(each(f"{rasa}.latency.p95_ms")),
        "rasa_answers_per_second": median(each(f"{rasa}.answers_per_second")),
        "p50_ratio": median(each("overhead.p50")),
        "p95_ratio": median(each("overhead.p95")),
        "throughput_ratio": median(each("overhead.throughput")),
        "handoffs": median(each(f"{frontline}.handoffs")),
        "errors": median([sum(run[frontline]["errors"].values()) for run in runs]),
        "429": median(each(f"{frontline}.flood.429")),
        "429_private": median(each(f"{frontline}.flood.429_private")),
        "frontline_cpu_ms_per_message": {
            name: median(each(f"{frontline}.cpu.{name}.ms_per_message")) for name in processes
        },
        "rasa_cpu_ms_per_message": {name: median(each(f"{rasa}.cpu.{name}.ms_per_message")) for name in processes},
    }


def goals(customers: int, middle: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals that apply to this number of customers, each with the median figure and whether it is met
    (a missing figure is not met)."""
    held = []
    for size, name, key, direction, target in GOALS:
        if size is not None and size != customers:
            continue
        value = middle.get(key)
        met = value is not None and (value <= target if direction == "max" else value >= target)
        held.append(
            {"goal": name, "value": value, "target": ("<= " if direction == "max" else ">= ") + str(target), "met": met}
        )
    return held


def goal_table(held: list[dict[str, Any]]) -> str:
    """The goals as a table."""
    return table(
        ["goal (median of the runs)", "value", "target", "met"],
        [[row["goal"], row["value"], row["target"], "yes" if row["met"] else "NO"] for row in held],
    )
