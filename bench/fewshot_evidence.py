"""New evidence for "the best intent is right" (issue 18), measured on CLINC150's validation split only.

    .venv-rasa/bin/python -m bench.fewshot_evidence collect [--out /tmp/cw/draws.pkl]   # trains, scores, saves
    .venv-rasa/bin/python -m bench.fewshot_evidence report [--draws ...] [--eval-k 10] [--bootstrap 100] [--verbose]
    .venv-rasa/bin/python -m bench.fewshot_evidence cost                                # ms a message per feature

`collect` trains FewShotIntentClassifier (MPNet) on the draws of bench/fewshot_calibrate.py (k 5 10 20 50, seeds
0 1, 20 % of the intents left out) and on k = 10, seeds 0 1 2 with every intent (what `bench.fewshot --split val`
runs), scores val.csv + oos_val.csv (never a test file, never oos_train.csv) and keeps, per message and intent,
today's features and the candidates:

- `mini`: MiniLM-L6's cosine to the intent's nearest training example (a second encoder's opinion), with
  `mini_margin` (over MiniLM's best other intent) and `mini_agree` (1 when MiniLM's nearest-example intent is the
  intent that leads on the SVM score);
- `lof_ratio` / `lof_diff`: MPNet's nearest-example cosine divided by / minus that example's mean cosine to the
  other examples of its intent (local density); `loo_diff`: minus that example's highest cosine to another example
  of its intent (leave-one-out: how near a real member of the intent comes); `loo_class`: minus the intent's mean
  of those; `knn_share`: the intent's share of the 5 nearest examples overall; `top2`: the mean of the intent's two
  best example cosines;
- `pair_sim`: the cosine of the mean examples of the intent and its closest rival by score, `margin_pair` the score
  margin times it (a small margin between near twins, todo_list / todo_list_update, says less).

`--eval-shots 5 10 20` adds all-intent draws at other k. `report` (bench/fewshot_evidence_report.py) fits the
logistic model of bench/fewshot_calibrate.py (same weighting, the threshold a + b log k through oos_val at recall
0.86) with each feature set on the calibration draws, prints the tool's figures, then applies the
weights (ranking by the per-intent logit, as the classifier does; answered when the logit >= 0, the 0.5 fallback)
to the k = 10 draws: in-scope accuracy, OOS recall, confident-wrong with the 100 oos_val messages weighed as the
test's 1,000 against 4,500 in-scope, and the in-scope accuracy where that confident-wrong reaches 5.0 %.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.fewshot_calibrate import left_out, trained
from bench.fewshot_data import OUT_OF_SCOPE, draw
from bench.nlu_data import ROOT, _optional_csv, read_csv
from bench.tune_center import _load_embedding_cache, _save_embedding_cache
from encoder import mpnet_wheel, sentence_encoder

# As the configs and bench.fewshot_calibrate name them (relative: the embedding caches are keyed by that name).
MPNET = str(mpnet_wheel.DEFAULT_DIR.relative_to(ROOT))
MINILM = str(sentence_encoder.DEFAULT_DIR.relative_to(ROOT))
# MPNet's classifier as the shipped calibration was fit (bench.fewshot_calibrate's defaults).
CONFIG = {"encoder_weight": 2.0, "C": 1.0, "encoder": MPNET}


def typical(embeddings: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each example's mean and highest cosine to the other examples of its intent (1.0 for an intent of one)."""
    ends = np.append(starts[1:], len(embeddings))
    mean = np.ones(len(embeddings), dtype=np.float32)
    best = np.ones(len(embeddings), dtype=np.float32)
    for start, end in zip(starts, ends):
        if end - start > 1:
            block = embeddings[start:end] @ embeddings[start:end].T
            mean[start:end] = (block.sum(axis=1) - np.diag(block)) / (end - start - 1)
            np.fill_diagonal(block, -1.0)
            best[start:end] = block.max(axis=1)
    return mean, best


def density(
    similarity: np.ndarray, starts: np.ndarray, own: tuple[np.ndarray, np.ndarray], neighbours: int = 5
) -> dict[str, Any]:
    """Per message and intent: lof_ratio, lof_diff, loo_diff, loo_class, top2 and knn_share (module docstring)."""
    ends = np.append(starts[1:], similarity.shape[1])
    classes = np.repeat(np.arange(len(starts)), ends - starts)
    n, c = len(similarity), len(starts)
    nearest = np.empty((n, c), dtype=np.float32)
    reference = np.empty((n, c), dtype=np.float32)
    loo = np.empty((n, c), dtype=np.float32)
    loo_class = np.empty(c, dtype=np.float32)
    top2 = np.empty((n, c), dtype=np.float32)
    for k, (start, end) in enumerate(zip(starts, ends)):
        block = similarity[:, start:end]
        at = block.argmax(axis=1)
        nearest[:, k] = block[np.arange(n), at]
        reference[:, k] = own[0][start + at]
        loo[:, k] = own[1][start + at]
        loo_class[k] = own[1][start:end].mean()
        top2[:, k] = np.sort(block, axis=1)[:, -2:].mean(axis=1) if end - start > 1 else nearest[:, k]
    knn = np.zeros((n, c), dtype=np.float32)
    closest = np.argpartition(-similarity, neighbours, axis=1)[:, :neighbours]
    np.add.at(knn, (np.repeat(np.arange(n), neighbours), classes[closest].ravel()), 1.0 / neighbours)
    return {
        "lof_ratio": nearest / np.maximum(reference, 1e-3),
        "lof_diff": nearest - reference,
        "loo_diff": nearest - loo,
        "loo_class": nearest - loo_class,
        "top2": top2,
        "knn_share": knn,
    }


def loo_gap(similarity: np.ndarray, starts: np.ndarray, loo: np.ndarray) -> np.ndarray:
    """loo_diff as the classifier would compute it (vectorised): each intent's nearest-example cosine minus that
    example's highest cosine to another example of its intent (`loo`, kept at training)."""
    counts = np.diff(np.append(starts, similarity.shape[1]))
    index = starts[:, None] + np.minimum(np.arange(counts.max())[None, :], counts[:, None] - 1)
    block = similarity[:, index]
    at = block.argmax(axis=2)
    return block.max(axis=2) - loo[index[np.arange(len(starts))[None, :], at]]


def per_pair(scores: np.ndarray, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """pair_sim: how alike each intent and its closest rival by score are (their mean examples' cosine; a small
    margin between near twins says less), and margin_pair: the score margin times it."""
    from nlu.components.fewshot_intent import margins

    order = np.argsort(-scores, axis=1)[:, :2]
    columns = np.arange(scores.shape[1])[None, :]
    rival = np.where(columns == order[:, :1], order[:, 1:2], order[:, :1])
    pair_sim = pairs[columns, rival]
    return {"pair_sim": pair_sim, "margin_pair": margins(scores) * pair_sim}


def collect(args: argparse.Namespace) -> None:
    from nlu.components.fewshot_intent import centroids
    from nlu.components.linear_features import Encoders

    _load_embedding_cache(MPNET, args.cache)
    _load_embedding_cache(MINILM, args.mini_cache)
    mini = Encoders.get(MINILM)
    train_all = read_csv(args.data / "train.csv")
    val = read_csv(args.data / "val.csv") + _optional_csv(args.data / "oos_val.csv")
    texts = [e.text for e in val]
    plan = [(k, seed, args.leave_out, "fit") for k in args.shots for seed in args.seeds]
    plan += [(k, seed, 0.0, "eval") for k in args.eval_shots for seed in args.eval_seeds]
    draws = []
    for k, seed, share, role in plan:
        started = time.perf_counter()
        out = left_out({e.intent for e in train_all}, share, seed) if share else set()
        examples = [e for e in draw(train_all, k, seed) if e.intent not in out]
        examples += getattr(args, "extra_examples", [])  # hook: bench.fewshot_background's background class
        with trained(examples, CONFIG) as component:
            spelled = component.spelled(texts)
            extra = component.extra_features(texts)
            scores = component.scores(texts)
            starts = component.neighbour_starts
            bank = component.neighbour_embeddings.astype(np.float32)
            similarity = component._encoder().encode(spelled) @ bank.T
            found = density(similarity, starts, typical(bank, starts))
            if getattr(args, "more", None):  # hook: more per-intent features (bench.fewshot_background)
                found |= args.more(component, spelled, similarity)
            # MiniLM: the same examples grouped in the classifier's class order, the same spelled messages.
            index = {name: i for i, name in enumerate(component.classes)}
            ordered = sorted(examples, key=lambda e: index[e.intent])
            mini_bank = mini.encode([e.text for e in ordered])
            mini_similarity = mini.encode(spelled) @ mini_bank.T
            found["mini"] = np.maximum.reduceat(mini_similarity, starts, axis=1)
            truth = np.array([OUT_OF_SCOPE if e.intent in out else e.intent for e in val])
            means = centroids(bank, starts)
            draws.append(
                {
                    "k": k,
                    "seed": seed,
                    "role": role,
                    "classes": np.array(component.classes),
                    "scores": scores.astype(np.float32),
                    "extra": {name: np.asarray(v, dtype=np.float32) for name, v in extra.items()} | found,
                    "truth": truth,
                    "centroid_sim": (means @ means.T).astype(np.float32),
                    "real": np.array([e.intent == OUT_OF_SCOPE for e in val]),
                }
            )
        print(f"{role} k={k} seed={seed}: {len(examples)} examples, {time.perf_counter() - started:.0f} s", flush=True)
        _save_embedding_cache(MPNET, args.cache)
        _save_embedding_cache(MINILM, args.mini_cache)
    args.draws.parent.mkdir(parents=True, exist_ok=True)
    args.draws.write_bytes(pickle.dumps(draws))


def cost(args: argparse.Namespace) -> None:
    """Milliseconds per message (one at a time, nothing cached) of each new feature at k = 10 (1,500 examples)."""
    from nlu.components.fewshot_intent import centroids
    from nlu.components.linear_features import Encoders

    texts = [e.text for e in read_csv(args.data / "val.csv")][: args.messages]
    mini = Encoders.get(MINILM)
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(1500, 768)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    mini_bank = rng.normal(size=(1500, 384)).astype(np.float32).T.copy()
    starts = np.arange(0, 1500, 10)
    own = typical(bank, starts)
    mini.encode(texts[:5])  # loaded and warm

    def timed(step: Any) -> float:
        started = time.perf_counter()
        for text in texts:
            step(text)
        return 1000 * (time.perf_counter() - started) / len(texts)

    def second(text: str) -> None:
        mini._cache.pop(text, None)
        np.maximum.reduceat(mini.encode([text]) @ mini_bank, starts, axis=1)

    row = rng.normal(size=(1, 768)).astype(np.float32) @ bank.T
    print(f"MiniLM encode + nearest example per intent: {timed(second):.2f} ms a message")
    print(
        f"density (lof, top2, knn_share) from the similarity row: {timed(lambda _: density(row, starts, own)):.2f} ms"
    )
    gap = loo_gap(row, starts, own[1])
    assert np.allclose(gap, density(row, starts, own)["loo_diff"], atol=1e-5)
    print(f"loo_diff alone, vectorised: {timed(lambda _: loo_gap(row, starts, own[1])):.3f} ms")
    loo_class = np.add.reduceat(own[1], starts) / np.diff(np.append(starts, len(bank)))
    nearest = np.maximum.reduceat(row, starts, axis=1)
    print(f"loo_class: {timed(lambda _: nearest - loo_class):.4f} ms")
    means = centroids(bank, starts)
    pairs = means @ means.T
    print(f"pair_sim + margin_pair: {timed(lambda _: per_pair(nearest, pairs)):.4f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("collect", "report", "cost"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    parser.add_argument("--shots", type=int, nargs="*", default=[5, 10, 20, 50], help="the calibration draws' k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval-seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-shots", type=int, nargs="*", default=[10], help="collect: k of the all-intent draws")
    parser.add_argument("--eval-k", type=int, default=10, help="report: which all-intent draws to report")
    parser.add_argument("--leave-out", type=float, default=0.2)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "bench" / "emb-mpnet.npz")
    parser.add_argument("--mini-cache", type=Path, default=ROOT / "var" / "bench" / "emb-minilm.npz")
    parser.add_argument("--draws", "--out", dest="draws", type=Path, default=Path("/tmp/cw/draws.pkl"))
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--bootstrap", type=int, default=0, help="report: resamples for the gain's spread")
    parser.add_argument("--messages", type=int, default=300, help="cost: how many val messages to time")
    args = parser.parse_args(argv)
    if args.step == "report":
        from bench.fewshot_evidence_report import report

        report(args)
    else:
        {"collect": collect, "cost": cost}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
