"""Where a step's time goes through the emulator, read from its Bot API call log (one clock: the emulator's).

For each answered step (its chat, when the customer's message was accepted, when the answer was logged):
- `intake`: from the message to the end of the first getUpdates answered after it (the app's long poll);
- `app_and_rasa`: from there to the arrival of the call that sent the answer (the app's work, Rasa's answer, the
  typing action on the way, any wait behind the chat's earlier messages or a "retry after");
- `send`: that call's own time at the emulator (the Bot API's answer);
- `typing`: whether a chat action was sent in the chat on the way (the app shows "typing…" after 0.5 s).
Rasa's own time is bare Rasa's latency in the same run, so `app_and_rasa` less that is the app's part.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench._common import summary


@dataclass(frozen=True)
class Answered:
    """A step answered through the emulator: its chat, when its message was accepted and its answer logged."""

    chat_id: int
    accepted: float
    answered: float


def hops(steps: Sequence[Answered], calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Percentiles of each hop of the answered steps (see the module), and how many of them waited for typing."""
    polls = sorted(
        call["time"] + (call["duration"] or 0.0)
        for call in calls
        if call["method"] == "getUpdates" and call["status"] == 200
    )
    sends: dict[int, list[dict[str, Any]]] = {}
    typing: dict[int, list[float]] = {}
    for call in calls:
        chat = call["params"].get("chat_id")
        if chat is None:
            continue
        if call["method"] == "sendMessage" and call["status"] == 200:
            sends.setdefault(int(chat), []).append(call)
        elif call["method"] == "sendChatAction":
            typing.setdefault(int(chat), []).append(call["time"])
    intake, middle, send, typed = [], [], [], 0
    for step in steps:
        at = bisect.bisect_left(polls, step.accepted)
        # The call that sent the answer: the chat's last accepted send that arrived before the answer was logged.
        sent = [call for call in sends.get(step.chat_id, []) if call["time"] <= step.answered]
        if at == len(polls) or not sent:
            continue
        delivered, call = polls[at], sent[-1]
        intake.append(max(0.0, delivered - step.accepted))
        middle.append(max(0.0, call["time"] - delivered))
        send.append(call["duration"] or 0.0)
        typed += any(delivered <= moment <= call["time"] for moment in typing.get(step.chat_id, []))
    return {
        "steps": len(intake),
        "intake": summary(intake),
        "app_and_rasa": summary(middle),
        "send": summary(send),
        "with_typing": typed,
    }
