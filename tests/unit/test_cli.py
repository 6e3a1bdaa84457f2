"""The processes refuse to start on malformed configuration, saying which variable and what is expected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FRONTLINE = Path(sys.executable).parent / "frontline"


@pytest.mark.parametrize("command", ["app", "actions", "rasa", "train"])
def test_malformed_configuration_stops_with_the_variable_named(command: str, tmp_path: Path) -> None:
    env = {**os.environ, "RASA_URL": "localhost:5005", "FRONTLINE_VAR": str(tmp_path)}
    result = subprocess.run([str(FRONTLINE), command], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "RASA_URL must be an http(s) URL" in result.stderr
    assert "Traceback" not in result.stderr
