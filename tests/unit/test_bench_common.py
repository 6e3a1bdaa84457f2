"""The pure parts of the stack benchmarks: percentiles, summaries, peak-memory parsing, scripts, tables."""

from __future__ import annotations

import math
import os

import pytest

from bench._common import (
    cpu_used,
    held_by_flood,
    is_new_message,
    median,
    peak_in_window,
    percentile,
    ratio,
    stat_cpu_seconds,
    summary,
    table,
    vm_hwm_kib,
)
from bench.answers import Step
from bench.chat import next_sweep_size
from bench.customers import Phrases, scripts

STATUS = """Name:\tpython
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t  912340 kB
VmSize:\t  900000 kB
VmHWM:\t  832512 kB
VmRSS:\t  800000 kB
Threads:\t12
"""


def test_percentiles_interpolate_between_the_closest_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0, 5.0]
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 50) == 3.0
    assert percentile(samples, 100) == 5.0
    assert percentile(samples, 95) == pytest.approx(4.8)
    assert percentile([1.0, 2.0], 50) == pytest.approx(1.5)


def test_a_percentile_of_one_sample_is_that_sample_and_of_none_is_nan() -> None:
    assert percentile([0.25], 99) == 0.25
    assert math.isnan(percentile([], 50))


def test_a_summary_is_in_milliseconds() -> None:
    samples = [i / 1000 for i in range(1, 101)]  # 1 ms … 100 ms
    assert summary(samples) == {"n": 100, "p50_ms": 50.5, "p95_ms": 95.0, "p99_ms": 99.0, "max_ms": 100.0}


def test_a_summary_without_samples_has_no_figures() -> None:
    assert summary([]) == {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}


def test_the_overhead_ratio_needs_both_figures() -> None:
    assert ratio(150.0, 100.0) == 1.5
    assert ratio(None, 100.0) is None
    assert ratio(150.0, None) is None
    assert ratio(150.0, 0.0) is None


def test_the_peak_resident_size_is_read_from_proc_status() -> None:
    assert vm_hwm_kib(STATUS) == 832512


def test_a_status_without_a_peak_gives_none() -> None:
    # Kernel threads and zombies have no memory lines.
    assert vm_hwm_kib("Name:\tkthreadd\nState:\tS (sleeping)\n") is None


def test_only_new_messages_count_as_replies() -> None:
    assert is_new_message({"method": "sendMessage"})
    assert is_new_message({"method": "sendPhoto"})
    assert is_new_message({"method": "copyMessage"})
    assert not is_new_message({"method": "editMessageText"})
    assert not is_new_message({"method": "editMessageReplyMarkup"})
    assert not is_new_message({"method": "sendChatAction"}), "typing… is no message"


def call(chat: int, text: str, status: int, at: float, method: str = "sendMessage") -> dict:
    return {"method": method, "params": {"chat_id": chat, "text": text}, "status": status, "time": at}


def test_a_message_is_held_by_flood_limits_from_its_first_refusal_to_its_acceptance() -> None:
    calls = [
        call(7, "answer", 429, 10.0),
        call(8, "other", 200, 10.1),
        call(7, "answer", 429, 11.0),
        call(7, "typing", 429, 11.2, method="sendChatAction"),
        call(7, "answer", 200, 12.5),
        call(7, "next", 200, 12.6),
        call(9, "never taken", 429, 13.0),
    ]
    assert held_by_flood(calls) == [2.5], "only a message refused, then taken; a chat action is no message"


def test_scripts_greet_ask_and_every_other_one_drops_a_complaint() -> None:
    questions = [Step(f"q{i}", f"faq/topic{i}") for i in range(1, 5)]
    phrases = Phrases(greetings=["hi"], questions=questions, complaints=["broken"], drops=["never mind"])
    conversations = scripts(6, phrases)
    assert len(conversations) == 6
    for index, turns in enumerate(conversations):
        assert turns[0] == Step("hi", "greet")
        if index % 2:
            assert turns[-2:] == [Step("broken", "complain"), Step("never mind", "stop")]
            asked = turns[1:-2]
        else:
            asked = turns[1:]
        assert 2 <= len(asked) <= 3 and len(set(asked)) == len(asked)
        assert set(asked) <= set(questions), "each question keeps its own intent"
    assert scripts(6, phrases) == conversations, "the same seed gives the same conversations"


def test_a_table_aligns_its_columns() -> None:
    text = table(["path", "p50 ms"], [["Frontline", 12.5], ["Rasa", None]])
    assert text.splitlines() == [
        "path       p50 ms",
        "---------  ------",
        "Frontline    12.5",
        "Rasa            -",
    ]


def test_the_sweep_climbs_until_a_size_fails_then_halves_the_gap() -> None:
    sizes = (10, 25, 50, 100)
    assert next_sweep_size(None, None, sizes) == 10
    assert next_sweep_size(10, None, sizes) == 25
    assert next_sweep_size(100, None, sizes) is None, "the list is done"
    assert next_sweep_size(25, 50, sizes) == 35
    assert next_sweep_size(35, 50, sizes) == 40
    assert next_sweep_size(40, 50, sizes) == 45
    assert next_sweep_size(45, 50, sizes) is None, "closer than a step of 5"
    assert next_sweep_size(None, 10, sizes) == 5
    assert next_sweep_size(None, 5, sizes) is None


STAT = "4242 (python -m bot (x)) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 50 7 3 20 0 12 0 100 900000 800 0"


def test_cpu_time_is_user_plus_system_ticks_of_proc_stat() -> None:
    # utime 250 and stime 50 ticks; the children's (7, 3) are not the process's own; a name may hold ") ".
    ticks = os.sysconf("SC_CLK_TCK")
    assert stat_cpu_seconds(STAT) == pytest.approx(300 / ticks)


def test_cpu_used_is_the_difference_per_process_and_per_message() -> None:
    used = cpu_used({"app": 1.0, "emulator": 2.0}, {"app": 3.5, "emulator": 2.5}, messages=10)
    assert used == {
        "app": {"seconds": 2.5, "ms_per_message": 250.0},
        "emulator": {"seconds": 0.5, "ms_per_message": 50.0},
    }
    assert cpu_used({"app": 1.0}, {"app": 2.0}, messages=0)["app"]["ms_per_message"] is None


def test_the_median_skips_missing_figures() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([1.0, 4.0]) == 2.5
    assert median([None, None]) is None


def test_the_peak_counts_the_most_moments_in_any_rolling_second() -> None:
    assert peak_in_window([]) == 0
    assert peak_in_window([5.0]) == 1
    # 10.0 to 10.9 holds four, and so do 10.2 to 11.0 and 10.5 to 11.4; none holds five.
    assert peak_in_window([11.4, 10.0, 10.2, 10.5, 10.9, 11.0]) == 4
    assert peak_in_window([0.0, 1.0, 2.0]) == 1, "a second apart is not within the same second"
    assert peak_in_window([0.0, 0.5, 1.0], window=2.0) == 3
