"""How long the console's quick check (bot/content/understanding.py) takes when an admin saves an intent.

    .venv/bin/python -m bench.console_check [--data ../shared/data/clinc150]

On the shipped content (read from the repository, as the database is seeded) and on CLINC150's training split
(150 intents, 100 examples each): the first check in a fresh process (nothing cached), then the slowest check of
every intent in turn (each intent's summary cached, as after an admin's save of another one), with the quick check's
mean recall over the intents. Then, with k = 5, 10, 20 examples per CLINC150 intent (seed 1): the check's mean
recall beside the accuracy of the same quick model on CLINC150's test split, which it never saw: the two agree when
the check counts nothing it learned from.
"""

from __future__ import annotations

import argparse
import collections
import csv
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.content import understanding
from bot.content.files import read_tree
from bot.rasa_runtime import ROOT


def measure(label: str, intents: Mapping[str, Sequence[str]], limit: int | None = None) -> None:
    names = [name for name, examples in intents.items() if examples][:limit]
    started = time.perf_counter()
    understanding.check(intents, names[0])
    first = time.perf_counter() - started
    slowest, recalls = 0.0, []
    for name in names:
        started = time.perf_counter()
        result = understanding.check(intents, name)
        slowest = max(slowest, time.perf_counter() - started)
        recalls.append(result.recall or 0.0)
    print(
        f"{label}: {len(names)} intents checked of {sum(1 for e in intents.values() if e)}, "
        f"{sum(len(e) for e in intents.values())} examples; first check {first:.2f} s, slowest after {slowest:.2f} s, "
        f"mean recall {sum(recalls) / len(recalls):.1%}, under {understanding.MIN_RECALL:.0%}: "
        f"{sum(r < understanding.MIN_RECALL for r in recalls)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    args = parser.parse_args()
    content = read_tree(ROOT)
    measure("shipped", {name: intent.examples for name, intent in content.intents.items()})
    clinc: dict[str, list[str]] = collections.defaultdict(list)
    with (args.data / "train.csv").open(encoding="utf-8") as rows:
        for text, category in csv.reader(rows):
            if category != "category":
                clinc[category].append(text)
    measure("CLINC150 train", clinc, limit=20)
    with (args.data / "test.csv").open(encoding="utf-8") as rows:
        test = [(text, category) for text, category in csv.reader(rows) if category != "category"]
    for shots in (5, 10, 20):
        rng = random.Random(1)
        few = {name: rng.sample(examples, shots) for name, examples in clinc.items()}
        recalls = [understanding.check(few, name).recall or 0.0 for name in few]
        nearest = understanding.Nearest(few)
        right = sum((nearest.nearest(text) or ("",))[0] == category for text, category in test)
        print(
            f"CLINC150 {shots}-shot: check's mean recall {sum(recalls) / len(recalls):.1%} "
            f"(under {understanding.MIN_RECALL:.0%}: {sum(r < understanding.MIN_RECALL for r in recalls)} of "
            f"{len(recalls)}), the same model on the test split {right / len(test):.1%}"
        )


if __name__ == "__main__":
    main()
