"""Injected failures for Bot API calls."""

from dataclasses import asdict, dataclass
from typing import Any

FAULT_MODES = ("429", "500", "502", "slow", "drop")


@dataclass
class Fault:
    """One failure rule; `count` is how many calls it still hits (-1: until cleared)."""

    mode: str
    method: str = "*"
    chat_id: str | None = None
    count: int = 1
    retry_after: int = 1
    delay: float = 1.0

    def matches(self, method: str, chat_id: str | None) -> bool:
        """Whether a call to `method` for `chat_id` is hit by this rule."""
        if self.count == 0:
            return False
        if self.method != "*" and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready rule."""
        return asdict(self)


def fault_from_json(body: dict[str, Any]) -> Fault:
    """Build a rule from the control API's JSON, rejecting nonsense early."""
    mode = str(body.get("mode", ""))
    if mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
    count = int(body.get("count", 1))
    if count == 0 or count < -1:
        raise ValueError("count must be positive or -1")
    chat_id = body.get("chat_id")
    return Fault(
        mode=mode,
        method=str(body.get("method") or "*"),
        chat_id=None if chat_id is None else str(chat_id),
        count=count,
        retry_after=int(body.get("retry_after", 1)),
        delay=float(body.get("delay", 1.0)),
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
            if fault.matches(method, chat_id):
                if fault.count > 0:
                    fault.count -= 1
                self._faults = [rule for rule in self._faults if rule.count != 0]
                return fault
        return None

    def as_list(self) -> list[dict[str, Any]]:
        """JSON-ready rules."""
        return [fault.as_dict() for fault in self._faults]
