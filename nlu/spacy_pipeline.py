"""Build Frontline's spaCy pipeline (tokenizer, lookup lemmatizer, entity rules) for Rasa's SpacyNLP.

Pretrained spaCy pipelines cannot be downloaded here, so the project builds its
own from `spacy.blank("en")` and the rules in `nlu/entity_patterns.jsonl`:

    python -m nlu.spacy_pipeline [--out var/spacy/frontline_en] [--order-number-pattern REGEX]
                                 [--patterns nlu/entity_patterns.jsonl] [--force]

Order numbers: the regular expression comes from `--order-number-pattern`, else
the environment variable `ORDER_NUMBER_PATTERN`, else `DEFAULT_ORDER_NUMBER_PATTERN`.
It must match a whole order number, compared case-insensitively, and an order
number is one word: the tokenizer keeps any whitespace-delimited word the regex
matches as a single token (after stripping surrounding punctuation such as
"(#A12345)."), so formats with hyphens or slashes (`ORD-[0-9]{6}`) work, and
formats with spaces cannot. The patterns file refers to the regex with the
placeholder `${ORDER_NUMBER_PATTERN}`. When a token could be both an order number
and a phone number (an all-digit order format), it is an order number.

The output is skipped when it exists and its fingerprint file
(`<out>.fingerprint.json`) shows it was built from the same inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import warnings
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spacy.language import Language

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "var" / "spacy" / "frontline_en"
DEFAULT_PATTERNS = Path(__file__).resolve().parent / "entity_patterns.jsonl"

ORDER_NUMBER_ENV = "ORDER_NUMBER_PATTERN"
# One to three letters then four to ten digits, e.g. A12345 or NW20240117.
DEFAULT_ORDER_NUMBER_PATTERN = "[A-Za-z]{1,3}[0-9]{4,10}"
ORDER_NUMBER_PLACEHOLDER = "${ORDER_NUMBER_PATTERN}"

ORDER_NUMBER_LABEL = "order_number"
LABELS = frozenset({ORDER_NUMBER_LABEL, "email", "phone"})

# "(555)123-4567" and "+44(0)20" otherwise come out as tokens like "555)123";
# splitting brackets between digits lets the phone rules see the groups.
DIGIT_BRACKET_INFIX = r"(?<=[0-9])[()](?=[0-9])"
MAILTO_PREFIX = r"[Mm][Aa][Ii][Ll][Tt][Oo]:"
SLASH_AFTER_LETTER_SUFFIX = r"(?<=[A-Za-z])/"


class PipelineConfigError(ValueError):
    """A setting or rules file the builder cannot use; the message says what to fix."""


def order_number_regex(pattern: str) -> re.Pattern[str]:
    """Compile the configured order-number regex so it matches a whole token, ignoring case."""
    # Flags inside the pattern would land mid-expression once anchored: Python
    # 3.10 only warns about that and later versions refuse, so refuse now.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            re.compile(pattern)
            whole = re.compile(rf"(?i)\A(?:{pattern})\Z")
        except (re.error, DeprecationWarning) as error:
            raise PipelineConfigError(
                f"{ORDER_NUMBER_ENV} is not a valid regular expression ({error}): {pattern!r}. "
                f"Set it (or --order-number-pattern) to a Python regex without inline flags "
                f"(it is matched case-insensitively), such as {DEFAULT_ORDER_NUMBER_PATTERN!r}."
            ) from error
    if whole.match(""):
        raise PipelineConfigError(
            f"{ORDER_NUMBER_ENV} matches empty text: {pattern!r}. "
            f"It must describe a whole order number, e.g. {DEFAULT_ORDER_NUMBER_PATTERN!r}."
        )
    return whole


def configured_order_number_pattern(cli_value: str | None) -> str:
    """Return the order-number regex: the CLI flag, else the environment, else the default."""
    if cli_value is not None:
        return cli_value
    # An empty value (`ORDER_NUMBER_PATTERN=` in an env file) means "not set".
    return os.environ.get(ORDER_NUMBER_ENV, "").strip() or DEFAULT_ORDER_NUMBER_PATTERN


def load_patterns(path: Path) -> list[dict[str, Any]]:
    """Read entity-ruler patterns, one JSON object a line; blank lines are ignored."""
    patterns = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            pattern = json.loads(line)
        except json.JSONDecodeError as error:
            raise PipelineConfigError(f"{path}:{number}: not valid JSON ({error})") from error
        if pattern.get("label") not in LABELS:
            raise PipelineConfigError(f"{path}:{number}: label {pattern.get('label')!r} is not one of {sorted(LABELS)}")
        patterns.append(pattern)
    return patterns


def fill_placeholder(value: Any, regex: str) -> Any:
    """Return a copy of a pattern with every placeholder string replaced by `regex`."""
    if value == ORDER_NUMBER_PLACEHOLDER:
        return regex
    if isinstance(value, dict):
        return {key: fill_placeholder(item, regex) for key, item in value.items()}
    if isinstance(value, list):
        return [fill_placeholder(item, regex) for item in value]
    return value


def resolve_patterns(patterns: Sequence[dict[str, Any]], order_regex: re.Pattern[str]) -> list[dict[str, Any]]:
    """Fill the order-number placeholder; fail if no rule uses it."""
    resolved = [fill_placeholder(pattern, order_regex.pattern) for pattern in patterns]
    if resolved == list(patterns):
        raise PipelineConfigError(
            f"no pattern uses {ORDER_NUMBER_PLACEHOLDER} as a whole value, so {ORDER_NUMBER_ENV} would be ignored"
        )
    return resolved


def build_pipeline(patterns: Sequence[dict[str, Any]], order_regex: re.Pattern[str]) -> Language:
    """Assemble the blank English pipeline with the lookup lemmatizer and the entity rules."""
    # Imported here: importing spaCy takes seconds, and an up-to-date check needs none of it.
    import spacy
    from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    # Two rulers so an order number wins over a phone: the second ruler does not
    # overwrite entities the first one set, whereas one ruler picks arbitrarily
    # between same-length matches.
    order_ruler = nlp.add_pipe("entity_ruler", name="order_number_ruler", config={"validate": True})
    contact_ruler = nlp.add_pipe("entity_ruler", name="contact_ruler", config={"validate": True})
    nlp.initialize()  # loads the lemma tables from spacy-lookups-data; clears ruler patterns
    nlp.tokenizer.token_match = order_regex.match
    nlp.tokenizer.infix_finditer = compile_infix_regex([*nlp.Defaults.infixes, DIGIT_BRACKET_INFIX]).finditer
    # Pasted links: "mailto:jane@example.com" and "jane@example.com/" otherwise stay
    # one token that is not LIKE_EMAIL (or an email with the slash in it).
    nlp.tokenizer.prefix_search = compile_prefix_regex([MAILTO_PREFIX, *nlp.Defaults.prefixes]).search
    nlp.tokenizer.suffix_search = compile_suffix_regex([*nlp.Defaults.suffixes, SLASH_AFTER_LETTER_SUFFIX]).search
    order_ruler.add_patterns([p for p in patterns if p["label"] == ORDER_NUMBER_LABEL])
    contact_ruler.add_patterns([p for p in patterns if p["label"] != ORDER_NUMBER_LABEL])
    nlp.meta["name"] = "frontline_en"
    nlp.meta["description"] = "Frontline: blank English, lookup lemmas, rule-based order_number/email/phone"
    return nlp


def fingerprint(patterns_path: Path, order_number_pattern: str) -> dict[str, str]:
    """Describe every input the built pipeline depends on."""
    return {
        "patterns_sha256": hashlib.sha256(patterns_path.read_bytes()).hexdigest(),
        "order_number_pattern": order_number_pattern,
        "spacy": version("spacy"),
        "spacy_lookups_data": version("spacy-lookups-data"),
        "builder_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }


def fingerprint_path(out: Path) -> Path:
    """Where the fingerprint of the pipeline at `out` is kept."""
    return out.with_name(out.name + ".fingerprint.json")


def is_up_to_date(out: Path, expected: dict[str, str]) -> bool:
    """True when `out` holds a pipeline built from exactly these inputs."""
    try:
        recorded = json.loads(fingerprint_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == expected and (out / "config.cfg").is_file()


def build(out: Path, patterns_path: Path, order_number_pattern: str, force: bool = False) -> bool:
    """Build and save the pipeline unless it is up to date; return whether it was built."""
    order_regex = order_number_regex(order_number_pattern)
    expected = fingerprint(patterns_path, order_number_pattern)
    if not force and is_up_to_date(out, expected):
        return False
    nlp = build_pipeline(resolve_patterns(load_patterns(patterns_path), order_regex), order_regex)
    # Save beside the target and swap it in, so a failed build never leaves a
    # half-written pipeline that a matching fingerprint would vouch for.
    out.parent.mkdir(parents=True, exist_ok=True)
    fingerprint_path(out).unlink(missing_ok=True)
    staging = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        nlp.to_disk(staging)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fingerprint_path(out).write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m nlu.spacy_pipeline",
        description="Build Frontline's spaCy pipeline for Rasa's SpacyNLP (skipped when up to date).",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    parser.add_argument(
        "--patterns", type=Path, default=DEFAULT_PATTERNS, help="entity-ruler patterns, JSONL (default: %(default)s)"
    )
    parser.add_argument(
        "--order-number-pattern",
        metavar="REGEX",
        help=f"order-number regex, matched case-insensitively against a whole word; overrides "
        f"${ORDER_NUMBER_ENV} (default: {DEFAULT_ORDER_NUMBER_PATTERN})",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when the output is up to date")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the pipeline from the command line; exit 2 on a configuration or file error."""
    args = parse_args(argv)
    pattern = configured_order_number_pattern(args.order_number_pattern)
    try:
        built = build(args.out, args.patterns, pattern, force=args.force)
    except (PipelineConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'built' if built else 'up to date'}: {args.out} (order numbers: {pattern})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
