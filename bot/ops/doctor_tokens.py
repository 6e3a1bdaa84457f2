"""The doctor and the tokens between the processes (bot/tokens.py): where each comes from, and what a refusal means."""

from __future__ import annotations

from bot import tokens
from bot.config import Settings
from bot.ops.findings import FAIL, Finding


def lines(settings: Settings) -> tuple[str, ...]:
    """One line per token for the configuration: set, generated (where), or missing. Never the token itself."""
    shown = []
    for name, variable in tokens.NAMES.items():
        if getattr(settings, f"{name}_token"):
            where = "(set)"
        elif tokens.configured(settings, name):
            where = f"(generated in {tokens.path(settings, name)})"
        else:
            where = "(missing: the first process to start generates it under FRONTLINE_VAR)"
        shown.append(f"{variable:<20} {where}")
    return tuple(shown)


def headers(settings: Settings, name: str) -> dict[str, str]:
    """The header carrying token `name`, when this machine has it (the doctor never generates one)."""
    value = tokens.configured(settings, name)
    return tokens.bearer(value) if value else {}


def query(settings: Settings, name: str) -> dict[str, str]:
    """Token `name` as the query parameter Rasa's HTTP API reads (`--auth-token`), when this machine has it."""
    value = tokens.configured(settings, name)
    return {"token": value} if value else {}


def refused(settings: Settings, check: str, name: str, who: str) -> Finding:
    """A server answered 401: our token is missing, or differs from the one it checks."""
    variable = tokens.NAMES[name]
    if tokens.configured(settings, name) is None:
        detail = f"refused: no {variable} here (neither set nor generated under {settings.var_dir})"
    else:
        detail = f"refused {variable}: it differs from the one {who} checks"
    return Finding(
        FAIL,
        check,
        detail,
        f"Give {who} and its callers the same {variable}: run them with one FRONTLINE_VAR, "
        f"or set {variable} to the same value on every machine (docs/deployment.md).",
    )
