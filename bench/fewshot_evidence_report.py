"""The report half of bench/fewshot_evidence.py: fit each feature set as bench/fewshot_calibrate.py does, apply it
to the all-intent val draws, and the bootstrap of the gain over the baseline. Validation split only.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.fewshot_calibrate import NAMES, curve, fit, size_line
from bench.fewshot_data import OUT_OF_SCOPE
from bench.fewshot_evidence import MPNET, per_pair

SETS = {
    "baseline": (),
    "+mini (agree, cos, margin)": ("mini_agree", "mini", "mini_margin"),
    "+mini_agree": ("mini_agree",),
    "+lof_ratio": ("lof_ratio",),
    "+lof_diff": ("lof_diff",),
    "+knn_share": ("knn_share",),
    "+top2": ("top2",),
    "+loo_diff": ("loo_diff",),
    "+loo_class": ("loo_class",),
    "+pair_sim, margin_pair": ("pair_sim", "margin_pair"),
    "+mini + lof_diff + knn_share": ("mini_agree", "mini", "mini_margin", "lof_diff", "knn_share"),
    "+loo_diff + pair": ("loo_diff", "pair_sim", "margin_pair"),
    "+mini + loo_diff": ("mini_agree", "mini", "mini_margin", "loo_diff"),
    "+mini + loo_diff + pair": ("mini_agree", "mini", "mini_margin", "loo_diff", "pair_sim", "margin_pair"),
}
IN_SCOPE, OUT_SCOPE = 4500, 1000  # the test split's sizes: oos_val's 100 weigh as its 1,000
SHIFTS = np.round(np.arange(-1.0, 4.001, 0.02), 2)  # thresholds on the logit, searched for confident-wrong at 5 %


def per_class(scores: np.ndarray, extra: dict[str, np.ndarray], pairs: np.ndarray) -> dict[str, np.ndarray]:
    """Every feature a calibration may weigh, for every intent (`pairs`: the intents' mean examples' cosines)."""
    from nlu.components.fewshot_intent import derived, margins

    found = {"score": scores, "margin": margins(scores)} | derived(scores, extra) | per_pair(scores, pairs)
    found["mini_margin"] = margins(extra["mini"])
    found["mini_agree"] = ((found["mini_margin"] >= 0) & (found["margin"] >= 0)).astype(np.float32)
    return found


def at_best(found: dict[str, np.ndarray], best: np.ndarray, names: Sequence[str]) -> np.ndarray:
    rows = np.arange(len(best))
    return np.column_stack([found[name][rows, best] for name in names])


def figures(logit: np.ndarray, right: np.ndarray, stranger: np.ndarray) -> dict[str, float]:
    """bench.fewshot_calibrate's figures at logit 0 (`cw`: its confident-wrong), and `cw_in`: confident-wrong
    among the in-scope messages alone."""
    found = curve(logit, right, stranger, np.array([0.0]))[0]
    answered = logit >= 0
    return {
        "accuracy": found["accuracy"],
        "oos_recall": found["oos_recall"],
        "cw": found["confident_wrong"],
        "cw_in": float((answered & ~right)[~stranger].mean()),
    }


def weighed(cw_in: np.ndarray | float, oos_recall: np.ndarray | float) -> np.ndarray | float:
    """Confident-wrong with the strangers weighed as the test split's 1,000 against its 4,500 in-scope messages."""
    return (IN_SCOPE * cw_in + OUT_SCOPE * (1 - oos_recall)) / (IN_SCOPE + OUT_SCOPE)


def at_five(rows: list[tuple[float, dict[str, float]]], key: str) -> dict[str, float]:
    """The figures at the first (lowest) shift whose confident-wrong (`key`) is at most 5.0 %."""
    shift, found = next((s, f) for s, f in rows if f[key] <= 0.05)
    return found | {"shift": shift}


def evaluate(draws: list[dict[str, Any]], names: Sequence[str], k: int = 10) -> dict[str, Any]:
    fit_draws = [d for d in draws if d["role"] == "fit"]
    parts = []
    for d in fit_draws:
        found = per_class(d["scores"], d["extra"], d["centroid_sim"])
        best = d["scores"].argmax(axis=1)  # the tool's protocol: blend 0, the best SVM score
        parts.append(
            (d["k"], at_best(found, best, names), d["classes"][best] == d["truth"], d["truth"] == OUT_OF_SCOPE)
        )
    features = np.vstack([p[1] for p in parts])
    right = np.concatenate([p[2] for p in parts])
    stranger = np.concatenate([p[3] for p in parts])
    real = np.concatenate([d["real"] for d in fit_draws])
    sizes = np.concatenate([np.full(len(p[2]), p[0]) for p in parts])
    coef, bias = fit(features, right, stranger)
    raw = features @ coef + bias
    a, b = size_line(raw, real, sizes, 0.86, np.round(np.arange(-3.0, 3.001, 0.02), 2))
    logit = raw - (a + b * np.log(sizes))
    weights = {"bias": bias - a} | dict(zip(names, coef))
    weights["log_examples"] -= b
    calibrate = {
        "chosen": figures(logit, right, stranger),
        "per_k": {
            k: figures(logit[sizes == k], right[sizes == k], stranger[sizes == k]) for k in sorted(set(sizes.tolist()))
        },
        "at_five": at_five([(s, figures(logit - s, right, stranger)) for s in SHIFTS], "cw"),
    }
    return {"weights": weights, "calibrate": calibrate, "val": validate(draws, names, weights, k)}


def validate(
    draws: list[dict[str, Any]], names: Sequence[str], weights: dict[str, float], k: int = 10
) -> dict[str, Any]:
    """The k-shot draws with every intent, ranked and declined by the per-intent logit as the classifier does."""
    runs = []
    for d in (d for d in draws if d["role"] == "eval" and d["k"] == k):
        found = per_class(d["scores"], d["extra"], d["centroid_sim"])
        logits = weights["bias"] + sum(weights[name] * found[name] for name in names)
        best = logits.argmax(axis=1)
        rows = np.arange(len(best))
        runs.append((logits[rows, best], d["classes"][best] == d["truth"], d["truth"] == OUT_OF_SCOPE))
    if not runs:
        return {}

    def mean(shift: float) -> dict[str, float]:
        each = [figures(logit - shift, right, stranger) for logit, right, stranger in runs]
        found = {key: float(np.mean([f[key] for f in each])) for key in each[0]}
        found["cw_weighed"] = float(np.mean([weighed(f["cw_in"], f["oos_recall"]) for f in each]))
        return found

    top1 = float(np.mean([right[~stranger].mean() for _, right, stranger in runs]))
    found = {"top1": top1, "shipped": mean(0.0), "at_five": at_five([(s, mean(s)) for s in SHIFTS], "cw_weighed")}
    return found | {"runs": runs}


def five_point(runs: list[tuple[np.ndarray, ...]], rows: np.ndarray) -> float:
    """Mean in-scope accuracy over the runs at the lowest shift whose mean weighed confident-wrong is <= 5.0 %."""
    shifts = SHIFTS[:, None]
    accuracy, wrong = 0.0, 0.0
    for logit, right, stranger in runs:
        logit, right, stranger = logit[rows], right[rows], stranger[rows]
        answered = logit[None, :] >= shifts
        accuracy = accuracy + (answered & right)[:, ~stranger].mean(axis=1) / len(runs)
        cw_in = (answered & ~right)[:, ~stranger].mean(axis=1)
        wrong = wrong + weighed(cw_in, 1 - answered[:, stranger].mean(axis=1)) / len(runs)
    return float(accuracy[np.argmax(wrong <= 0.05)])


def paired(base: list[tuple[np.ndarray, ...]], other: list[tuple[np.ndarray, ...]], times: int) -> tuple[float, ...]:
    """The candidate's gain in in-scope accuracy at 5.0 % over the baseline's: 5th, 50th, 95th percentile over
    `times` resamples of the val messages (in scope and out of scope apart; the same messages for both)."""
    stranger = base[0][2]
    inside, outside = np.where(~stranger)[0], np.where(stranger)[0]
    rng = np.random.default_rng(0)
    gains = []
    for _ in range(times):
        rows = np.concatenate([rng.choice(inside, len(inside)), rng.choice(outside, len(outside))])
        gains.append(five_point(other, rows) - five_point(base, rows))
    return tuple(float(x) for x in np.percentile(gains, [5, 50, 95]))


def shipped_weights() -> tuple[tuple[str, ...], dict[str, float]]:
    from nlu.components.fewshot_intent import calibration_for, shipped_calibration

    weights = shipped_calibration(calibration_for(MPNET))["weights"]
    return tuple(name for name in weights if name != "bias"), weights


def report(args: argparse.Namespace) -> None:
    draws = pickle.loads(args.draws.read_bytes())
    pct = lambda x: f"{100 * x:.1f}"
    print(
        "| features | cal: in-scope / OOS-stranger recall / cw | cal: in-scope at cw 5.0 | "
        "val k: top-1 | in-scope | OOS recall | cw weighed (in-scope) | in-scope (OOS rec.) at cw 5.0 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    names, weights = shipped_weights()
    val = validate(draws, names, weights, args.eval_k)
    base = val["runs"]
    s, f = val["shipped"], val["at_five"]
    print(
        f"| shipped weights | – | – | {pct(val['top1'])} | {pct(s['accuracy'])} | {pct(s['oos_recall'])} | "
        f"{pct(s['cw_weighed'])} ({pct(s['cw_in'])}) | {pct(f['accuracy'])} ({pct(f['oos_recall'])}) |"
    )
    for label, more in SETS.items():
        if args.only and label not in args.only:
            continue
        result = evaluate(draws, NAMES + more, args.eval_k)
        c, v = result["calibrate"], result["val"]
        s, f = v["shipped"], v["at_five"]
        print(
            f"| {label} | {pct(c['chosen']['accuracy'])} / {pct(c['chosen']['oos_recall'])} / {pct(c['chosen']['cw'])}"
            f" | {pct(c['at_five']['accuracy'])} | {pct(v['top1'])} | {pct(s['accuracy'])} | {pct(s['oos_recall'])} | "
            f"{pct(s['cw_weighed'])} ({pct(s['cw_in'])}) | {pct(f['accuracy'])} ({pct(f['oos_recall'])}) |",
            flush=True,
        )
        if args.bootstrap:
            low, mid, high = paired(base, v["runs"], args.bootstrap)
            print(f"  gain at cw 5.0 vs baseline, bootstrap 5/50/95 %: {pct(low)} / {pct(mid)} / {pct(high)} points")
        if args.verbose:
            print("  weights", {n: round(float(w), 4) for n, w in result["weights"].items()})
            print("  per k", {k: {m: round(x, 4) for m, x in r.items()} for k, r in c["per_k"].items()})
