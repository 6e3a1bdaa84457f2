"""Injected failures for Bot API calls."""

import random
from dataclasses import dataclass, field, fields
from typing import Any

FAULT_MODES = ("429", "500", "502", "slow", "drop", "400", "403")


@dataclass
class Fault:
    """One failure rule; `count` is how many calls it still hits (-1: until cleared).

    With `probability` below 1 the rule hits each matching call at random, drawing from its own
    generator seeded with `seed`: the same calls in the same order meet the same failures. A call the
    draw spares uses nothing of `count` and goes on to the next rule.
    """

    mode: str
    method: str = "*"
    chat_id: str | None = None
    count: int = 1
    retry_after: int = 1
    delay: float = 1.0
    probability: float = 1.0
    seed: int | None = None
    description: str = ""  # a 400's or 403's reason, as Telegram words it after "Bad Request: " or "Forbidden: "
    _draws: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**32)  # shown in the rule, so a run can be repeated
        self._draws = random.Random(self.seed)

    def matches(self, method: str, chat_id: str | None) -> bool:
        """Whether a call to `method` for `chat_id` is within this rule (before any random draw)."""
        if self.count == 0:
            return False
        if self.method != "*" and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def hits(self, method: str, chat_id: str | None) -> bool:
        """Whether this call fails by this rule: it matches and, for a random rule, the draw says so."""
        if not self.matches(method, chat_id):
            return False
        return self.probability >= 1.0 or self._draws.random() < self.probability

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready rule."""
        return {item.name: getattr(self, item.name) for item in fields(self) if not item.name.startswith("_")}


def fault_from_json(body: dict[str, Any]) -> Fault:
    """Build a rule from the control API's JSON, rejecting nonsense early."""
    mode = str(body.get("mode", ""))
    if mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
    count = int(body.get("count", 1))
    if count == 0 or count < -1:
        raise ValueError("count must be positive or -1")
    probability = float(body.get("probability", 1.0))
    if not 0.0 < probability <= 1.0:
        raise ValueError("probability must be above 0 and at most 1")
    retry_after = int(body.get("retry_after", 1))
    if retry_after < 1:
        raise ValueError("retry_after is whole seconds, at least 1")
    chat_id = body.get("chat_id")
    seed = body.get("seed")
    return Fault(
        mode=mode,
        method=str(body.get("method") or "*"),
        chat_id=None if chat_id is None else str(chat_id),
        count=count,
        retry_after=retry_after,
        delay=float(body.get("delay", 1.0)),
        probability=probability,
        seed=None if seed is None else int(seed),
        description=str(body.get("description") or ""),
    )


class FaultBook:
    """The active rules, consulted in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Activate a rule."""
        self._faults.append(fault)

    def clear(self) -> None:
        """Drop every rule."""
        self._faults.clear()

    def take(self, method: str, chat_id: str | None) -> Fault | None:
        """The first rule hitting this call, with one use consumed."""
        for fault in self._faults:
            if fault.hits(method, chat_id):
                if fault.count > 0:
                    fault.count -= 1
                self._faults = [rule for rule in self._faults if rule.count != 0]
                return fault
        return None

    def as_list(self) -> list[dict[str, Any]]:
        """JSON-ready rules."""
        return [fault.as_dict() for fault in self._faults]
