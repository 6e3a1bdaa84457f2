"""A blocked customer's updates (bot/desk/blocking.py): stored, and answered by nobody."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, None]])


class Blocked(Exception):
    """Raised once a blocked customer's update is stored: nothing answers it, neither Rasa nor the agents."""


class ForTheDesk(Exception):
    """Raised before anything is stored when a chat the handlers took for a customer's is an agent's desk, as the
    database says (registered through another process or machine a moment ago): the update goes to the desk."""

    def __init__(self, chat_id: int) -> None:
        super().__init__(chat_id)
        self.chat_id = chat_id


def silent_when_blocked(handler: F) -> F:
    """A handler whose update, from a blocked customer, ends once stored."""

    @functools.wraps(handler)
    async def guarded(*args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(Blocked):
            await handler(*args, **kwargs)

    return cast("F", guarded)
