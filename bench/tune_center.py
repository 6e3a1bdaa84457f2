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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.nlu_data import OUT_OF_SCOPE, Example, _optional_csv, read_csv, read_rasa


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


def fit_and_score(
    train: Sequence[Example], test: Sequence[Example], config: dict
) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """Train the component on `train`; return its classes, the SVM scores of `test` and the other
    per-class features its calibration uses (`neighbour`, `distance`: empty without them)."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from nlu.components.linear_intent import LinearIntentClassifier

    with tempfile.TemporaryDirectory() as tmp:
        component = LinearIntentClassifier.create(
            {**LinearIntentClassifier.get_default_config(), **config},
            LocalModelStorage(Path(tmp)),
            Resource("linear"),
            ExecutionContext(GraphSchema({}), "tune"),
        )
        component.train(TrainingData([_message(e, Message) for e in train]))
        texts = [e.text for e in test]
        return component.classes, component.scores(texts), component.extra_features(texts)


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
        rows.append(
            {
                "center": round(float(center), 3),
                "accuracy": float(right[in_scope].mean()),
                "oos_recall": float(declined[~in_scope].mean()) if (~in_scope).any() else None,
                "confident_wrong": float((~right & ~declined).mean()),
                "declined_in_scope": float(declined[in_scope].mean()),
            }
        )
    return rows


FEATURES = ("score", "margin", "neighbour", "distance")


def top_features(scores: np.ndarray, extra: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The best class of each row and the calibration features of it (FEATURES; zeros where not computed)."""
    rows = np.arange(len(scores))
    order = np.argsort(-scores, axis=1)
    best, second = scores[rows, order[:, 0]], scores[rows, order[:, 1]]
    columns = [best, best - second]
    for name in FEATURES[2:]:
        columns.append(extra[name][rows, order[:, 0]] if name in extra else np.zeros(len(scores)))
    return order[:, 0], np.column_stack(columns)


def calibrate(
    truth: Sequence[str],
    classes: Sequence[str],
    scores: np.ndarray,
    extra: dict[str, np.ndarray],
    oos_weight: float,
    min_accuracy: float,
) -> tuple[dict[str, float], list[dict]]:
    """Fit `calibration` weights: a logistic model of "the best intent is right and in scope".

    Out-of-scope messages weigh `oos_weight` times as much (validation sets hold few of them).
    The operating threshold is the one with the fewest confident mistakes (out-of-scope messages
    weighed the same way) among those keeping in-scope accuracy at `min_accuracy` or more; the
    bias is shifted so that this threshold is confidence 0.5, FallbackClassifier's threshold.
    """
    from sklearn.linear_model import LogisticRegression

    truth_arr = np.array(truth)
    best, features = top_features(scores, extra)
    predicted = np.array(classes)[best]
    in_scope = truth_arr != OUT_OF_SCOPE
    right = (predicted == truth_arr) & in_scope
    used = [0, 1] + [i for i, name in enumerate(FEATURES) if name in extra]
    model = LogisticRegression(C=100.0, max_iter=1000).fit(
        features[:, used], right.astype(int), sample_weight=np.where(in_scope, 1.0, oos_weight)
    )
    logit = model.decision_function(features[:, used])
    rows = []
    for shift in np.round(np.arange(-3.0, 3.01, 0.25), 2):
        declined = (logit < shift) | (predicted == OUT_OF_SCOPE)
        accepted_wrong = ~declined & (predicted != truth_arr)
        oos = (~in_scope).sum()
        rows.append(
            {
                "shift": float(shift),
                "accuracy": float((right & ~declined)[in_scope].mean()),
                "oos_recall": float(declined[~in_scope].mean()) if oos else None,
                "confident_wrong_in_scope": float(accepted_wrong[in_scope].mean()),
                "confident_wrong_weighted": float(
                    (accepted_wrong[in_scope].sum() + oos_weight * accepted_wrong[~in_scope].sum())
                    / (in_scope.sum() + oos_weight * oos)
                ),
            }
        )
    eligible = [row for row in rows if row["accuracy"] >= min_accuracy] or rows[:1]
    chosen = min(eligible, key=lambda row: (row["confident_wrong_weighted"], -row["accuracy"]))
    weights = {"bias": round(float(model.intercept_[0]) - chosen["shift"], 4)}
    weights.update({FEATURES[i]: round(float(w), 4) for i, w in zip(used, model.coef_[0])})
    return weights, rows, chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max-accuracy-loss", type=float, default=0.01)
    parser.add_argument(
        "--retrieval-intents", action="store_true", help="learn faq/<topic> as classes (config.yml does)"
    )
    parser.add_argument("--encoder-weight", type=float, default=1.0)
    parser.add_argument(
        "--calibrate", action="store_true", help="fit `calibration` weights instead of choosing a center"
    )
    parser.add_argument(
        "--neighbour", action="store_true", help="calibrate with the nearest-example cosine (needs --encoder)"
    )
    parser.add_argument(
        "--distance", action="store_true", help="calibrate with the Mahalanobis distance (needs --encoder)"
    )
    parser.add_argument(
        "--oos-weight", type=float, default=5.0, help="weight of an out-of-scope message in calibrating"
    )
    parser.add_argument("--min-accuracy", type=float, default=0.95, help="in-scope accuracy the calibration keeps")
    parser.add_argument(
        "--embedding-cache", type=Path, default=None, help="an .npz of sentence embeddings by text, reused"
    )
    args = parser.parse_args(argv)
    config = {
        "encoder": args.encoder,
        "C": args.C,
        "retrieval_intents": args.retrieval_intents,
        "encoder_weight": args.encoder_weight,
    }
    # Any weight: the model keeps what the feature needs (the examples' embeddings, class means).
    config["calibration"] = {name: 1.0 for name in ("neighbour", "distance") if getattr(args, name)} or None
    if args.encoder and args.embedding_cache:
        _load_embedding_cache(args.encoder, args.embedding_cache)

    if (args.data / "train.csv").is_file():
        train = read_csv(args.data / "train.csv") + _optional_csv(args.data / "oos_train.csv")
        val = read_csv(args.data / "val.csv") + _optional_csv(args.data / "oos_val.csv")
        splits = [(train, val)]
    else:
        examples = read_csv(args.data) if args.data.suffix == ".csv" else read_rasa(args.data)
        splits = folds(examples, args.folds)
    truth: list[str] = []
    all_scores, all_extra = [], []
    classes: list[str] | None = None
    for number, (train, test) in enumerate(splits, start=1):
        fold_classes, scores, extra = fit_and_score(train, test, config)
        if classes is None:
            classes = fold_classes
        # Align columns: a fold may miss a rare intent.
        all_scores.append(_align(scores, fold_classes, classes, -10.0))
        all_extra.append({name: _align(values, fold_classes, classes, 0.0) for name, values in extra.items()})
        truth += [e.intent for e in test]
        print(f"split {number}/{len(splits)}: {len(train)} train, {len(test)} scored", flush=True)
    if args.encoder and args.embedding_cache:
        _save_embedding_cache(args.encoder, args.embedding_cache)
    scores = np.vstack(all_scores)
    if args.calibrate:
        full = any("/" in name for name in classes)
        truth = [t if full else t.split("/")[0] for t in truth]
        extra = {name: np.vstack([fold[name] for fold in all_extra]) for name in all_extra[0]}
        weights, rows, chosen = calibrate(truth, classes, scores, extra, args.oos_weight, args.min_accuracy)
        for row in rows:
            oos = "–" if row["oos_recall"] is None else f"{100 * row['oos_recall']:.1f} %"
            print(
                f"shift {row['shift']:+.2f}: accuracy {100 * row['accuracy']:.1f} %, out-of-scope recall {oos}, "
                f"confident-wrong in-scope {100 * row['confident_wrong_in_scope']:.2f} %, "
                f"weighted {100 * row['confident_wrong_weighted']:.2f} %"
            )
        print(
            f"chosen shift {chosen['shift']:+.2f} (fewest weighted confident mistakes at accuracy >= {args.min_accuracy:.1%}):"
        )
        print("    calibration: {" + ", ".join(f"{k}: {v}" for k, v in weights.items()) + "}")
        return 0
    rows = sweep(truth, classes, scores, np.round(np.arange(-1.0, 0.41, 0.05), 2))
    for row in rows:
        oos = "–" if row["oos_recall"] is None else f"{100 * row['oos_recall']:.1f} %"
        print(
            f"center {row['center']:+.2f}: accuracy {100 * row['accuracy']:.1f} %, out-of-scope recall {oos}, "
            f"confident-wrong {100 * row['confident_wrong']:.1f} %, in-scope declined {100 * row['declined_in_scope']:.1f} %"
        )
    top = max(row["accuracy"] for row in rows)
    eligible = [row for row in rows if row["accuracy"] >= top - args.max_accuracy_loss]
    chosen = max(eligible, key=lambda row: ((row["oos_recall"] or 0.0), -row["confident_wrong"]))
    print(
        f"chosen center {chosen['center']:+.2f} (best out-of-scope recall within {args.max_accuracy_loss:.0%} of the best accuracy)"
    )
    return 0


def _align(values: np.ndarray, fold_classes: Sequence[str], classes: Sequence[str], missing: float) -> np.ndarray:
    aligned = np.full((len(values), len(classes)), missing, dtype=np.float32)
    for j, name in enumerate(fold_classes):
        if name in classes:
            aligned[:, classes.index(name)] = values[:, j]
    return aligned


def _load_embedding_cache(encoder: str, path: Path) -> None:
    """Fill the sentence encoder's cache from `path` (texts and their embeddings), if it exists."""
    from nlu.components.linear_features import Encoders

    loaded = Encoders.get(encoder)
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            loaded.cache_size = max(loaded.cache_size, len(data["texts"]) + 50_000)
            loaded._cache.update(zip(data["texts"].tolist(), data["embeddings"]))


def _save_embedding_cache(encoder: str, path: Path) -> None:
    from nlu.components.linear_features import Encoders

    cache = Encoders.get(encoder)._cache
    if not cache:  # nothing read through the frozen encoder (a tuned layer's run): nothing to keep
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, texts=np.array(list(cache)), embeddings=np.stack(list(cache.values())))


if __name__ == "__main__":
    sys.exit(main())
