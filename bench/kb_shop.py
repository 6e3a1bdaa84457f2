"""The help-center decision on the shop's own articles (help_center/*.md), library only (no Rasa).

A question file (`questions:` of `{text, article}`, `article: null` when the articles have no answer) is ranked
against the shop's articles split as the app splits them, and decided by a decision model:

    .venv/bin/python -m bench.kb_shop tests/data/help_center_val.yml [--model M] [--cache var/wt-kbval/vectors.npz]

`tests/data/help_center_val.yml` is the validation set the decision may be fit on (`bench/kb_fit.py --shop-val`);
`tests/data/help_center.yml` is sealed: run it to report, never to tune.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import yaml

from bench import kb_data
from bench.kb_eval import Ranked, build, decisions, ranked, retrieval
from bot.content import help_center
from bot.kb.decision import Model, load_model
from bot.kb.encoder import Encoder, load_encoder
from bot.kb.index import Index

ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "help_center"
VALIDATION = ROOT / "tests" / "data" / "help_center_val.yml"
PREFIX = "shop:"  # article ids of the shop, apart from StackFAQ's in a pooled fit


def shop_articles(directory: Path = SHOP) -> list[kb_data.Article]:
    """The shop's articles as the app reads and splits them (bot/content/help_center.py)."""
    return [
        kb_data.Article(PREFIX + item.slug, item.title, tuple(passage.text for passage in help_center.passages(item)))
        for item in help_center.read_folder(directory).articles
    ]


def shop_queries(path: Path) -> list[kb_data.Query]:
    """A question file's questions; an unanswerable one gets an id of its own (a fold group of its own)."""
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
    return [
        kb_data.Query(str(row["text"]), PREFIX + (row["article"] or f"none-{i}"), row["article"] is not None)
        for i, row in enumerate(rows)
    ]


def shop_index(encoder: Encoder, directory: Path = SHOP) -> Index:
    return build(shop_articles(directory), encoder)


def evaluate(model: Model, encoder: Encoder, questions: Path, directory: Path = SHOP) -> dict[str, object]:
    """Retrieval and decision figures of a question file, and CLINC150 oos_val declined, against the shop."""
    index = shop_index(encoder, directory)
    queries = shop_queries(questions)
    results: list[Ranked] = ranked(index, queries, encoder.encode([q.text for q in queries]), model.ranking)
    oos = [kb_data.Query(text, "", False) for text in kb_data.clinc_oos("val")]
    oos_results = ranked(index, oos, encoder.encode([q.text for q in oos]), model.ranking)
    answers = lambda hit: model.answers(hit.features)
    return {
        "questions": str(questions.relative_to(ROOT) if questions.is_relative_to(ROOT) else questions),
        **retrieval(results),
        **decisions(results, answers),
        "answerable_declined": sum(q.query.answerable and not (q.hits and answers(q.hits[0])) for q in results)
        / max(1, sum(q.query.answerable for q in results)),
        "clinc_oos_val_declined": decisions(oos_results, answers)["unanswerable_declined"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("questions", type=Path, nargs="?", default=VALIDATION)
    parser.add_argument("--model", type=Path, default=None, help="a decision model JSON (default: the shipped one)")
    parser.add_argument("--shop", type=Path, default=SHOP)
    parser.add_argument("--cache", type=Path, default=None, help="vectors by text hash (.npz), reused between runs")
    args = parser.parse_args(argv)
    model = load_model(args.model) if args.model else load_model()
    encoder = kb_data.VectorCache(load_encoder(), args.cache)
    print(json.dumps(evaluate(model, encoder, args.questions.resolve(), args.shop), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
