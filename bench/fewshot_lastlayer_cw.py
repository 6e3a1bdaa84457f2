"""The encoder's last layer tuned on each draw (bench/fewshot_lastlayer.py), measured where it matters: in-scope
accuracy at 5.0 % confident-wrong through FewShotIntentClassifier and a refit calibration. CLINC150 validation only
(val.csv + oos_val.csv; never a test file, never oos_train.csv).

    python3.11 -m venv /work/venv-ll          # throw-away, outside the repository; then in it:
    /work/venv-ll/bin/pip install torch==2.13.0 numpy safetensors tokenizers scikit-learn pyyaml
    PYTHONPATH=. nice -n 15 .venv-rasa/bin/python -m bench.fewshot_lastlayer_cw record      # frozen draws + texts
    PYTHONPATH=. nice -n 15 /work/venv-ll/bin/python -m bench.fewshot_lastlayer_cw tune     # torch: tuned vectors
    PYTHONPATH=. nice -n 15 .venv-rasa/bin/python -m bench.fewshot_lastlayer_cw collect     # tuned draws
    PYTHONPATH=. nice -n 15 .venv-rasa/bin/python -m bench.fewshot_lastlayer_cw report [--bootstrap 100]

`record` runs bench.fewshot_evidence's `collect` unchanged with the frozen MPNet (the shipped pipeline: its draws go
to `--dir`/frozen.pkl) and writes, per draw (the calibration draws k 5 10 20 50, seeds 0 1, a fifth of the intents
left out; the all-intent k = 10 draws, seeds 0 1 2), its training examples and every text the classifier encodes for
it: the examples and the val + oos_val messages as `component.spelled` puts them (texts.json; a draw is keyed by
a digest of its examples). `tune` (the throw-away venv with torch: PyTorch is never a project dependency) tunes
MPNet's last layer on each draw's examples with bench.fewshot_lastlayer's functions (`proto` loss, lr 1e-3, 2
epochs, 16 intents a batch, head lr 1e-3, scale 20: as measured there) and writes that draw's tuned embedding of
each of its texts (tuned/KEY.npz) and the tuning's seconds. `collect` runs the same `collect` again with the MPNet
encoder's cache swapped, before each draw is trained, for that draw's tuned vectors (the frozen forward pass is
disabled: a text missing from the file fails). `report` refits the calibration (bench.fewshot_evidence_report's
`evaluate`: same features, same weighting, threshold a + b log k) on each set's calibration draws and applies it to
its k = 10 draws; the bootstrap gain is paired against the shipped frozen pipeline (shipped weights, frozen draws).

Measured (k = 10 draws, seeds 0-2; in-scope accuracy at 5.0 % confident-wrong, the strangers weighed as the test's
1,000; gain over the shipped frozen pipeline, paired bootstrap 5 / 50 / 95 %, 100 resamples): frozen, shipped weights
89.8 (the refit reproduces them); frozen + loo_diff 90.4 (-0.6 / +0.3 / +1.2); tuned, refit 91.3 (+0.9 / +1.6 /
+2.8; top-1 93.6 -> 94.2; per seed 91.2 92.1 90.9 against 90.0 89.6 89.7); tuned + loo_diff 91.7 (+1.0 / +1.8 /
+2.8). Tuning (2 threads, `nice -n 15` beside a CI run, load 2-3.5): 21-29 s a k = 10 draw, 132-196 s a k = 50 draw
(120 intents); the one frozen pass over the 13,761 texts 267 s. Table and conclusion: docs/understanding.md, "The last
layer tuned, through the classifier and a refit calibration (validation only)".

Strangers in the tuning (outlier exposure; `tune --backend numpy --shots --background <oos_train.csv>
--background-loss uniform|energy --background-weight W`, then `collect --shots` and `sweep --shots`: the k = 10
draws only, weighed with the shipped tuned calibration): docs/understanding.md, "Strangers in the tuning". Strangers
made from each draw's own examples (`tune --generated N --vocabulary <one word a line>`): the same section, "Strangers
made from the bot's own examples".
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import pickle
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.nlu_data import ROOT, _optional_csv, read_csv
from encoder.tuning_loss import LOSSES

ENCODER = ROOT / "var" / "encoders" / "all-mpnet-base-v2"
SETTINGS = {"loss": "proto", "lr": 1e-3, "epochs": 2, "head_lr": 1e-3, "scale": 20.0, "intents": 16, "train_seed": 0}


def draw_key(examples: Sequence[Any]) -> str:
    """A draw's name: a digest of its (text, intent) pairs, whatever their order."""
    lines = sorted(f"{e.text}\t{e.intent}" for e in examples)
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()[:16]


def val_texts(data: Path) -> list[str]:
    return [e.text for e in read_csv(data / "val.csv") + _optional_csv(data / "oos_val.csv")]


def evidence_args(args: argparse.Namespace, draws: Path, cache: Path) -> argparse.Namespace:
    """bench.fewshot_evidence's `collect` arguments (its defaults: the evidence protocol's draws)."""
    from bench import fewshot_evidence

    parser_args = ["collect", "--data", str(args.data), "--cache", str(cache), "--draws", str(draws)]
    parser_args += ["--mini-cache", str(args.dir / "emb-minilm.npz")]
    if args.shots is not None:  # the calibration draws' k (none: the all-intent k = 10 draws only)
        parser_args += ["--shots", *map(str, args.shots)]
    captured: dict[str, argparse.Namespace] = {}
    original = fewshot_evidence.collect
    fewshot_evidence.collect = lambda parsed: captured.setdefault("args", parsed)
    try:
        fewshot_evidence.main(parser_args)
    finally:
        fewshot_evidence.collect = original
    return captured["args"]


@contextlib.contextmanager
def wrapped_trained(hook: Any) -> Iterator[None]:
    """bench.fewshot_evidence's `trained`, with `hook(examples, component)` called before each draw is trained
    (component None) and once it is."""
    from bench import fewshot_evidence

    original = fewshot_evidence.trained

    @contextlib.contextmanager
    def trained(examples: Sequence[Any], config: dict[str, Any]) -> Iterator[Any]:
        hook(examples, None)
        with original(examples, config) as component:
            hook(examples, component)
            yield component

    fewshot_evidence.trained = trained
    try:
        yield
    finally:
        fewshot_evidence.trained = original


def record(args: argparse.Namespace) -> None:
    """The frozen pipeline's draws, and per draw the texts the classifier encodes."""
    import shutil

    from bench import fewshot_evidence
    from bench.fewshot_data import OUT_OF_SCOPE

    args.dir.mkdir(parents=True, exist_ok=True)
    for name in ("emb-mpnet.npz", "emb-minilm.npz"):  # copies: the shared caches stay as they are
        if not (args.dir / name).is_file() and (ROOT / "var" / "bench" / name).is_file():
            shutil.copy(ROOT / "var" / "bench" / name, args.dir / name)
    texts = val_texts(args.data)
    found: dict[str, Any] = {}

    def hook(examples: Sequence[Any], component: Any) -> None:
        if component is None:
            return
        intents = {e.intent for e in examples if e.intent != OUT_OF_SCOPE}
        found[draw_key(examples)] = {
            "k": round(len(examples) / len(intents)),
            "intents": len(intents),
            "examples": [[e.text, e.intent] for e in examples],
            "texts": sorted({e.text for e in examples} | set(component.spelled(texts))),
        }

    with wrapped_trained(hook):
        fewshot_evidence.collect(evidence_args(args, args.dir / "frozen.pkl", args.dir / "emb-mpnet.npz"))
    (args.dir / "texts.json").write_text(json.dumps(found))
    print(f"{len(found)} draws, {sum(len(d['texts']) for d in found.values())} texts to encode", flush=True)


def torch_backend(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """bench.fewshot_lastlayer's torch functions: (states of texts, train on states and labels, embed)."""
    import torch

    from bench.fewshot_lastlayer import embed, load, penultimate, train

    torch.set_num_threads(args.threads)
    encoder, layers = load(args.encoder)

    def train_on(states: list[np.ndarray], labels: np.ndarray, texts: Sequence[str]) -> tuple[Any, float, int, float]:
        tuned, _, seconds, steps, last = train(encoder, layers[-1], states, labels, argparse.Namespace(**SETTINGS))
        return tuned, seconds, steps, last

    return (lambda texts: penultimate(encoder, layers, texts)), train_on, (lambda t, s: embed(encoder, t, s))


def numpy_backend(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The project's own: encoder.last_layer in numpy, the frozen layers in onnxruntime (Rasa's environment)."""
    from encoder import last_layer
    from encoder.tuned import Frozen, unlike

    frozen = Frozen.get(args.encoder)
    frozen.keep = 1 << 30  # every text: each is read once here
    encoder, encoding = frozen.encoder, frozen.encoding
    names = ("loss", "epochs", "lr", "head_lr", "scale", "intents")
    settings = last_layer.Settings(
        **{n: SETTINGS[n] for n in names},
        seed=SETTINGS["train_seed"],
        background=args.background_loss,
        background_weight=args.background_weight,
        background_per_step=args.background_per_step,
    )
    background = frozen.states([e.text for e in read_csv(args.background)]) if args.background else []

    words = args.vocabulary.read_text().split() if args.generated else []

    def train_on(states: list[np.ndarray], labels: np.ndarray, texts: Sequence[str]) -> tuple[Any, float, int, float]:
        started = time.perf_counter()
        made = frozen.states(generated(texts, words, args.generated)) if args.generated else []
        strangers = unlike(background + made, states, frozen, args.max_cosine)  # as TunedEncoder.trained
        tuned, losses = last_layer.tune(states, labels, encoder.layers[-1], encoding, settings, strangers)
        return last_layer.flat(tuned), time.perf_counter() - started, len(losses), losses[-1]

    return (
        frozen.states,
        train_on,
        lambda tuned, states: last_layer.embed(states, tuned, encoding),
    )


def generated(texts: Sequence[str], vocabulary: Sequence[str], count: int) -> list[str]:
    """Up to `count` strangers made from a draw's own examples: every content word swapped for a word of
    `vocabulary` that no example uses."""
    import random
    import re

    from spacy.lang.en.stop_words import STOP_WORDS

    def content(word: str) -> bool:
        return word.isalpha() and len(word) >= 3 and word not in STOP_WORDS

    own = {w for t in texts for w in re.findall(r"[a-z]+", t.lower())}
    pool = [w for w in vocabulary if content(w) and w not in own]
    rng = random.Random(0)
    made: list[str] = []
    for text in rng.sample(list(texts), len(texts)):
        words = text.lower().split()
        swapped = [rng.choice(pool) if content(w.strip("?.!,'\"")) else w for w in words]
        if swapped != words:
            made.append(" ".join(swapped))
        if len(made) == count:
            break
    return made


def tune(args: argparse.Namespace) -> None:
    """Per draw, the last layer tuned on its examples and its texts' tuned embeddings (`--backend`: torch, in the
    throw-away venv, or the project's numpy `encoder.last_layer`, in `.venv-rasa`)."""
    states_of, train_on, embed_with = (torch_backend if args.backend == "torch" else numpy_backend)(args)
    plan = json.loads((args.dir / "texts.json").read_text())
    out = args.dir / "tuned"
    out.mkdir(parents=True, exist_ok=True)
    union = sorted({t for d in plan.values() for t in d["texts"]})
    started = time.perf_counter()
    states = dict(zip(union, states_of(union)))
    print(f"frozen pass over {len(union)} texts: {time.perf_counter() - started:.0f} s", flush=True)
    timings = json.loads((args.dir / "timings.json").read_text()) if (args.dir / "timings.json").is_file() else {}
    for key, d in sorted(plan.items(), key=lambda item: item[1]["k"]):
        if (out / f"{key}.npz").is_file() and key in timings:
            continue
        intents = sorted({intent for _, intent in d["examples"]})
        index = {name: i for i, name in enumerate(intents)}
        labels = np.array([index[intent] for _, intent in d["examples"]])
        texts = [t for t, _ in d["examples"]]
        tuned, seconds, steps, last = train_on([states[t] for t in texts], labels, texts)
        begun = time.perf_counter()
        vectors = embed_with(tuned, [states[t] for t in d["texts"]])
        encode_s = time.perf_counter() - begun
        np.savez(out / f"{key}.npz", texts=np.array(d["texts"]), embeddings=vectors.astype(np.float32))
        timings[key] = {"k": d["k"], "intents": d["intents"], "train_s": seconds, "encode_s": encode_s, "steps": steps}
        (args.dir / "timings.json").write_text(json.dumps(timings, indent=1))
        print(
            f"k={d['k']} intents={d['intents']}: tuned {seconds:.1f} s ({steps} steps, last loss {last:.3f}), "
            f"{len(d['texts'])} texts encoded {encode_s:.1f} s",
            flush=True,
        )
    for k in sorted({t["k"] for t in timings.values()}):
        chosen = [t for t in timings.values() if t["k"] == k]
        print(f"k={k}: tuning {statistics.fmean(t['train_s'] for t in chosen):.1f} s a draw ({len(chosen)} draws)")


def collect(args: argparse.Namespace) -> None:
    """The evidence protocol's draws again, each with its own tuned MPNet vectors in place of the frozen ones."""
    from bench import fewshot_evidence
    from nlu.components.linear_features import Encoders

    mpnet = Encoders.get(fewshot_evidence.MPNET)
    mpnet.store = None

    def forward(batch: Any) -> Any:
        raise RuntimeError(f"a text without a tuned vector: {len(batch)} in the batch")

    mpnet._forward = forward

    def hook(examples: Sequence[Any], component: Any) -> None:
        if component is not None:
            return
        with np.load(args.dir / "tuned" / f"{draw_key(examples)}.npz", allow_pickle=False) as data:
            mpnet._cache.clear()
            mpnet.cache_size = len(data["texts"]) + 50_000
            mpnet._cache.update(zip(data["texts"].tolist(), data["embeddings"]))

    with wrapped_trained(hook):
        fewshot_evidence.collect(evidence_args(args, args.dir / "tuned.pkl", args.dir / "emb-mpnet-tuned-void.npz"))


def report(args: argparse.Namespace) -> None:
    """One row per (encoder, evidence); the gain at 5.0 % paired against the shipped frozen pipeline."""
    from bench.fewshot_calibrate import NAMES
    from bench.fewshot_evidence_report import evaluate, five_point, paired, shipped_weights, validate

    sets = {"frozen": args.dir / "frozen.pkl", "last layer tuned": args.dir / "tuned.pkl"}
    draws = {name: pickle.loads(path.read_bytes()) for name, path in sets.items() if path.is_file()}
    names, weights = shipped_weights()
    base = validate(draws["frozen"], names, weights)["runs"]
    pct = lambda x: f"{100 * x:.1f}"
    print(
        "| encoder | calibration | top-1 | in-scope | OOS recall | CW weighed as test | "
        "in-scope (OOS recall) at CW 5.0 % | gain at CW 5.0 %, bootstrap 5 / 50 / 95 % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, found in draws.items():
        counts = f"{sum(d['role'] == 'fit' for d in found)} calibration + {sum(d['role'] == 'eval' for d in found)}"
        for label, more in (
            ("shipped weights", None),
            ("refit (same five features)", ()),
            ("refit +loo_diff", ("loo_diff",)),
        ):
            result = {"weights": weights, "val": validate(found, names, weights)} if more is None else None
            result = result or evaluate(found, NAMES + more)
            val = result["val"]
            s, f = val["shipped"], val["at_five"]
            gain = paired(base, val["runs"], args.bootstrap) if args.bootstrap else None
            shown = " / ".join(f"{100 * g:+.1f}" for g in gain) if gain else "–"
            print(
                f"| {name} ({counts} draws) | {label} | {pct(val['top1'])} | {pct(s['accuracy'])} | "
                f"{pct(s['oos_recall'])} | {pct(s['cw_weighed'])} | {pct(f['accuracy'])} ({pct(f['oos_recall'])}) | "
                f"{shown} |",
                flush=True,
            )
            if args.verbose:
                every = np.arange(len(base[0][0]))
                seeds = [f"{100 * five_point([run], every):.1f}" for run in val["runs"]]
                print("  weights", {n: round(float(w), 4) for n, w in result["weights"].items()})
                print("  in-scope at CW 5.0 per k = 10 draw (seeds 0 1 2, each at its own threshold):", seeds)
    timings = args.dir / "timings.json"
    if timings.is_file():
        found = json.loads(timings.read_text()).values()
        for k in sorted({t["k"] for t in found}):
            chosen = [t for t in found if t["k"] == k]
            mean = statistics.fmean(t["train_s"] for t in chosen)
            print(f"tuning at k={k}: {mean:.1f} s a draw (min {min(t['train_s'] for t in chosen):.1f}, {len(chosen)})")


def sweep(args: argparse.Namespace) -> None:
    """The tuned k = 10 draws weighed by the shipped tuned calibration (`--tune-loss`'s, else the prototype loss's), at
    fallback thresholds from 0.5 up: where a config's threshold is chosen (validation only)."""
    from bench.fewshot_evidence_report import figures, validate, weighed
    from nlu.components.fewshot_intent import calibration_for, shipped_calibration

    weights = shipped_calibration(calibration_for(args.encoder, tuned=True, loss=args.tune_loss))["weights"]
    names = tuple(name for name in weights if name != "bias")
    runs = validate(pickle.loads((args.dir / "tuned.pkl").read_bytes()), names, weights)["runs"]
    print("| threshold | in-scope | OOS recall | CW weighed as test | per seed: in-scope / CW |")
    print("|---|---|---|---|---|")
    for shift in np.round(np.arange(args.down_to, args.up_to + 0.001, 0.05), 2):
        each = [figures(logit - shift, right, stranger) for logit, right, stranger in runs]
        cw = [weighed(f["cw_in"], f["oos_recall"]) for f in each]
        seeds = ", ".join(f"{100 * f['accuracy']:.1f} / {100 * c:.2f}" for f, c in zip(each, cw))
        print(
            f"| {1 / (1 + np.exp(-shift)):.3f} | {100 * np.mean([f['accuracy'] for f in each]):.1f} | "
            f"{100 * np.mean([f['oos_recall'] for f in each]):.1f} | {100 * np.mean(cw):.2f} | {seeds} |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("record", "tune", "collect", "report", "sweep"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ll"), help="texts, vectors, draws and timings")
    parser.add_argument("--encoder", type=Path, default=ENCODER)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", choices=("torch", "numpy"), default="torch", help="tune's: see `tune`")
    parser.add_argument("--bootstrap", type=int, default=0)
    parser.add_argument("--shots", type=int, nargs="*", default=None, help="record/collect: calibration draws' k")
    parser.add_argument("--up-to", type=float, default=0.6, help="sweep: the largest logit shift")
    parser.add_argument("--background", type=Path, help="tune (numpy): strangers' CSV for outlier exposure")
    parser.add_argument("--generated", type=int, default=0, help="tune (numpy): strangers made from the examples")
    parser.add_argument("--vocabulary", type=Path, help="tune: the words swapped into --generated strangers")
    parser.add_argument("--background-loss", choices=("uniform", "energy"), default="uniform")
    parser.add_argument("--background-weight", type=float, default=1.0)
    parser.add_argument("--background-per-step", type=int, default=16)
    parser.add_argument("--max-cosine", type=float, default=1.0, help="tune: strangers that close to an example out")
    parser.add_argument("--down-to", type=float, default=0.0, help="sweep: the smallest logit shift")
    parser.add_argument(
        "--tune-loss", choices=LOSSES, default="proto", help="sweep: weigh with the tuned calibration of this loss"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    {"record": record, "tune": tune, "collect": collect, "report": report, "sweep": sweep}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
