"""Where a step's time goes through the emulator, read from its Bot API call log (one clock: the emulator's).

For each answered step (its chat, when the customer began to send its message, when the answer was logged):
- `intake`: from the message to the end of the first getUpdates answered after it began (the app's long poll; at
  high concurrency a poll that carried another chat's update may end in between, so this errs short);
- `app_and_rasa`: from there to the arrival of the call that sent the answer (the app's work, Rasa's answer, the
  typing action on the way, any wait behind the chat's earlier messages or a "retry after");
- `send`: that call's own time at the emulator (the Bot API's answer);
- `typing`: whether a chat action was sent in the chat on the way (the app shows "typing…" after 0.5 s).
With Rasa's trackers (its events carry the times Rasa took a message and uttered each answer), `app_and_rasa` splits
further: `to_rasa` (the app's intake to Rasa's taking the message: the inbox, the arrival's transaction, the HTTP
call, and Rasa's NLU, as Rasa stamps a message once it has parsed it), `rasa` (Rasa's policies, actions and NLG calls)
and `after_rasa` (from Rasa's last utterance to the answer's send: Rasa's tracker save and HTTP answer, then the
typing action let finish, the record's transaction, the chat's lock, python-telegram-bot's rate limiter).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench._common import summary


@dataclass(frozen=True)
class Answered:
    """A step answered through the emulator: its chat, when its message began to be sent, when its answer was logged
    (the emulator answers the app's waiting getUpdates before it answers the customer: so not from the acceptance)."""

    chat_id: int
    sent: float
    answered: float


def rasa_turns(events: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """From a Rasa tracker's events: for each user message, when Rasa took it and when it uttered its last answer
    to it (the same moment when it said nothing)."""
    turns: list[tuple[float, float]] = []
    for event in events:
        if event.get("event") == "user":
            turns.append((event["timestamp"], event["timestamp"]))
        elif event.get("event") == "bot" and turns:
            turns[-1] = (turns[-1][0], event["timestamp"])
    return turns


def rasa_own(turns: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Percentiles of Rasa's own time per message (from taking it to its last utterance)."""
    return summary([answered - taken for taken, answered in turns])


def hops(
    steps: Sequence[Answered],
    calls: Sequence[dict[str, Any]],
    turns: dict[int, list[tuple[float, float]]] | None = None,
) -> dict[str, Any]:
    """Percentiles of each hop of the answered steps (see the module), and how many of them waited for typing;
    with `turns` (rasa_turns of each chat's tracker), Rasa's part apart."""
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
    to_rasa, rasa, after_rasa = [], [], []
    for step in steps:
        at = bisect.bisect_left(polls, step.sent)
        # The call that sent the answer: the chat's last accepted send that arrived before the answer was logged.
        sent = [call for call in sends.get(step.chat_id, []) if call["time"] <= step.answered]
        if at == len(polls) or not sent:
            continue
        delivered, call = polls[at], sent[-1]
        intake.append(max(0.0, delivered - step.sent))
        middle.append(max(0.0, call["time"] - delivered))
        send.append(call["duration"] or 0.0)
        typed += any(delivered <= moment <= call["time"] for moment in typing.get(step.chat_id, []))
        turn = next((each for each in (turns or {}).get(step.chat_id, []) if each[0] >= step.sent), None)
        if turn is not None and turn[0] <= call["time"]:
            to_rasa.append(max(0.0, turn[0] - delivered))
            rasa.append(turn[1] - turn[0])
            after_rasa.append(max(0.0, call["time"] - turn[1]))
    found = {
        "steps": len(intake),
        "intake": summary(intake),
        "app_and_rasa": summary(middle),
        "send": summary(send),
        "with_typing": typed,
    }
    if turns is not None:
        found |= {"to_rasa": summary(to_rasa), "rasa": summary(rasa), "after_rasa": summary(after_rasa)}
    return found
