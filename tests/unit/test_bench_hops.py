"""bench/hops.py: a step's time through the emulator, split by the Bot API call log."""

from __future__ import annotations

import pytest

from bench.hops import Answered, hops, rasa_own, rasa_turns


def call(method: str, at: float, duration: float = 0.001, chat: int | None = None, status: int = 200) -> dict:
    return {
        "method": method,
        "time": at,
        "duration": duration,
        "status": status,
        "params": {} if chat is None else {"chat_id": chat, "text": "x"},
    }


def test_a_step_splits_into_intake_app_and_rasa_and_send() -> None:
    calls = [
        call("sendMessage", 99.0, chat=7),  # the chat's earlier answer
        call("getUpdates", 90.0, duration=9.5),  # answered at 99.5: before the message, not its poll
        call("getUpdates", 99.6, duration=0.42),  # answered at 100.02: the message's poll
        call("sendChatAction", 100.6, chat=7),
        call("sendMessage", 100.8, chat=7, status=429),  # refused: not the answer's call
        call("sendMessage", 101.0, duration=0.004, chat=8),  # another chat
        call("sendMessage", 101.2, duration=0.005, chat=7),  # the answer
        call("sendMessage", 101.201, chat=7, status=429),  # the follow-up, refused while the answer was logged
        call("sendMessage", 101.3, duration=0.005, chat=7),  # "anything else?", after the answer was logged
    ]
    way = hops([Answered(chat_id=7, sent=100.0, answered=101.205)], calls)
    assert way["steps"] == 1
    assert way["intake"]["p50_ms"] == pytest.approx(20.0)
    assert way["app_and_rasa"]["p50_ms"] == pytest.approx(1180.0)
    assert way["send"]["p50_ms"] == pytest.approx(5.0)
    assert way["with_typing"] == 1


def test_a_step_without_its_calls_is_left_out() -> None:
    calls = [call("getUpdates", 99.0, duration=0.5), call("sendMessage", 101.0, chat=8)]
    way = hops([Answered(chat_id=7, sent=100.0, answered=101.1)], calls)
    assert way["steps"] == 0 and way["intake"]["p50_ms"] is None and way["with_typing"] == 0


def test_rasa_turns_run_from_taking_a_message_to_its_last_utterance() -> None:
    events = [
        {"event": "action", "timestamp": 99.0},
        {"event": "bot", "timestamp": 99.5},  # before any user message: no turn
        {"event": "user", "timestamp": 100.0},
        {"event": "bot", "timestamp": 100.2},
        {"event": "action", "timestamp": 100.25},
        {"event": "bot", "timestamp": 100.3},
        {"event": "user", "timestamp": 105.0},  # not answered
    ]
    turns = rasa_turns(events)
    assert turns == [(100.0, 100.3), (105.0, 105.0)]
    assert rasa_own(turns)["max_ms"] == pytest.approx(300.0)


def test_with_rasa_turns_the_middle_splits_around_rasa() -> None:
    calls = [call("getUpdates", 99.6, duration=0.42), call("sendMessage", 101.2, duration=0.005, chat=7)]
    turns = {7: [(95.0, 95.1), (100.1, 100.9)]}  # an earlier message's turn, then this one's
    way = hops([Answered(chat_id=7, sent=100.0, answered=101.205)], calls, turns)
    assert way["to_rasa"]["p50_ms"] == pytest.approx(80.0)
    assert way["rasa"]["p50_ms"] == pytest.approx(800.0)
    assert way["after_rasa"]["p50_ms"] == pytest.approx(300.0)
    assert "rasa" not in hops([Answered(chat_id=7, sent=100.0, answered=101.205)], calls)
