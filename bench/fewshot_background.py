"""A shipped background of "not this shop" sentences as negatives (issue 18), on CLINC150's validation split only.

    PYTHONPATH=. nice -n 15 .venv-rasa/bin/python -m bench.fewshot_background collect
    PYTHONPATH=. nice -n 15 .venv-rasa/bin/python -m bench.fewshot_background collect --classed oos_train
    PYTHONPATH=. nice -n 15 .venv-rasa/bin/python -m bench.fewshot_background collect --classed stackfaq
    PYTHONPATH=. nice -n 15 .venv-rasa/bin/python -m bench.fewshot_background collect --classed both
    PYTHONPATH=. nice -n 15 .venv-rasa/bin/python -m bench.fewshot_background report --bootstrap 100

The protocol is bench.fewshot_evidence's, run through its two hooks: the same calibration draws (k 5 10 20 50,
seeds 0 1, 20 % of the intents left out) and all-intent k = 10 draws (seeds 0 1 2), val.csv + oos_val.csv scored
(oos_val weighed as the test's 1,000), the logistic refit of bench.fewshot_calibrate, the in-scope accuracy where
confident-wrong reaches 5.0 % and the bootstrap of its gain over the shipped weights (bench.fewshot_evidence_report).

Backgrounds (`SOURCES`; none is val, oos_val or anything of test): CLINC150's oos_train.csv (100 sentences),
StackFAQ's 1,249 queries and 125 thread titles (web-app how-to questions), and both. Their MPNet vectors are
computed once (a product would ship them). Features per message and intent, for each source:

- `bg_max`: the message's highest cosine to a background sentence (the same for every intent);
- `bg_over`: how far that beats the intent's nearest training example, max(0, bg_max - neighbour) (the plain
  difference neighbour - bg_max is linear in features the model already has, so it would fit the same);
- `bg_share`: the background's share of the message's 5 nearest neighbours in training examples + background.

`collect --classed SOURCE` instead trains the classifier with the background as one more class (what an admin
would get by adding a "not us" intent); `report` then removes that class from the ranking and declines when it
wins (`bg_wins`), or weighs `bg_margin` (its score minus the intent's) in the calibration, or both.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.fewshot_calibrate import NAMES
from bench.fewshot_evidence import collect as collect_draws
from bench.fewshot_evidence_report import evaluate, paired, shipped_weights, validate
from bench.nlu_data import ROOT, Example, read_csv

SOURCES = ("oos_train", "stackfaq", "both")
BACKGROUND = "__background__"  # never an intent of CLINC150, never "oos": a win of it is never "right"
FEATURE_SETS = {
    "+bg_max": ("bg_max",),
    "+bg_over": ("bg_over",),
    "+bg_share": ("bg_share",),
    "+bg_max, bg_over, bg_share": ("bg_max", "bg_over", "bg_share"),
}
CLASS_SETS = {
    "class: decline when it wins": ((), True),
    "class: +bg_margin": (("bg_margin",), False),
    "class: +bg_margin, decline when it wins": (("bg_margin",), True),
}
DECLINE = -100.0  # a logit below every threshold searched


def background_texts(source: str, clinc: Path, stackfaq: Path) -> list[str]:
    """The background sentences of `source` (one of SOURCES), in a fixed order, without repeats."""
    texts: list[str] = []
    if source in ("oos_train", "both"):
        texts += [e.text for e in read_csv(clinc / "oos_train.csv")]
    if source in ("stackfaq", "both"):
        with (stackfaq / "queries.csv").open(newline="", encoding="utf-8") as handle:
            texts += [row["question"] for row in csv.DictReader(handle)]
        with (stackfaq / "articles.jsonl").open(encoding="utf-8") as handle:
            texts += [json.loads(line)["title"] for line in handle if line.strip()]
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def background_features(
    messages: np.ndarray, similarity: np.ndarray, starts: np.ndarray, background: np.ndarray, neighbours: int = 5
) -> dict[str, np.ndarray]:
    """bg_max, bg_over and bg_share (module docstring) per message and intent. `messages`: the messages' unit
    vectors; `similarity`: their cosines to the training examples (classes' rows from `starts`); `background`:
    the background's unit vectors."""
    to_background = messages @ background.T
    bg_max = to_background.max(axis=1, keepdims=True)
    nearest = np.maximum.reduceat(similarity, starts, axis=1)
    both = np.hstack([similarity, to_background])
    closest = np.argpartition(-both, neighbours, axis=1)[:, :neighbours]
    share = (closest >= similarity.shape[1]).mean(axis=1, keepdims=True)
    shape = nearest.shape
    return {
        "bg_max": np.broadcast_to(bg_max, shape).astype(np.float32),
        "bg_over": np.maximum(bg_max - nearest, 0.0).astype(np.float32),
        "bg_share": np.broadcast_to(share, shape).astype(np.float32),
    }


def feature_hook(texts: dict[str, list[str]]) -> Callable[[Any, list[str], np.ndarray], dict[str, np.ndarray]]:
    """bench.fewshot_evidence's `more` hook: every source's features, named `source:feature`."""
    vectors: dict[str, np.ndarray] = {}

    def more(component: Any, spelled: list[str], similarity: np.ndarray) -> dict[str, np.ndarray]:
        encoder = component._encoder()
        if not vectors:  # once: what a product would ship
            vectors.update({name: encoder.encode(sentences).astype(np.float32) for name, sentences in texts.items()})
        messages = encoder.encode(spelled).astype(np.float32)
        found = {}
        for name, background in vectors.items():
            for feature, value in background_features(
                messages, similarity, component.neighbour_starts, background
            ).items():
                found[f"{name}:{feature}"] = value
        return found

    return more


def collect(args: argparse.Namespace) -> None:
    texts = {s: background_texts(s, args.data, args.stackfaq) for s in SOURCES}
    print({s: len(t) for s, t in texts.items()}, "background sentences", flush=True)
    if args.classed:
        args.extra_examples = [Example(text, BACKGROUND) for text in texts[args.classed]]
    else:
        args.more = feature_hook(texts)
    args.draws = args.out / (f"class-{args.classed}.pkl" if args.classed else "features.pkl")
    collect_draws(args)


def without_background(draw: dict[str, Any]) -> dict[str, Any]:
    """A draw trained with the background class, that class taken out of the ranking: `bg_wins` (1 where it had
    the best score) and `bg_margin` (its score minus each intent's) added; the margins recomputed without it."""
    from nlu.components.fewshot_intent import NEIGHBOUR_MARGIN, margins

    classes = list(draw["classes"])
    j = classes.index(BACKGROUND)
    keep = np.array([i for i in range(len(classes)) if i != j])
    scores = draw["scores"]
    wins = (scores.argmax(axis=1) == j).astype(np.float32)[:, None]
    extra = {
        name: value[:, keep] if value.ndim == 2 and value.shape[1] == len(classes) else value
        for name, value in draw["extra"].items()
    }
    extra[NEIGHBOUR_MARGIN] = margins(extra["neighbour"])
    extra["bg_margin"] = scores[:, j : j + 1] - scores[:, keep]
    extra["bg_wins"] = np.broadcast_to(wins, extra["bg_margin"].shape)
    return draw | {
        "classes": draw["classes"][keep],
        "scores": scores[:, keep],
        "extra": extra,
        "centroid_sim": draw["centroid_sim"][np.ix_(keep, keep)],
    }


def row(label: str, source: str, val: dict[str, Any], base: list[Any], times: int) -> str:
    pct = lambda x: f"{100 * x:.1f}"
    s, f = val["shipped"], val["at_five"]
    gain = "–"
    if times:
        low, mid, high = paired(base, val["runs"], times)
        gain = f"{pct(low)} / {pct(mid)} / {pct(high)}"
    return (
        f"| {source} | {label} | {pct(val['top1'])} | {pct(s['accuracy'])} | {pct(s['oos_recall'])} | "
        f"{pct(s['cw_weighed'])} | {pct(f['accuracy'])} ({pct(f['oos_recall'])}) | {gain} |"
    )


def report(args: argparse.Namespace) -> None:
    draws = pickle.loads((args.out / "features.pkl").read_bytes())
    print(
        "| background | features | top-1 | in-scope | OOS recall | CW weighed as test | in-scope (OOS recall) at "
        "CW 5.0 | gain at CW 5.0, bootstrap 5 / 50 / 95 % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    names, weights = shipped_weights()
    base = validate(draws, names, weights, args.eval_k)
    print(row("shipped weights", "none", base, base["runs"], 0), flush=True)
    refit = evaluate(draws, NAMES, args.eval_k)
    print(row("baseline refit", "none", refit["val"], base["runs"], args.bootstrap), flush=True)
    for source in SOURCES:
        for label, features in FEATURE_SETS.items():
            result = evaluate(draws, NAMES + tuple(f"{source}:{f}" for f in features), args.eval_k)
            print(row(label, source, result["val"], base["runs"], args.bootstrap), flush=True)
            if args.verbose:
                print("  weights", {n: round(float(w), 4) for n, w in result["weights"].items()})
    for source in SOURCES:
        path = args.out / f"class-{source}.pkl"
        if not path.is_file():
            print(f"| {source} | class: not collected | | | | | | |")
            continue
        classed = [without_background(d) for d in pickle.loads(path.read_bytes())]
        for label, (features, decline) in CLASS_SETS.items():
            result = evaluate(classed, NAMES + features, args.eval_k)
            weights = result["weights"] | ({"bg_wins": DECLINE} if decline else {})
            used = NAMES + features + (("bg_wins",) if decline else ())
            val = validate(classed, used, weights, args.eval_k)
            print(row(label, source, val, base["runs"], args.bootstrap), flush=True)
            if args.verbose:
                print("  weights", {n: round(float(w), 4) for n, w in result["weights"].items()})


def cost(args: argparse.Namespace) -> None:
    """Milliseconds a message for the background features at k = 10 (1,500 examples), the largest background."""
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        x = rng.normal(size=(n, 768)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    bank, background = unit(1500), unit(len(background_texts("both", args.data, args.stackfaq)))
    starts = np.arange(0, 1500, 10)
    message = unit(1)
    started = time.perf_counter()
    for _ in range(args.messages):
        background_features(message, message @ bank.T, starts, background)
    print(
        f"background features ({len(background)} sentences): {1000 * (time.perf_counter() - started) / args.messages:.3f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("collect", "report", "cost"))
    parser.add_argument("--classed", choices=SOURCES, help="collect: train with this background as a class")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bg"), help="where the draws go")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    parser.add_argument("--stackfaq", type=Path, default=ROOT.parent / "shared" / "data" / "stackfaq")
    # bench.fewshot_evidence's protocol (its defaults).
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval-seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-shots", type=int, nargs="*", default=[10])
    parser.add_argument("--eval-k", type=int, default=10)
    parser.add_argument("--leave-out", type=float, default=0.2)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "bench" / "emb-mpnet.npz")
    parser.add_argument("--mini-cache", type=Path, default=ROOT / "var" / "bench" / "emb-minilm.npz")
    parser.add_argument("--bootstrap", type=int, default=0, help="report: resamples for the gain's spread")
    parser.add_argument("--messages", type=int, default=300, help="cost: how many messages to time")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    {"collect": collect, "report": report, "cost": cost}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
