"""Rasa's content files (`domain.yml`, `nlu/*.yml`) as editable items in a fixed layout, and back.

A file is read into segments: raw text kept verbatim (rules, stories, slots, forms, comments between items)
and the items an admin edits (an intent's examples, the domain's list of intents, each response), which are
written back in one canonical form. Reading the repository's files and writing them again gives the same bytes,
so `frontline export` shows in a diff exactly what admins changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DOMAIN_FILE = "domain.yml"
NLU_DIR = "nlu"
INTENT_HEAD = re.compile(r"^  - intent: (\S+)\s*$")
EXAMPLES_HEAD = re.compile(r"^    examples: \|\s*$")
EXAMPLE_LINE = re.compile(r"^      - (.*)$")
ITEM_COMMENT = re.compile(r"^  #.*$")
DOMAIN_INTENT = re.compile(r"^  - (\S+)\s*$")
RESPONSE_HEAD = re.compile(r"^  (utter_\S+):\s*$")
TOP_LEVEL = re.compile(r"^\S")
VARIATION_KEYS = ("text", "image", "buttons", "custom", "condition", "channel")


class ContentError(ValueError):
    """Content that cannot be read, said so that an admin can fix it."""


@dataclass
class Intent:
    """An intent with its training examples (Rasa markup, entities annotated inline)."""

    name: str
    examples: list[str] = field(default_factory=list)
    comment: str = ""  # comment lines just above it in its nlu file
    file: str | None = None  # the nlu file it is written in; None: listed in the domain only
    listed: bool = False  # in the domain's `intents:` (retrieval sub-intents such as faq/x are not)
    domain_comment: str = ""


@dataclass
class Response:
    """A response: its variations (each a dict of text, buttons, ...) and the comment above it."""

    name: str
    variations: list[dict[str, Any]] = field(default_factory=list)
    comment: str = ""


@dataclass
class Content:
    """Everything an admin edits, and the layout of the files it is written into."""

    intents: dict[str, Intent] = field(default_factory=dict)  # in domain-list order, then file order
    responses: dict[str, Response] = field(default_factory=dict)  # in file order
    layouts: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # path -> segments

    def domain_intents(self) -> list[Intent]:
        """The intents of the domain's list, in its order."""
        return [i for i in self.intents.values() if i.listed]

    def file_intents(self, path: str) -> list[str]:
        """The names of the intents written in one nlu file, in order."""
        return [s["intent"] for s in self.layouts.get(path, []) if "intent" in s]


# --- reading --------------------------------------------------------------------------------------------


def read_tree(root: Path) -> Content:
    """Read `domain.yml` and every `nlu/*.yml` under `root`."""
    files = {DOMAIN_FILE: (root / DOMAIN_FILE).read_text(encoding="utf-8")}
    for path in sorted((root / NLU_DIR).glob("*.yml")):
        files[f"{NLU_DIR}/{path.name}"] = path.read_text(encoding="utf-8")
    return read_files(files)


def read_files(files: dict[str, str]) -> Content:
    """Read content from file texts keyed by their path relative to the project root."""
    if DOMAIN_FILE not in files:
        raise ContentError("domain.yml is missing")
    content = Content()
    _read_domain(files[DOMAIN_FILE], content)
    for path, text in files.items():
        if path != DOMAIN_FILE:
            _read_nlu(path, text, content)
    return content


def _yaml(path: str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContentError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ContentError(f"{path} must be a YAML mapping (version, nlu, rules, ...)")
    return data


def _block_end(lines: list[str], start: int) -> int:
    """The index of the next top-level line after `start`, or the end."""
    end = start + 1
    while end < len(lines) and not TOP_LEVEL.match(lines[end]):
        end += 1
    return end


def _trailing_blank(lines: list[str], start: int, end: int) -> int:
    """Move `end` back over blank lines, so they stay raw text after the block."""
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _read_domain(text: str, content: Content) -> None:
    data = _yaml(DOMAIN_FILE, text)
    lines = text.splitlines(keepends=True)
    segments: list[dict[str, str]] = []
    raw: list[str] = []
    i = 0
    while i < len(lines):
        key = lines[i].rstrip("\n")
        if key in ("intents:", "responses:"):
            end = _trailing_blank(lines, i + 1, _block_end(lines, i))
            raw.append(lines[i])
            segments.append({"raw": "".join(raw)})
            raw = []
            body = lines[i + 1 : end]
            if key == "intents:":
                _read_domain_intents(body, content)
                segments.append({"block": "intents"})
            else:
                _read_responses(body, content, data.get("responses") or {})
                segments.append({"block": "responses"})
            i = end
            continue
        raw.append(lines[i])
        i += 1
    segments.append({"raw": "".join(raw)})
    content.layouts[DOMAIN_FILE] = [s for s in segments if s.get("raw") != ""]
    _check_domain(data, content)


def _read_domain_intents(body: list[str], content: Content) -> None:
    comment: list[str] = []
    for line in body:
        if ITEM_COMMENT.match(line):
            comment.append(line)
        elif match := DOMAIN_INTENT.match(line):
            name = match.group(1)
            content.intents[name] = Intent(name, listed=True, domain_comment="".join(comment))
            comment = []
        else:
            raise ContentError(f"domain.yml: write each intent as '  - name' (found {line.strip()!r})")
    if comment:
        raise ContentError("domain.yml: a comment at the end of the intents list belongs to no intent")


def _read_responses(body: list[str], content: Content, parsed: dict[str, Any]) -> None:
    comment: list[str] = []
    i = 0
    while i < len(body):
        line = body[i]
        if not line.strip():
            if comment:
                raise ContentError("domain.yml: a comment in the responses must sit just above a response")
            i += 1
            continue
        if ITEM_COMMENT.match(line):
            comment.append(line)
            i += 1
            continue
        match = RESPONSE_HEAD.match(line)
        if not match:
            raise ContentError(f"domain.yml: expected a response name like '  utter_name:' (found {line.strip()!r})")
        end = i + 1
        while end < len(body) and body[end].startswith("    "):
            end += 1
        if match.group(1) not in parsed:
            raise ContentError(f"domain.yml: response {match.group(1)} could not be read")
        variations = parsed[match.group(1)]
        content.responses[match.group(1)] = Response(match.group(1), list(variations or []), "".join(comment))
        comment = []
        i = end


def _check_domain(data: dict[str, Any], content: Content) -> None:
    listed = [i.name for i in content.domain_intents()]
    if listed != [str(x) for x in data.get("intents") or []]:
        raise ContentError("domain.yml: the intents list could not be read line by line; write one '  - name' a line")
    if list(content.responses) != list(data.get("responses") or {}):
        raise ContentError("domain.yml: the responses could not be read line by line; start each with '  utter_name:'")


def _read_nlu(path: str, text: str, content: Content) -> None:
    data = _yaml(path, text)
    lines = text.splitlines(keepends=True)
    segments: list[dict[str, str]] = []
    raw: list[str] = []
    found: list[str] = []
    i = 0
    while i < len(lines):
        match = INTENT_HEAD.match(lines[i])
        if match and i + 1 < len(lines) and EXAMPLES_HEAD.match(lines[i + 1]):
            comment: list[str] = []
            while raw and ITEM_COMMENT.match(raw[-1]):
                comment.insert(0, raw.pop())
            segments.append({"raw": "".join(raw)})
            raw = []
            name = match.group(1)
            examples = []
            i += 2
            while i < len(lines) and (example := EXAMPLE_LINE.match(lines[i].rstrip("\n"))):
                examples.append(example.group(1))
                i += 1
            if name in content.intents and content.intents[name].file:
                raise ContentError(f"{path}: intent {name} already has examples in {content.intents[name].file}")
            intent = content.intents.setdefault(name, Intent(name))
            intent.examples, intent.comment, intent.file = examples, "".join(comment), path
            segments.append({"intent": name})
            found.append(name)
            continue
        raw.append(lines[i])
        i += 1
    segments.append({"raw": "".join(raw)})
    content.layouts[path] = [s for s in segments if s.get("raw") != ""]
    expected = [
        str(item.get("intent")) for item in data.get("nlu") or [] if isinstance(item, dict) and "intent" in item
    ]
    if expected != found:
        missing = sorted(set(expected) - set(found))
        raise ContentError(
            f"{path}: write intents as '  - intent: name' then '    examples: |' (could not read {missing})"
        )
    for name in found:
        parsed = next(item for item in data["nlu"] if isinstance(item, dict) and item.get("intent") == name)
        written = "".join(f"- {example}\n" for example in content.intents[name].examples)
        if str(parsed.get("examples", "")).rstrip("\n") != written.rstrip("\n"):
            raise ContentError(f"{path}: the examples of {name} must each be one line '      - example'")


# --- writing --------------------------------------------------------------------------------------------


def write_files(content: Content) -> dict[str, str]:
    """Every file's text, keyed by path relative to the project root."""
    out = {}
    for path, segments in content.layouts.items():
        parts = []
        for segment in segments:
            if "raw" in segment:
                parts.append(segment["raw"])
            elif "intent" in segment:
                parts.append(render_intent(content.intents[segment["intent"]]))
            elif segment["block"] == "intents":
                parts.append("".join(i.domain_comment + f"  - {i.name}\n" for i in content.domain_intents()))
            else:
                parts.append("\n".join(render_response(r) for r in content.responses.values()))
        out[path] = "".join(parts)
    return out


def write_tree(content: Content, root: Path) -> list[Path]:
    """Write every file under `root`; returns the paths written."""
    written = []
    for path, text in write_files(content).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def render_intent(intent: Intent) -> str:
    """An nlu item: `- intent:` with its examples."""
    lines = [intent.comment, f"  - intent: {intent.name}\n", "    examples: |\n"]
    lines += [f"      - {example}\n" for example in intent.examples]
    return "".join(lines)


def quote(value: str) -> str:
    """A YAML quoted scalar: single quotes for text with double quotes in it (button payloads with JSON),
    else double quotes (JSON's escaping is valid YAML)."""
    if '"' in value and "'" not in value and "\\" not in value and value.isprintable():
        return f"'{value}'"
    return json.dumps(value, ensure_ascii=False)


def render_response(response: Response) -> str:
    """A response under `responses:`: its comment, name and variations."""
    lines = [response.comment, f"  {response.name}:\n"]
    for variation in response.variations:
        first = True
        for key in sorted(variation, key=lambda k: (VARIATION_KEYS.index(k) if k in VARIATION_KEYS else 99, k)):
            lead = "    - " if first else "      "
            first = False
            value = variation[key]
            if key == "buttons" and isinstance(value, list):
                lines.append(f"{lead}buttons:\n")
                for button in value:
                    lines.append(f"        - title: {quote(str(button.get('title', '')))}\n")
                    lines.append(f"          payload: {quote(str(button.get('payload', '')))}\n")
            elif isinstance(value, str):
                lines.append(f"{lead}{key}: {quote(value)}\n")
            else:
                lines.append(f"{lead}{key}: {json.dumps(value, ensure_ascii=False, sort_keys=True)}\n")
    return "".join(lines)
