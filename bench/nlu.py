"""Measure the NLU pipeline: train it in Rasa, serve it, parse a held-out set, report.

    make bench-nlu [DATA=nlu] [TEST=tests/data/heldout.yml] [CONFIG=config.yml] [SPLIT=test|val] [NAME=...]
    .venv-rasa/bin/python -m bench.nlu --data ../shared/data/clinc150 --config bench/configs/clinc150.yml

Runs in `.venv-rasa`. The data is one of:
- a Rasa data directory or NLU file (the default: `nlu/`, tested on `tests/data/heldout.yml`);
- a `text,intent` CSV file (a header line is skipped), tested on `--test` or, without
  one, on a stratified fifth held out with a fixed seed;
- a CLINC150-style directory: `train.csv` + `oos_train.csv` train (out-of-scope
  examples as the intent `out_of_scope`), `test.csv` + `oos_test.csv` test.
  `--split val` tests on `val.csv` + `oos_val.csv` instead: tune on that, never on test.

The model is trained with `rasa train nlu` through the given config (from
scratch: a fresh training cache), served by `rasa run --enable-api` on a free
loopback port, and every test message is sent to `/model/parse`, as the app
does. Reported:
- accuracy: the predicted intent is the true one; a fallback counts as a miss.
  For a retrieval intent (`faq/<topic>` in the test data) the response
  selector's pick must be right too. With an out-of-scope class: in-scope
  accuracy, over the in-scope messages only.
- macro-F1 over the test set's intents (`nlu_fallback` counts as `out_of_scope`
  when the data has that class).
- out-of-scope recall: out-of-scope messages that are declined (`out_of_scope`
  or `nlu_fallback`).
- confident-wrong rate: messages whose predicted intent is wrong, not a
  fallback, and at least as confident as the config's FallbackClassifier threshold.
- training time (wall clock of `rasa train nlu`), parse time per message
  (median and p95 over a fixed sample, after a warm-up), model size.

The table is printed and the figures written to `var/bench/nlu-<name>.json`. The data sets, the scoring and the
table are in bench/nlu_data.py; this module trains, serves and times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import yaml

from bench.nlu_data import (
    ROOT,
    Dataset,
    Example,
    default_name,
    fallback_threshold,
    load_dataset,
    percentile,
    predicted_intent,
    read_rasa,
    score,
    table,
    uses_component,
)
from encoder.sentence_encoder import fetch_module

RASA_BIN = Path(sys.executable).parent
LATENCY_SAMPLE = 500
WARM_UP = 20


# --- config -------------------------------------------------------------------------------------


def prepare(config: Path, env: dict[str, str]) -> None:
    """Build what the config loads from outside the model: the project's spaCy pipeline, the encoder."""
    python = str(RASA_BIN / "python")
    if uses_component(config, "var/spacy/frontline_en"):
        subprocess.run([python, "-m", "nlu.spacy_pipeline"], cwd=ROOT, env=env, check=True)
    for component in yaml.safe_load(config.read_text())["pipeline"]:
        if component.get("encoder"):  # LinearIntentClassifier's sentence encoder weights
            fetch = [python, "-m", fetch_module(component["encoder"]), "fetch", "--out", str(component["encoder"])]
            subprocess.run(fetch, cwd=ROOT, env=env, check=True)


# --- training and serving -----------------------------------------------------------------------


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.setdefault("PYTHONWARNINGS", "ignore")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def train(dataset: Dataset, config: Path, out: Path, env: dict[str, str]) -> tuple[Path, float]:
    """Train from scratch (an empty training cache of its own); return the model and seconds taken."""
    command = [
        str(RASA_BIN / "rasa"),
        "train",
        "nlu",
        "--config",
        str(config),
        "--nlu",
        str(dataset.train),
        "--out",
        str(out),
        "--fixed-model-name",
        "model",
    ]
    if dataset.needs_domain:
        command += ["--domain", str(ROOT / "domain.yml")]
    with tempfile.TemporaryDirectory(prefix="bench-nlu-cache-") as cache:
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env={**env, "RASA_CACHE_DIRECTORY": cache}, check=True)
        seconds = time.perf_counter() - started
    model = out / "model.tar.gz"
    if not model.is_file():
        raise SystemExit(f"rasa train nlu did not write {model}")
    return model, seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RasaServer:
    """`rasa run --enable-api` with one model on a free loopback port, stopped on exit."""

    def __init__(self, model: Path, env: dict[str, str], log: Path) -> None:
        self.model, self.env, self.log = model, env, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RasaServer:  # noqa: PYI034 (Python 3.10 here: no typing.Self)
        command = [
            str(RASA_BIN / "rasa"),
            "run",
            "--enable-api",
            "--model",
            str(self.model),
            "--interface",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._log = self.log.open("w")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"rasa run exited with {self.process.returncode}; see {self.log}")
            try:
                status = json.loads(_get(f"{self.url}/status"))
                if status.get("model_file"):
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        self.__exit__()
        raise SystemExit(f"rasa run did not load the model within 300 s; see {self.log}")

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def parse(self, text: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/model/parse",
            data=json.dumps({"text": text}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def measure(server: RasaServer, test: Sequence[Example], seed: int = 0) -> tuple[list[str], list[float], list[float]]:
    """Parse every test message; then time a fixed sample (after a warm-up) for latency."""
    predicted, confidence = [], []
    for example in test:
        name, conf = predicted_intent(server.parse(example.text))
        predicted.append(name)
        confidence.append(conf)
    rng = random.Random(seed)
    sample = rng.sample(list(test), min(LATENCY_SAMPLE, len(test)))
    for example in sample[:WARM_UP]:
        server.parse(example.text)
    latencies = []
    for example in sample:
        started = time.perf_counter()
        server.parse(example.text)
        latencies.append((time.perf_counter() - started) * 1000)
    return predicted, confidence, latencies


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "nlu")
    parser.add_argument("--test", type=Path, default=None, help="default for the shipped data: tests/data/heldout.yml")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--split", default="test", help="CLINC-style data: test (default) or val (for tuning)")
    parser.add_argument("--name", default=None, help="the result is var/bench/nlu-<name>.json")
    parser.add_argument("--keep", action="store_true", help="keep the trained model and server log under var/bench/")
    args = parser.parse_args(argv)

    if args.test is None and args.data.resolve() == (ROOT / "nlu").resolve():
        args.test = ROOT / "tests" / "data" / "heldout.yml"
    config = args.config.resolve()
    threshold = fallback_threshold(config)  # read now: the file may change while the benchmark runs
    env = rasa_env()
    bench_dir = ROOT / "var" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-nlu-", dir=bench_dir) as tmp:
        work = Path(tmp)
        dataset = load_dataset(args.data, args.test, args.split, work)
        name = args.name or default_name(dataset.name, config)
        train_examples = len(read_rasa(dataset.train))
        print(
            f"bench-nlu {name}: {train_examples} training examples, {len(dataset.test)} test; config {config}",
            flush=True,
        )
        prepare(config, env)
        model, seconds = train(dataset, config, work / "models", env)
        print(f"trained in {seconds:.1f} s: {model.stat().st_size / 1e6:.1f} MB", flush=True)
        with RasaServer(model, env, work / "rasa.log") as server:
            predicted, confidence, latencies = measure(server, dataset.test)
        truth = [example.intent for example in dataset.test]
        result = {
            "name": name,
            "data": str(args.data),
            "test": str(args.test) if args.test else f"{args.split} split",
            "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
            "train_examples": train_examples,
            **score(truth, predicted, confidence, threshold),
            "train_seconds": round(seconds, 1),
            "parse_ms_median": round(statistics.median(latencies), 2),
            "parse_ms_p95": round(percentile(latencies, 0.95), 2),
            "parse_sample": len(latencies),
            "model_mb": round(model.stat().st_size / 1e6, 2),
            "errors": Counter(f"{t} -> {p}" for t, p in zip(truth, predicted) if t != p).most_common(15),
        }
        if args.keep:
            kept = bench_dir / f"nlu-{name}"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(work, kept)
    out = bench_dir / f"nlu-{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
