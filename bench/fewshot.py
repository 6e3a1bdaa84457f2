"""Few-shot understanding: train on k examples per intent, test on everything, out-of-scope and typos included.

    make bench-fewshot [FEWSHOT_CONFIG=bench/configs/clinc150-minilm.yml]
    .venv-rasa/bin/python -m bench.fewshot [--data ../shared/data/clinc150] [--config ...] [--shots 5 10 20]
    .venv-rasa/bin/python -m bench.fewshot --split val --shots 10 --seeds 0 1 --out var/bench/fewshot-val.json

From a CLINC150-style directory, for each k in --shots and each of 5 fixed seeds, it draws k training examples
per intent from `train.csv` (never `oos_train.csv`: an admin's new bot has no out-of-scope examples), trains the
config's LinearIntentClassifier in-process (as `bench/tune_center.py` does; `rasa train` would take a minute per
run) and runs every `test.csv` + `oos_test.csv` message through it and Rasa's own FallbackClassifier with the
config's settings, as `rasa run` would. The config may hold tokenizers, the LinearIntentClassifier and the
FallbackClassifier, nothing else. The test messages are scored as written and in three noisy variants: one
character typo in 5 % and in 10 % of the words (seeded with --noise-seed, the same for every draw), and lower case
without punctuation. Reported for each (k, variant), as mean and spread over the seeds: in-scope accuracy (a
declined message is a miss), top-1 in-scope accuracy (nothing declined: what the published figures count),
out-of-scope recall, the confident-wrong rate over all test messages (an answer with a wrong intent, at a
confidence at or above the FallbackClassifier threshold), and the training time. `--split val` scores `val.csv` +
`oos_val.csv` instead: settings are chosen there, the test split is only reported.

Sentence embeddings are cached by text in var/bench/fewshot-embeddings.npz (--cache), so only the first run encodes every
message. The training time is measured with that cache, plus once per k (seed 0) with the training texts encoded
afresh ("cold"): what an admin's training costs. Results: var/bench/fewshot.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.fewshot_data import FALLBACK, SEEDS, SHOTS, draw, figures, plain, spread, with_typos
from bench.nlu_data import ROOT, Example, _optional_csv, read_csv
from bench.tune_center import _load_embedding_cache, _message, _save_embedding_cache

LINEAR = "nlu.components.linear_intent.LinearIntentClassifier"
FEWSHOT = "nlu.components.fewshot_intent.FewShotIntentClassifier"
VARIANTS = ("clean", "typos 5 %", "typos 10 %", "lower, no punctuation")
METRICS = ("accuracy", "top1", "oos_recall", "confident_wrong", "confident_wrong_in_scope", "declined_in_scope")
# Published few-shot figures (../shared/data/README.md): in-scope accuracy only, no out-of-scope messages.
CACHE = ROOT / "var" / "bench" / "fewshot-embeddings.npz"
PUBLISHED = {10: ("CPFT: contrastive pre-training + fine-tuned RoBERTa (Zhang et al. 2021), GPU", 0.9418)}


def pipeline(config: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The LinearIntentClassifier's and the FallbackClassifier's settings; SystemExit for anything else."""
    linear, fallback = None, None
    for component in yaml.safe_load(config.read_text())["pipeline"]:
        name = component["name"]
        settings = {key: value for key, value in component.items() if key != "name"}
        if name in (LINEAR, FEWSHOT):
            linear = settings | {"component": name}
        elif name == "FallbackClassifier":
            fallback = settings
        elif not name.endswith("Tokenizer"):
            raise SystemExit(f"{config}: {name} is not measured in-process; use make bench-nlu for this config")
    if linear is None or fallback is None:
        raise SystemExit(f"{config} needs a {LINEAR} and a FallbackClassifier")
    return linear, fallback


class Pipeline:
    """The config's classifier and fallback, trained and run in-process the way Rasa's graph runs them."""

    def __init__(self, linear: dict[str, Any], fallback: dict[str, Any], storage: Path) -> None:
        from rasa.engine.graph import ExecutionContext, GraphSchema
        from rasa.engine.storage.local_model_storage import LocalModelStorage
        from rasa.engine.storage.resource import Resource
        from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier

        self.settings = {key: value for key, value in linear.items() if key != "component"}
        self.component = linear.get("component", LINEAR)
        self.storage, self.trainings = storage, 0
        self.context = ExecutionContext(GraphSchema({}), "fewshot")
        self.fallback = FallbackClassifier.create(
            {**FallbackClassifier.get_default_config(), **fallback},
            LocalModelStorage(storage),
            Resource("fallback"),
            self.context,
        )
        self.threshold = float(self.fallback.component_config["threshold"])

    def train(self, examples: Sequence[Example]) -> float:
        """Train a fresh classifier (its own model storage) on `examples`; return the seconds taken."""
        from rasa.engine.storage.local_model_storage import LocalModelStorage
        from rasa.engine.storage.resource import Resource
        from rasa.shared.nlu.training_data.message import Message
        from rasa.shared.nlu.training_data.training_data import TrainingData

        from nlu.components.fewshot_intent import FewShotIntentClassifier
        from nlu.components.linear_intent import LinearIntentClassifier

        component = FewShotIntentClassifier if self.component == FEWSHOT else LinearIntentClassifier
        self.trainings += 1
        storage = self.storage / f"linear-{self.trainings}"
        storage.mkdir(parents=True)
        started = time.perf_counter()
        self.linear = component.create(
            {**component.get_default_config(), **self.settings},
            LocalModelStorage(storage),
            Resource("linear"),
            self.context,
        )
        self.linear.train(TrainingData([_message(example, Message) for example in examples]))
        return time.perf_counter() - started

    def answer(self, texts: Sequence[str]) -> tuple[list[str], list[str]]:
        """The intent answered (nlu_fallback: declined) and the best intent before the fallback, per text."""
        from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, TEXT
        from rasa.shared.nlu.training_data.message import Message

        messages = [Message(data={TEXT: text}) for text in texts]
        self.linear.process(messages)
        top = [(message.get(INTENT) or {}).get(INTENT_NAME_KEY) or FALLBACK for message in messages]
        self.fallback.process(messages)
        return [(message.get(INTENT) or {}).get(INTENT_NAME_KEY) or FALLBACK for message in messages], top


def variants(texts: Sequence[str], noise_seed: int) -> dict[str, list[str]]:
    return {
        VARIANTS[0]: list(texts),
        VARIANTS[1]: with_typos(texts, 0.05, noise_seed),
        VARIANTS[2]: with_typos(texts, 0.10, noise_seed),
        VARIANTS[3]: [plain(text) for text in texts],
    }


def tuned_states(linear: dict[str, Any]) -> dict[str, Any] | None:
    """With `tune_last_layer`: the frozen layers' states by text, kept for every text (each draw reads the same test
    texts, so the frozen layers run over them once); else None."""
    if not (linear.get("tune_last_layer") and linear.get("encoder")):
        return None
    from encoder.tuned import Frozen

    frozen = Frozen.get(linear["encoder"])
    frozen.keep = 1 << 30
    return frozen._states


def cold(encoder: str | None, examples: Sequence[Example], run: Pipeline, states: dict[str, Any] | None) -> float:
    """Seconds to train with the training texts not in the embedding cache (what a fresh training costs); with a
    tuned last layer, not in the frozen layers' states either."""
    if not encoder:
        return run.train(examples)
    from nlu.components.linear_features import Encoders

    cache = Encoders.get(encoder)._cache if states is None else states
    kept = {example.text: cache.pop(example.text) for example in examples if example.text in cache}
    try:
        return run.train(examples)
    finally:
        cache.update(kept)


def run_grid(args: argparse.Namespace) -> dict[str, Any]:
    linear, fallback = pipeline(args.config)
    encoder = linear.get("encoder")
    cache = args.cache
    states = tuned_states(linear)
    if encoder and states is None:
        _load_embedding_cache(encoder, cache)
    train = read_csv(args.data / "train.csv")
    # --split val: tune on CLINC's validation split (val + oos_val); test + oos_test only to report.
    test = read_csv(args.data / f"{args.split}.csv") + _optional_csv(args.data / f"oos_{args.split}.csv")
    truth = [example.intent for example in test]
    noisy = variants([example.text for example in test], args.noise_seed)
    changed = {
        name: sum(a != b for a, b in zip(noisy[VARIANTS[0]], texts)) / len(test) for name, texts in noisy.items()
    }
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fewshot-") as tmp:
        for k in args.shots:
            for seed in args.seeds:
                examples = draw(train, k, seed)
                run = Pipeline(linear, fallback, Path(tmp) / f"{k}-{seed}")
                cold_seconds = cold(encoder, examples, run, states) if seed == args.seeds[0] else None
                seconds = run.train(examples)
                result = {"k": k, "seed": seed, "train_examples": len(examples), "train_seconds": seconds}
                result["train_seconds_cold"] = cold_seconds
                for name, texts in noisy.items():
                    answered, top = run.answer(texts)
                    result[name] = figures(truth, answered, top)
                runs.append(result)
                clean = result[VARIANTS[0]]
                print(
                    f"k={k} seed={seed}: {len(examples)} examples, trained in {seconds:.1f} s"
                    + (f" ({cold_seconds:.1f} s cold)" if cold_seconds is not None else "")
                    + f"; clean in-scope {100 * clean['accuracy']:.1f} %, out-of-scope recall "
                    f"{100 * clean['oos_recall']:.1f} %, confident-wrong {100 * clean['confident_wrong']:.1f} %",
                    flush=True,
                )
                if encoder and states is None:  # after each run: an interrupted first run keeps what it encoded
                    _save_embedding_cache(encoder, cache)
                threshold = run.threshold
    summary = {
        str(k): {
            name: {metric: spread([r[name][metric] for r in runs if r["k"] == k]) for metric in METRICS}
            | {"train_seconds": spread([r["train_seconds"] for r in runs if r["k"] == k])}
            for name in VARIANTS
        }
        for k in args.shots
    }
    return {
        "data": str(args.data),
        "split": args.split,
        "config": str(args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config),
        "fallback_threshold": threshold,
        "seeds": list(args.seeds),
        "noise_seed": args.noise_seed,
        "test_messages": len(test),
        "test_out_of_scope": truth.count("out_of_scope"),
        "messages_changed_by_variant": changed,
        "summary": summary,
        "cold_train_seconds": {str(r["k"]): r["train_seconds_cold"] for r in runs if r["train_seconds_cold"]},
        "runs": runs,
    }


def table(result: dict[str, Any]) -> str:
    def cell(figure: dict[str, float] | None) -> str:
        if figure is None:
            return "–"
        return f"{100 * figure['mean']:.1f} ({100 * figure['min']:.1f}–{100 * figure['max']:.1f})"

    lines = [
        f"{result['data']} ({result['split']} split), config {result['config']}: mean (min–max) over seeds {result['seeds']}, in %;",
        (
            f"{result['test_messages']} test messages ({result['test_out_of_scope']} out of scope); "
            f"confident-wrong: a wrong intent at confidence >= {result['fallback_threshold']}, over all of them."
        ),
        "",
        (
            "| k | test messages | in-scope acc. | top-1 (no declining) | OOS recall | confident-wrong | "
            "train s (cached / cold) |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for k, by_variant in result["summary"].items():
        for name, figures_ in by_variant.items():
            seconds = figures_["train_seconds"]
            cold_seconds = result["cold_train_seconds"].get(k)
            lines.append(
                f"| {k} | {name} | {cell(figures_['accuracy'])} | {cell(figures_['top1'])} | "
                f"{cell(figures_['oos_recall'])} | {cell(figures_['confident_wrong'])} | "
                + (f"{seconds['mean']:.1f} / {cold_seconds:.1f} |" if name == VARIANTS[0] and cold_seconds else "|")
            )
    lines.append("")
    lines.append(
        "Published (../shared/data/README.md; in-scope accuracy only, no out-of-scope messages, nothing declined):"
    )
    for k, (method, accuracy) in PUBLISHED.items():
        ours = result["summary"].get(str(k), {}).get(VARIANTS[0])
        beside = f"; ours, top-1 clean: {cell(ours['top1'])}" if ours else ""
        lines.append(f"  CLINC150 {k}-shot, {method}: {100 * accuracy:.2f} %{beside}")
    share = ", ".join(f"{name} {100 * value:.0f} %" for name, value in result["messages_changed_by_variant"].items())
    lines.append(f"Test messages the variant changes: {share}.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clinc150")
    parser.add_argument("--config", type=Path, default=ROOT / "bench" / "configs" / "clinc150-minilm.yml")
    parser.add_argument("--shots", type=int, nargs="+", default=list(SHOTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--noise-seed", type=int, default=0)
    parser.add_argument(
        "--split", choices=("test", "val"), default="test", help="val: choose settings on val + oos_val"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "fewshot.json")
    parser.add_argument("--cache", type=Path, default=CACHE, help="the sentence embeddings, by text")
    args = parser.parse_args(argv)
    args.config = args.config.resolve()
    args.data = args.data.resolve()
    started = time.perf_counter()
    result = run_grid(args)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wall time {result['wall_seconds']} s; written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
