"""The pure parts of the NLU benchmark (bench/nlu.py): the data sets, the config it reads, the scoring and the table.

The data is a Rasa data directory or NLU file, a `text,intent` CSV file, or a CLINC150-style directory (see
bench/nlu.py); `score` gives accuracy, macro-F1, out-of-scope recall and the confident-wrong rate of one test run.
Nothing here trains or serves a model.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT_OF_SCOPE = "out_of_scope"
FALLBACK = "nlu_fallback"
DECLINED = {OUT_OF_SCOPE, FALLBACK}


@dataclass
class Example:
    text: str
    intent: str


@dataclass
class Dataset:
    name: str
    train: Path  # a Rasa NLU file or directory
    test: list[Example]
    needs_domain: bool  # the project's own data: ResponseSelector needs the domain's responses


# --- data ---------------------------------------------------------------------------------------


def read_csv(path: Path, intent: str | None = None) -> list[Example]:
    """`text,intent` rows; a first row `text,...` is a header. `intent` overrides the second column."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if rows and rows[0][0].strip().lower() == "text":
        rows = rows[1:]
    return [Example(row[0], intent or row[1].strip()) for row in rows]


def read_rasa(path: Path) -> list[Example]:
    """The intent examples of Rasa NLU data (a file or directory); retrieval intents in full (faq/topic)."""
    from rasa.shared.data import get_data_files, is_nlu_file
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData

    files = get_data_files([str(path)], is_nlu_file)
    data = TrainingData().merge(*(load_data(file) for file in files))
    return [Example(message.get("text"), message.get_full_intent()) for message in data.intent_examples]


def write_rasa(examples: Sequence[Example], path: Path) -> Path:
    """Write examples as a Rasa YAML NLU file."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    data = TrainingData([Message.build(text=example.text, intent=example.intent) for example in examples])
    path.parent.mkdir(parents=True, exist_ok=True)
    RasaYAMLWriter().dump(path, data)
    return path


def stratified_split(
    examples: Sequence[Example], share: float = 0.2, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Hold out about `share` of each intent (at least one where it has two or more examples)."""
    by_intent: dict[str, list[Example]] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example)
    rng = random.Random(seed)
    train, test = [], []
    for intent in sorted(by_intent):
        group = by_intent[intent][:]
        rng.shuffle(group)
        cut = round(len(group) * share) if len(group) > 1 else 0
        cut = max(cut, 1) if len(group) > 1 else 0
        test += group[:cut]
        train += group[cut:]
    return train, test


def load_dataset(data: Path, test: Path | None, split: str, work: Path) -> Dataset:
    """Resolve `--data`/`--test` into a training path and test examples."""
    data = data.resolve()
    if data.is_dir() and (data / "train.csv").is_file():
        train = read_csv(data / "train.csv") + _optional_csv(data / "oos_train.csv")
        if split not in ("test", "val"):
            raise SystemExit(f"--split must be test or val, not {split!r}")
        held = read_csv(data / f"{split}.csv") + _optional_csv(data / f"oos_{split}.csv")
        if test is not None:
            held = _read_any(test)
        name = data.name + ("" if split == "test" else f"-{split}")
        return Dataset(name, write_rasa(train, work / "train.yml"), held, needs_domain=False)
    if data.suffix == ".csv":
        examples = read_csv(data)
        if test is None:
            train, held = stratified_split(examples)
        else:
            train, held = examples, _read_any(test)
        return Dataset(data.stem, write_rasa(train, work / "train.yml"), held, needs_domain=False)
    if test is None:
        raise SystemExit("a Rasa data directory or file needs --test (e.g. tests/data/heldout.yml)")
    own = data == (ROOT / "nlu").resolve()
    return Dataset("shipped" if own else data.stem, data, _read_any(test), needs_domain=own)


def _optional_csv(path: Path) -> list[Example]:
    return read_csv(path, intent=OUT_OF_SCOPE) if path.is_file() else []


def _read_any(path: Path) -> list[Example]:
    return read_csv(path) if path.suffix == ".csv" else read_rasa(path)


# --- config -------------------------------------------------------------------------------------


def fallback_threshold(config: Path) -> float:
    """The FallbackClassifier threshold in a Rasa config (Rasa's default 0.3 when it is not set)."""
    pipeline = yaml.safe_load(config.read_text())["pipeline"]
    for component in pipeline:
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3))
    return 0.3


def uses_component(config: Path, fragment: str) -> bool:
    pipeline = yaml.safe_load(config.read_text())["pipeline"]
    return any(fragment in str(component.get(key, "")) for component in pipeline for key in ("name", "model"))


# --- scoring ------------------------------------------------------------------------------------


def predicted_intent(parsed: dict) -> tuple[str, float]:
    """The intent as the app sees it (a retrieval intent resolved by its response selector) and its confidence."""
    intent = parsed.get("intent") or {}
    name, confidence = intent.get("name") or FALLBACK, float(intent.get("confidence") or 0.0)
    selector = (parsed.get("response_selector") or {}).get(name)
    if selector:
        name = selector["response"].get("intent_response_key") or name
    return name, confidence


def score(truth: Sequence[str], predicted: Sequence[str], confidence: Sequence[float], threshold: float) -> dict:
    """Accuracy, macro-F1, out-of-scope recall and confident-wrong rate of one test run."""
    from sklearn.metrics import f1_score

    has_oos = OUT_OF_SCOPE in truth
    in_scope = [i for i, label in enumerate(truth) if label != OUT_OF_SCOPE] if has_oos else range(len(truth))
    oos = [i for i, label in enumerate(truth) if label == OUT_OF_SCOPE]
    right = [truth[i] == predicted[i] for i in range(len(truth))]
    mapped = [OUT_OF_SCOPE if has_oos and p in DECLINED else p for p in predicted]
    wrong_confident = [
        predicted[i] != truth[i] and predicted[i] != FALLBACK and confidence[i] >= threshold for i in range(len(truth))
    ]
    result = {
        "examples": len(truth),
        "intents": len(set(truth)),
        "accuracy": sum(right[i] for i in in_scope) / max(len(in_scope), 1),
        "accuracy_all": sum(right) / max(len(truth), 1),
        "fallback_rate": sum(p == FALLBACK for p in predicted) / max(len(predicted), 1),
        "macro_f1": float(f1_score(truth, mapped, labels=sorted(set(truth)), average="macro", zero_division=0)),
        "oos_recall": (sum(predicted[i] in DECLINED for i in oos) / len(oos)) if oos else None,
        "confident_wrong_rate": sum(wrong_confident) / max(len(truth), 1),
        # The same over in-scope messages only: a known question answered as another one.
        "confident_wrong_in_scope": sum(wrong_confident[i] for i in in_scope) / max(len(in_scope), 1)
        if has_oos
        else None,
        "in_scope_declined": sum(predicted[i] in DECLINED for i in in_scope) / max(len(in_scope), 1)
        if has_oos
        else None,
        "fallback_threshold": threshold,
    }
    return result


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def table(result: dict) -> str:
    def pct(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.1f} %"

    rows = [
        ("data", result["data"]),
        ("config", result["config"]),
        (
            "training / test examples",
            f"{result['train_examples']} / {result['examples']} ({result['intents']} intents)",
        ),
        ("accuracy" + (" (in-scope)" if result["oos_recall"] is not None else ""), pct(result["accuracy"])),
        ("accuracy (all, exact intent)", pct(result["accuracy_all"])),
        ("macro-F1", f"{result['macro_f1']:.3f}"),
        ("out-of-scope recall", pct(result["oos_recall"])),
        (
            "confident-wrong rate",
            f"{pct(result['confident_wrong_rate'])} (confidence >= {result['fallback_threshold']})",
        ),
        ("confident-wrong, in-scope only", pct(result["confident_wrong_in_scope"])),
        ("fallback rate", pct(result["fallback_rate"])),
        ("training time", f"{result['train_seconds']:.1f} s"),
        (
            "parse time median / p95",
            f"{result['parse_ms_median']:.1f} / {result['parse_ms_p95']:.1f} ms (n={result['parse_sample']})",
        ),
        ("model size", f"{result['model_mb']:.1f} MB"),
    ]
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def default_name(data_name: str, config: Path) -> str:
    """`<data>` for the project's config.yml, else `<data>-<config>` (`<config>` alone if it starts with `<data>-`)."""
    if config == (ROOT / "config.yml").resolve():
        return data_name
    return config.stem if config.stem.startswith(f"{data_name}-") else f"{data_name}-{config.stem}"
