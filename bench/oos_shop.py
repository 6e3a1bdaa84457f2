"""The shipped assistant on the shop's out-of-scope test set: how much of what a shop does not serve it declines.

    make bench-oos-shop [CONFIG=config.yml]
    .venv-rasa/bin/python -m bench.oos_shop [--config config.yml] [--test tests/data/oos_shop.yml]

Trains the config on the shipped data (`nlu/`, with the domain) with `rasa train nlu` and serves it with `rasa run`,
as `make bench-nlu` does (bench/nlu.py), then parses every message of tests/data/oos_shop.yml (CLINC150 test
messages of intents a shop does not serve; see its header) and, with the same model, tests/data/heldout.yml.
Reported for the out-of-scope set: out-of-scope recall (declined: `out_of_scope` or `nlu_fallback`), the
confident-wrong rate (answered with an intent at a confidence at or above the FallbackClassifier threshold), the
intents it is answered with most, and the recall of each source block; for the held-out set the figures of
`make bench-nlu`. Results: var/bench/oos-shop[-<config>].json. The set is a test set: never tune on it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.fewshot_data import DECLINED, OUT_OF_SCOPE
from bench.nlu import RasaServer, prepare, rasa_env, train
from bench.nlu_data import ROOT, default_name, fallback_threshold, load_dataset, predicted_intent, read_rasa, score

SOURCE = re.compile(r"^\s*#\s*(CLINC150 [^:]+):\s*\d+\s*$")


def sources(path: Path) -> list[str]:
    """The source block of each example of an out-of-scope test file, in order (from its `# CLINC150 …` lines)."""
    names: list[str] = []
    current = "unknown"
    for line in path.read_text(encoding="utf-8").splitlines():
        found = SOURCE.match(line)
        if found:
            current = found.group(1)
        elif line.startswith("      - "):
            names.append(current)
    return names


def parse_all(server: RasaServer, texts: Sequence[str]) -> tuple[list[str], list[float]]:
    predicted, confidence = [], []
    for text in texts:
        name, conf = predicted_intent(server.parse(text))
        predicted.append(name)
        confidence.append(conf)
    return predicted, confidence


def out_of_scope_figures(
    predicted: Sequence[str], confidence: Sequence[float], threshold: float, blocks: Sequence[str]
) -> dict:
    declined = [name in DECLINED for name in predicted]
    wrong = [not d and conf >= threshold for d, conf in zip(declined, confidence)]
    by_block: dict[str, list[bool]] = {}
    for block, hit in zip(blocks, declined):
        by_block.setdefault(block, []).append(hit)
    return {
        "messages": len(predicted),
        "oos_recall": sum(declined) / len(predicted),
        "confident_wrong_rate": sum(wrong) / len(predicted),
        "answered_with": Counter(p for p, d in zip(predicted, declined) if not d).most_common(15),
        "recall_by_source": {block: round(sum(hits) / len(hits), 3) for block, hits in sorted(by_block.items())},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--test", type=Path, default=ROOT / "tests" / "data" / "oos_shop.yml")
    parser.add_argument("--heldout", type=Path, default=ROOT / "tests" / "data" / "heldout.yml")
    args = parser.parse_args(argv)
    config = args.config.resolve()
    threshold = fallback_threshold(config)
    oos = read_rasa(args.test)
    if any(example.intent != OUT_OF_SCOPE for example in oos):
        raise SystemExit(f"{args.test}: every example must be out_of_scope")
    blocks = sources(args.test)
    env = rasa_env()
    bench_dir = ROOT / "var" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-oos-shop-", dir=bench_dir) as tmp:
        work = Path(tmp)
        dataset = load_dataset(ROOT / "nlu", args.heldout, "test", work)
        prepare(config, env)
        model, seconds = train(dataset, config, work / "models", env)
        with RasaServer(model, env, work / "rasa.log") as server:
            oos_predicted, oos_confidence = parse_all(server, [example.text for example in oos])
            held_predicted, held_confidence = parse_all(server, [example.text for example in dataset.test])
    truth = [example.intent for example in dataset.test]
    name = default_name("oos-shop", config)
    result = {
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "test": str(args.test.relative_to(ROOT) if args.test.resolve().is_relative_to(ROOT) else args.test),
        "fallback_threshold": threshold,
        "train_seconds": round(seconds, 1),
        "out_of_scope_set": out_of_scope_figures(oos_predicted, oos_confidence, threshold, blocks),
        "heldout": score(truth, held_predicted, held_confidence, threshold),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    out = bench_dir / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    shop, held = result["out_of_scope_set"], result["heldout"]
    print(f"config {result['config']}, trained on nlu/ in {seconds:.1f} s; confidence threshold {threshold}")
    print(
        f"{result['test']} ({shop['messages']} messages): out-of-scope recall {100 * shop['oos_recall']:.1f} %, "
        f"confident-wrong {100 * shop['confident_wrong_rate']:.1f} %"
    )
    print("  answered with: " + ", ".join(f"{intent} {count}" for intent, count in shop["answered_with"]))
    worst = sorted(shop["recall_by_source"].items(), key=lambda item: item[1])[:8]
    print("  lowest recall: " + ", ".join(f"{block.removeprefix('CLINC150 ')} {100 * r:.0f} %" for block, r in worst))
    print(
        f"{args.heldout.name} ({held['examples']} messages), same model: accuracy {100 * held['accuracy']:.1f} %, "
        f"out-of-scope recall {100 * (held['oos_recall'] or 0):.1f} %, "
        f"confident-wrong {100 * held['confident_wrong_rate']:.1f} %"
    )
    print(f"wall time {result['wall_seconds']} s; written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
