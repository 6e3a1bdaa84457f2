"""Fit `actions/faq.py`'s SURE: below it, a question the classifier gives a FAQ topic is searched in the articles first.

Validation data only: the help center's validation questions (tests/data/help_center_val.yml) and the FAQ topics'
validation phrasings (tests/data/faq_val.yml) are parsed by a trained model (the newest under var/models unless
`--model`), and those the classifier puts on a FAQ topic are searched in the shop's articles with the shipped decision
(bot/kb/decision.json). For each threshold, a question below it that an article answers confidently gets the article;
every other one keeps its FAQ answer. An article question answered with its article is right; with another article,
wrong; a FAQ phrasing taken by an article loses its topic's answer, and counts as wrong too. The threshold kept is the
lowest that maximises right minus wrong.

    .venv/bin/python -m bench.kb_faq_threshold [--model var/models/x.tar.gz] [--report tests/data/heldout.yml]

`--report` prints, for another question file (`questions:` with `article`, or the NLU held-out set's `faq/<topic>`
intents), what the chosen threshold does there; it is never used to choose.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import kb_data, nlu
from bench.kb_eval import ranked
from bench.kb_shop import PREFIX, VALIDATION, shop_index
from bench.nlu import RasaServer, rasa_env
from bot.kb.decision import load_model
from bot.kb.encoder import load_encoder

ROOT = Path(__file__).resolve().parents[1]
FAQ_VALIDATION = ROOT / "tests" / "data" / "faq_val.yml"
FAQ = "faq:"  # the expected answer of a FAQ phrasing: its topic, never an article
OUT = ROOT / "var" / "bench" / "kb_faq_threshold.json"
THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(11))  # 0.50 .. 1.00 (1.00: always search first)


@dataclass(frozen=True)
class Case:
    text: str
    expected: str | None  # the article that answers it (slug), None when no article does
    confidence: float  # the classifier's confidence in the FAQ topic
    article: str | None  # the article the help center answers with (slug), None when it declines


def newest_model() -> Path:
    models = sorted((ROOT / "var" / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit("no model under var/models: run `make train` first")
    return models[-1]


def questions(path: Path) -> list[tuple[str, str | None]]:
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "questions" in rows:
        return [
            (str(row["text"]), row.get("article") or (FAQ + row["topic"] if row.get("topic") else None))
            for row in rows["questions"]
        ]
    # The NLU held-out set: its FAQ topics' phrasings, which no article is expected to take over.
    return [
        (line.strip()[2:].strip(), None)
        for block in rows.get("nlu", [])
        if str(block.get("intent", "")).startswith("faq/")
        for line in str(block.get("examples", "")).splitlines()
        if line.strip().startswith("- ")
    ]


def faq_cases(model: Path, asked: list[tuple[str, str | None]]) -> list[Case]:
    """The questions the classifier puts on a FAQ topic, with its confidence and the help center's answer."""
    nlu.RASA_BIN = ROOT / ".venv-rasa" / "bin"  # this runs in the app's environment; Rasa in its own
    with RasaServer(model, rasa_env(), ROOT / "var" / "bench" / "kb_faq_threshold.rasa.log") as server:
        parsed = [(text, expected, server.parse(text)) for text, expected in asked]
    faq = [(t, e, p["intent"]["confidence"]) for t, e, p in parsed if p["intent"]["name"] == "faq"]
    encoder = load_encoder()
    decision = load_model()
    index = shop_index(encoder)
    queries = [kb_data.Query(text, "", False) for text, _, _ in faq]
    results = ranked(index, queries, encoder.encode([q.text for q in queries]), decision.ranking)
    cases = []
    for (text, expected, confidence), result in zip(faq, results, strict=True):
        top = result.hits[0] if result.hits else None
        article = top.article_id.removeprefix(PREFIX) if top and decision.answers(top.features) else None
        cases.append(Case(text, expected, float(confidence), article))
    return cases


def outcome(cases: Sequence[Case], threshold: float) -> dict[str, int]:
    """What the questions get at a threshold: right and wrong article answers (wrong counting the FAQ phrasings an
    article took, and questions no article answers), and FAQ answers kept."""
    to_article = [c for c in cases if c.confidence < threshold and c.article is not None]
    right = sum(c.article == c.expected for c in to_article)
    taken = sum(c.expected is None or c.expected.startswith(FAQ) for c in to_article)
    return {
        "right": right,
        "wrong": len(to_article) - right,
        "of_which_faq_taken": taken,
        "faq": len(cases) - len(to_article),
    }


def choose(cases: Sequence[Case]) -> float:
    """The lowest threshold with the most right minus wrong article answers."""
    return max(THRESHOLDS, key=lambda t: (outcome(cases, t)["right"] - outcome(cases, t)["wrong"], -t))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--report", type=Path, action="append", default=[], help="a question file to report on")
    args = parser.parse_args(argv)
    model = args.model or newest_model()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    asked = questions(VALIDATION) + questions(FAQ_VALIDATION)
    cases = faq_cases(model, asked)
    chosen = choose(cases)
    report: dict[str, object] = {
        "model": model.name,
        "validation": {
            "questions": len(asked),
            "on_a_faq_topic": len(cases),
            "by_threshold": {str(t): outcome(cases, t) for t in THRESHOLDS},
        },
        "chosen": chosen,
    }
    for path in args.report:
        other = faq_cases(model, questions(path))
        report[str(path)] = {"on_a_faq_topic": len(other), "at_chosen": outcome(other, chosen)}
    OUT.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
