"""Fit FewShotIntentClassifier's shipped calibration on CLINC150's train/validation split (never its test split).

    .venv-rasa/bin/python -m bench.fewshot_calibrate [--shots 5 10 20] [--seeds 0 1] [--blend 0 0.5 1 2] [--write]

For each k and seed it draws k examples per intent from `train.csv`, leaving a seeded share of the intents out
(`--leave-out`): their `val.csv` messages and all of `oos_val.csv` are the strangers. It trains
FewShotIntentClassifier in-process and scores every `val.csv` + `oos_val.csv` message. For each `--blend` (the
nearest-example cosine's weight in the ranking) it prints the top-1 in-scope accuracy, fits the logistic model of
"the best intent is right" over (score, margin, cosine, cosine margin) on all draws together (strangers weigh as
much as the in-scope messages together), and prints the curve of in-scope accuracy, out-of-scope recall and
confident-wrong over all messages against the threshold. The operating point: the lowest threshold whose
out-of-scope recall on these strangers is at least `--target-recall`. With `--write` the weights of the best blend
(highest in-scope accuracy at that point) go to nlu/components/fewshot_calibration.json.txt.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.fewshot import CACHE
from bench.fewshot_data import OUT_OF_SCOPE, draw
from bench.nlu_data import ROOT, Example, _optional_csv, read_csv
from bench.tune_center import _load_embedding_cache, _message, _save_embedding_cache
from encoder.tuning_loss import LOSSES

NAMES = ("score", "margin", "neighbour", "neighbour_margin", "log_examples")
# Besides NAMES, what --features may add (nlu/components/fewshot_intent.py: evidence, derived).
MORE = ("centroid", "agree", "score_log_examples", "neighbour_log_examples")


def left_out(intents: Sequence[str], share: float, seed: int) -> set[str]:
    """A seeded share of the intents, played as strangers."""
    chosen = sorted(intents)
    random.Random(f"leave-out:{seed}").shuffle(chosen)
    return set(chosen[: round(share * len(chosen))])


@contextlib.contextmanager
def trained(examples: Sequence[Example], config: dict[str, Any]) -> Iterator[Any]:
    """FewShotIntentClassifier trained on `examples` with `config`, the SVM's scores unblended and uncalibrated
    (what the calibration is fit on), its model storage a temporary directory removed afterwards."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from nlu.components.fewshot_intent import FewShotIntentClassifier

    with tempfile.TemporaryDirectory() as tmp:
        component = FewShotIntentClassifier.create(
            {
                **FewShotIntentClassifier.get_default_config(),
                **config,
                "calibration": {"score": 1.0},
                "neighbour_blend": 0,
            },
            LocalModelStorage(Path(tmp)),
            Resource("fewshot"),
            ExecutionContext(GraphSchema({}), "calibrate"),
        )
        component.train(TrainingData([_message(e, Message) for e in examples]))
        yield component


def score_draw(
    train: Sequence[Example], texts: Sequence[str], config: dict[str, Any]
) -> tuple[list[str], Any, dict[str, Any]]:
    """Train on `train`; the classes, the linear SVM scores and the per-class evidence of `texts` (the
    nearest-example cosine, the log of each class's number of examples, the cosine to its mean example...)."""
    with trained(train, config) as component:
        texts = list(texts)
        found = component.extra_features(texts)
        scores = component.scores(texts)  # the linear SVM's: no blend
        return component.classes, scores, found


def top_features(
    scores: np.ndarray, extra: dict[str, np.ndarray], blend: float, names: Sequence[str] = NAMES
) -> tuple[np.ndarray, np.ndarray]:
    """The best class under the blend and its calibration features (`names` order)."""
    from nlu.components.fewshot_intent import blend as blended
    from nlu.components.fewshot_intent import derived, margins

    ranked = blended(scores, extra["neighbour"], blend)
    best = ranked.argmax(axis=1)
    rows = np.arange(len(ranked))
    found = {"score": ranked, "margin": margins(ranked)} | derived(ranked, extra)
    return best, np.column_stack([found[name][rows, best] for name in names])


def fit(features: np.ndarray, right: np.ndarray, stranger: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    weight = np.where(stranger, (~stranger).sum() / max(stranger.sum(), 1), 1.0)
    model = LogisticRegression(C=10.0, max_iter=2000).fit(features, right.astype(int), sample_weight=weight)
    return model.coef_[0], float(model.intercept_[0])


def curve(logit: np.ndarray, right: np.ndarray, stranger: np.ndarray, shifts: np.ndarray) -> list[dict[str, float]]:
    rows = []
    for shift in shifts:
        answered = logit >= shift
        rows.append(
            {
                "shift": float(shift),
                "accuracy": float((right & answered)[~stranger].mean()),
                "oos_recall": float((~answered)[stranger].mean()),
                "confident_wrong": float((answered & ~right).mean()),
            }
        )
    return rows


def size_line(
    logit: np.ndarray, judged: np.ndarray, sizes: np.ndarray, target: float, shifts: np.ndarray
) -> tuple[float, float]:
    """The threshold a + b * log(k) (least squares) through each k's lowest shift at which the `judged` messages
    of that k's draws are declined at least `target` of the time: one recall for 5 examples an intent and 50."""
    points = []
    for k in np.unique(sizes):
        rows = (sizes == k) & judged
        points.append((np.log(k), min(shift for shift in shifts if (logit[rows] < shift).mean() >= target)))
    if len(points) < 2:
        return points[0][1], 0.0
    b, a = np.polyfit(*zip(*points), 1)
    return float(a), float(b)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--blend", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    parser.add_argument("--encoder-weight", type=float, default=2.0)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--leave-out", type=float, default=0.2)
    parser.add_argument("--target-recall", type=float, default=0.8)
    parser.add_argument("--operating", choices=("left-out", "oos_val", "oos_val-by-size"), default="left-out")
    parser.add_argument("--features", nargs="*", default=[], choices=MORE, help="weighed besides " + ", ".join(NAMES))
    parser.add_argument("--cache", type=Path, default=CACHE, help="the sentence embeddings, by text")
    parser.add_argument("--encoder", default=None, help="the sentence encoder's directory (default: MiniLM-L6's)")
    parser.add_argument("--write", action="store_true", help="write the calibration for --encoder (calibration_for)")
    parser.add_argument("--tune-last-layer", action="store_true", help="each draw tunes the encoder's last layer")
    parser.add_argument("--tune-loss", choices=LOSSES, default="proto", help="the tuning's loss")
    parser.add_argument("--no-strangers", action="store_true", help="tune without the shipped strangers")
    args = parser.parse_args(argv)
    from nlu.components.fewshot_intent import DEFAULT_ENCODER, calibration_file

    args.encoder = args.encoder or DEFAULT_ENCODER
    names = NAMES + tuple(args.features)
    config = {"encoder_weight": args.encoder_weight, "C": args.C, "encoder": args.encoder}
    encoder = args.encoder
    if args.tune_last_layer:
        from encoder.tuned import Frozen

        config["tune_last_layer"] = True
        config["tune_loss"] = args.tune_loss
        if args.no_strangers:
            config["strangers"] = None
        Frozen.get(encoder).keep = 1 << 30  # every draw reads the same val texts: their frozen states once
    _load_embedding_cache(encoder, args.cache)
    train = read_csv(args.data / "train.csv")
    val = read_csv(args.data / "val.csv") + _optional_csv(args.data / "oos_val.csv")
    texts = [e.text for e in val]
    real = np.array([e.intent == OUT_OF_SCOPE for e in val])  # oos_val: CLINC's own strangers
    draws = []
    for k in args.shots:
        for seed in args.seeds:
            out = left_out({e.intent for e in train}, args.leave_out, seed)
            examples = [e for e in draw(train, k, seed) if e.intent not in out]
            classes, scores, extra = score_draw(examples, texts, config)
            truth = np.array([OUT_OF_SCOPE if e.intent in out else e.intent for e in val])
            draws.append((k, seed, np.array(classes), scores, extra, truth))
            print(f"k={k} seed={seed}: {len(examples)} examples, {len(classes)} intents", flush=True)
    _save_embedding_cache(encoder, args.cache)
    results = []
    for weight in args.blend:
        parts = []
        for k, seed, classes, scores, extra, truth in draws:
            best, features = top_features(scores, extra, weight, names)
            parts.append((k, features, classes[best] == truth, truth == OUT_OF_SCOPE, real))
        features = np.vstack([p[1] for p in parts])
        right = np.concatenate([p[2] for p in parts])
        stranger = np.concatenate([p[3] for p in parts])
        coef, bias = fit(features, right, stranger)
        logit = features @ coef + bias
        # Beside it, the plain rule (answer when the best score reaches a center) at the same recall target.
        plain = curve(features[:, 0], right, stranger, np.round(np.arange(-1.5, 1.501, 0.01), 2))
        plain_chosen = min((r for r in plain if r["oos_recall"] >= args.target_recall), key=lambda r: r["shift"])
        shifts = np.round(np.arange(-3.0, 3.001, 0.02), 2)
        # The operating point: by the recall of the left-out intents, or (--operating oos_val) of oos_val's messages;
        # oos_val-by-size: a threshold a + b * log(k) through each k's own point for oos_val's messages.
        judged = stranger if args.operating == "left-out" else np.concatenate([p[4] for p in parts])
        sizes = np.concatenate([np.full(len(p[2]), p[0]) for p in parts])
        if args.operating == "oos_val-by-size":
            a, b = size_line(logit, judged, sizes, args.target_recall, shifts)
        else:
            a, b = (
                min(r["shift"] for r in curve(logit, right, judged, shifts) if r["oos_recall"] >= args.target_recall),
                0.0,
            )
        logit = logit - (a + b * np.log(sizes))
        chosen = curve(logit, right, stranger, np.array([0.0]))[0] | {"shift": a, "shift_per_log_k": b}
        top1 = {k: float(np.mean([p[2][~p[3]].mean() for p in parts if p[0] == k])) for k in args.shots}
        per_k = {}
        offset = 0
        for k, f, r, s, _ in parts:
            n = len(r)
            per_k.setdefault(k, []).append(curve(logit[offset : offset + n], r, s, np.array([0.0]))[0])
            offset += n
        weights = {"bias": round(bias - a, 4)} | {n: round(float(c), 4) for n, c in zip(names, coef)}
        weights["log_examples"] = round(weights["log_examples"] - b, 4)
        results.append((chosen["accuracy"], weight, weights, chosen))
        print(f"blend {weight}: top-1 in scope by k {json.dumps({k: round(v, 4) for k, v in top1.items()})}")
        print(f"  weights {weights}")
        print(f"  chosen (all k): {chosen}")
        print(f"  plain center rule: {plain_chosen}")
        for k, rows_k in per_k.items():
            mean = {
                m: round(float(np.mean([r[m] for r in rows_k])), 4)
                for m in ("accuracy", "oos_recall", "confident_wrong")
            }
            print(f"  k={k}: {mean}")
    best = max(results, key=lambda r: r[0])
    print(f"best blend {best[1]}: {best[2]}")
    if args.write:
        calibration_file(encoder, args.tune_last_layer, args.tune_loss).write_text(
            json.dumps(
                {
                    "fit_on": (
                        "CLINC150 train draws (k per intent) scored on val + oos_val, a share of the intents left out"
                        f" as strangers; operating point: {args.operating} recall >= {args.target_recall}"
                        + (
                            f"; each draw's last layer tuned ({args.tune_loss} loss) with "
                            + ("no strangers" if args.no_strangers else "the shipped strangers")
                            if args.tune_last_layer
                            else ""
                        )
                    ),
                    "command": "python -m bench.fewshot_calibrate " + " ".join(argv or sys.argv[1:]),
                    "neighbour_blend": best[1],
                    "encoder_weight": args.encoder_weight,
                    "weights": best[2],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
