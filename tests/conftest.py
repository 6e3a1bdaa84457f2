"""Suite-wide rules: no test reaches beyond this machine; missing services skip, or fail in CI."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import socket

import pytest

REQUIRE_SERVICES = os.environ.get("FRONTLINE_REQUIRE_SERVICES") == "1"

# Two environments share this folder: tests/nlu runs in .venv-rasa (spaCy), the rest in .venv.
collect_ignore = ["nlu"] if importlib.util.find_spec("spacy") is None else ["unit", "e2e", "emulator"]


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing; in CI (FRONTLINE_REQUIRE_SERVICES=1) fail instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (FRONTLINE_REQUIRE_SERVICES=1 makes this a failure, not a skip)")
    pytest.skip(reason)


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # Unix sockets
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _no_internet() -> None:
    """Any connection to a non-loopback address fails the test that made it."""
    original = socket.socket.connect
    original_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: object) -> None:
        if not _is_local(address):
            raise RuntimeError(f"tests must not reach the network; tried {address!r}")
        return original(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if not _is_local(address):
            raise RuntimeError(f"tests must not reach the network; tried {address!r}")
        return original_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = original  # type: ignore[method-assign]
    socket.socket.connect_ex = original_ex  # type: ignore[method-assign]


@pytest.fixture
def clock():  # bot.clock imported here: tests/nlu's Python 3.10 never loads it
    """The app's clock (`bot.clock`): `set_to(moment, frozen=...)`, `freeze()`, `advance(delta)`, `now()`; put back
    after the test to where the process started it (the wall clock, or FRONTLINE_CLOCK's)."""
    from bot import clock as app_clock

    yield app_clock
    app_clock.reset()
