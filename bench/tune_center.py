"""Choose LinearIntentClassifier's `center` (the SVM score below which a message is declined).

    .venv-rasa/bin/python -m bench.tune_center --data ../shared/data/clinc150 [--encoder var/encoders/all-MiniLM-L6-v2]
    .venv-rasa/bin/python -m bench.tune_center --data nlu --folds 5 --retrieval-intents

On a CLINC150-style directory it trains on train (+ oos_train) and scores the
validation split (val + oos_val); on other data (a Rasa data directory, a
CSV) it scores stratified cross-validation folds of the training data. The test
split is never read. For each candidate center it prints in-scope accuracy
(a declined message counts as a miss), out-of-scope recall and the
confident-wrong rate, and the center with the best out-of-scope recall among
those within `--max-accuracy-loss` of the best accuracy.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from bench.nlu import OUT_OF_SCOPE, Example, _optional_csv, read_csv, read_rasa


def folds(examples: Sequence[Example], k: int, seed: int = 0) -> list[tuple[list[Example], list[Example]]]:
    """Stratified k-fold splits: each intent's examples dealt round-robin after a seeded shuffle."""
    rng = random.Random(seed)
    parts: list[list[Example]] = [[] for _ in range(k)]
    by_intent: dict[str, list[Example]] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example)
    offset = 0
    for intent in sorted(by_intent):
        group = by_intent[intent][:]
        rng.shuffle(group)
        for i, example in enumerate(group):
            parts[(offset + i) % k].append(example)
        offset += len(group)
    return [([e for j, part in enumerate(parts) if j != i for e in part], parts[i]) for i in range(k)]


def fit_and_score(train: Sequence[Example], test: Sequence[Example], config: dict) -> tuple[list[str], np.ndarray]:
    """Train the component on `train`; return its classes and the SVM scores of `test`."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from nlu.components.linear_intent import LinearIntentClassifier

    with tempfile.TemporaryDirectory() as tmp:
        component = LinearIntentClassifier.create(
            {**LinearIntentClassifier.get_default_config(), **config},
            LocalModelStorage(Path(tmp)), Resource("linear"), ExecutionContext(GraphSchema({}), "tune"),
        )
        component.train(TrainingData([_message(e, Message) for e in train]))
        return component.classes, component.scores([e.text for e in test])


def _message(example: Example, message_class: type) -> object:
    """A training message as Rasa reads it: a retrieval intent (faq/topic) is intent `faq` with the full key."""
    from rasa.shared.nlu.constants import INTENT_RESPONSE_KEY

    message = message_class.build(text=example.text, intent=example.intent.split("/")[0])
    if "/" in example.intent:
        message.set(INTENT_RESPONSE_KEY, example.intent)
    return message


def sweep(truth: Sequence[str], classes: Sequence[str], scores: np.ndarray, centers: np.ndarray) -> list[dict]:
    """Accuracy, out-of-scope recall and confident-wrong rate at each candidate center.

    Without `retrieval_intents` the classes are base intents: a retrieval intent's truth counts as its base.
    """
    full = any("/" in name for name in classes)
    truth_arr = np.array([t if full else t.split("/")[0] for t in truth])
    predicted = np.array(classes)[scores.argmax(axis=1)]
    best = scores.max(axis=1)
    in_scope = truth_arr != OUT_OF_SCOPE
    rows = []
    for center in centers:
        declined = (best < center) | (predicted == OUT_OF_SCOPE)
        right = (predicted == truth_arr) & ~declined
        rows.append({
            "center": round(float(center), 3),
            "accuracy": float(right[in_scope].mean()),
            "oos_recall": float(declined[~in_scope].mean()) if (~in_scope).any() else None,
            "confident_wrong": float((~right & ~declined).mean()),
            "declined_in_scope": float(declined[in_scope].mean()),
        })
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max-accuracy-loss", type=float, default=0.01)
    parser.add_argument("--retrieval-intents", action="store_true", help="learn faq/<topic> as classes (config.yml does)")
    args = parser.parse_args(argv)
    config = {"encoder": args.encoder, "C": args.C, "retrieval_intents": args.retrieval_intents}

    if (args.data / "train.csv").is_file():
        train = read_csv(args.data / "train.csv") + _optional_csv(args.data / "oos_train.csv")
        val = read_csv(args.data / "val.csv") + _optional_csv(args.data / "oos_val.csv")
        splits = [(train, val)]
    else:
        examples = read_csv(args.data) if args.data.suffix == ".csv" else read_rasa(args.data)
        splits = folds(examples, args.folds)
    truth: list[str] = []
    all_scores = []
    classes: list[str] | None = None
    for number, (train, test) in enumerate(splits, start=1):
        fold_classes, scores = fit_and_score(train, test, config)
        if classes is None:
            classes = fold_classes
        # Align columns: a fold may miss a rare intent.
        aligned = np.full((len(test), len(classes)), -10.0, dtype=np.float32)
        for j, name in enumerate(fold_classes):
            if name in classes:
                aligned[:, classes.index(name)] = scores[:, j]
        truth += [e.intent for e in test]
        all_scores.append(aligned)
        print(f"split {number}/{len(splits)}: {len(train)} train, {len(test)} scored", flush=True)
    scores = np.vstack(all_scores)
    rows = sweep(truth, classes, scores, np.round(np.arange(-1.0, 0.41, 0.05), 2))
    for row in rows:
        oos = "–" if row["oos_recall"] is None else f"{100 * row['oos_recall']:.1f} %"
        print(f"center {row['center']:+.2f}: accuracy {100 * row['accuracy']:.1f} %, out-of-scope recall {oos}, "
              f"confident-wrong {100 * row['confident_wrong']:.1f} %, in-scope declined {100 * row['declined_in_scope']:.1f} %")
    top = max(row["accuracy"] for row in rows)
    eligible = [row for row in rows if row["accuracy"] >= top - args.max_accuracy_loss]
    chosen = max(eligible, key=lambda row: ((row["oos_recall"] or 0.0), -row["confident_wrong"]))
    print(f"chosen center {chosen['center']:+.2f} (best out-of-scope recall within {args.max_accuracy_loss:.0%} of the best accuracy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
