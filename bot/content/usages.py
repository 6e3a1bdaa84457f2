"""What uses an intent: rules, stories, slots, forms and responses' buttons (a delete or rename is refused then)."""

from __future__ import annotations

from typing import Any

import yaml

from bot.content.files import DOMAIN_FILE, Content, write_files


def usages(content: Content, name: str) -> list[str]:
    """Where rules, stories, forms and responses use the intent `name` (its own FAQ answer is not a use)."""
    files = write_files(content)
    found: list[str] = []
    for path, text in files.items():
        data = yaml.safe_load(text) or {}
        for kind in ("rules", "stories"):
            for item in data.get(kind) or []:
                if name in _step_intents(item.get("steps") or []):
                    found.append(
                        f'{kind[:-1] if kind == "rules" else "story"} "{item.get(kind[:-1] if kind == "rules" else "story")}" ({path})'
                    )
        if path == DOMAIN_FILE:
            for slot, spec in (data.get("slots") or {}).items():
                for mapping in (spec or {}).get("mappings") or []:
                    if name in _as_list(mapping.get("intent")) or name in _as_list(mapping.get("not_intent")):
                        found.append(f"slot {slot} (domain.yml)")
            for form, spec in (data.get("forms") or {}).items():
                if name in _as_list((spec or {}).get("ignored_intents")):
                    found.append(f"form {form} (domain.yml)")
    for response in content.responses.values():
        for variation in response.variations:
            for button in variation.get("buttons") or []:
                payload = str(button.get("payload", ""))
                if payload == f"/{name}" or payload.startswith(f"/{name}{{"):
                    found.append(f'response {response.name} (button "{button.get("title", "")}")')
    return sorted(set(found), key=found.index)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _step_intents(steps: list[Any]) -> set[str]:
    names: set[str] = set()
    for step in steps:
        if not isinstance(step, dict):
            continue
        if "intent" in step:
            names.add(str(step["intent"]))
        for alternative in step.get("or") or []:
            if isinstance(alternative, dict) and "intent" in alternative:
                names.add(str(alternative["intent"]))
    return names
