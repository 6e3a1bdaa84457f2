"""Train & deploy, as the admin console runs it: export, train in `.venv-rasa`, evaluate, then put live on request.

One training at a time (a version in TRAINING is the lock, shared by every app worker through the database).
Its stage and Rasa's last lines are kept on the version row, so any worker's console shows the progress. A
failed training leaves the live model alone and says what went wrong in words an admin can act on. The model
is ready to put live as soon as it is trained; its evaluation (a held-out fifth of every intent's examples,
trained apart) follows and fills in the version's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.content import current, versions
from bot.content.files import Content, ContentError, Intent, write_files, write_tree
from bot.content.model_store import store_for
from bot.rasa_runtime import RASA_VENV, ROOT, build_spacy_pipeline, fingerprint, training_env
from bot.storage.db import Sessions
from bot.storage.models import AuditEntry, ModelStatus, ModelVersion, utcnow

log = logging.getLogger(__name__)
LOG_LINES = 40
STALE_AFTER = timedelta(minutes=30)  # a TRAINING row older than this was left by a process that died
ABANDONED = "The app stopped while this was training. Train again."
START_LOCK = 0x46524E545452414E  # PostgreSQL advisory lock: one training starts at a time, across app workers
HOLD_OUT_EVERY = 5  # every 5th example of an intent with at least that many is held out for the evaluation
EXPLAINED = [  # what Rasa says, and what an admin should read
    (re.compile(r"InvalidDomain|domain", re.IGNORECASE), "The bot's responses or intents don't fit together"),
    (re.compile(r"YamlValidationException|YAML", re.IGNORECASE), "Some content could not be read"),
    (re.compile(r"not enough|at least", re.IGNORECASE), "An intent needs more examples"),
]


class TrainingBusy(ContentError):
    """A training is already running."""


def hold_out(content: Content, every: int = HOLD_OUT_EVERY) -> tuple[Content, list[tuple[str, str]]]:
    """The content minus every `every`-th example of each intent that has at least `every`, and those examples."""
    kept: dict[str, Intent] = {}
    held: list[tuple[str, str]] = []
    for name, intent in content.intents.items():
        if len(intent.examples) >= every:
            held += [(example, name) for example in intent.examples[every - 1 :: every]]
            examples = [e for i, e in enumerate(intent.examples) if (i + 1) % every]
        else:
            examples = list(intent.examples)
        kept[name] = Intent(name, examples, intent.comment, intent.file, intent.listed, intent.domain_comment)
    return Content(kept, dict(content.responses), {k: list(v) for k, v in content.layouts.items()}), held


def test_file(held: Sequence[tuple[str, str]]) -> str:
    """Held-out examples as a Rasa NLU file."""
    by_intent: dict[str, list[str]] = {}
    for example, intent in held:
        by_intent.setdefault(intent, []).append(example)
    lines = ['version: "3.1"\n', "nlu:\n"]
    for intent, examples in by_intent.items():
        lines += [f"  - intent: {intent}\n", "    examples: |\n", *(f"      - {e}\n" for e in examples)]
    return "".join(lines)


def per_intent(report_dir: Path) -> dict[str, Any]:
    """Accuracy overall and recall per intent from `rasa test nlu`'s reports (FAQ topics from the response
    selection report when there is one)."""
    result: dict[str, Any] = {"intents": {}}
    intent_report = report_dir / "intent_report.json"
    if intent_report.exists():
        data = json.loads(intent_report.read_text())
        result["accuracy"] = data.get("accuracy")
        result["macro_f1"] = (data.get("macro avg") or {}).get("f1-score")
        for name, figures in data.items():
            if (
                isinstance(figures, dict)
                and "recall" in figures
                and name not in ("macro avg", "weighted avg", "micro avg")
            ):
                result["intents"][name] = {"accuracy": figures["recall"], "examples": figures.get("support")}
    selection = report_dir / "response_selection_report.json"
    if selection.exists():
        data = json.loads(selection.read_text())
        for name, figures in data.items():
            if isinstance(figures, dict) and "recall" in figures and "/" in name:
                result["intents"][name] = {"accuracy": figures["recall"], "examples": figures.get("support")}
        result["faq_accuracy"] = data.get("accuracy")
    return result


def explain(output: str) -> str:
    """Rasa's complaint, in words an admin can act on, with the lines that matter."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    relevant = [
        line
        for line in lines
        if re.search(r"error|invalid|exception|warning|must|cannot|can't", line, re.IGNORECASE)
        and "Traceback" not in line
        and not line.startswith("File ")
    ]
    for pattern, words in EXPLAINED:
        if any(pattern.search(line) for line in relevant):
            return f"{words}. Rasa said:\n" + "\n".join(relevant[-6:])
    return "Training stopped. Rasa's last words:\n" + "\n".join((relevant or lines)[-6:])


def begin_training(session: Session, who: str, note: str) -> int:
    """A new version in TRAINING (TrainingBusy while one is): its id. A training left by a process that died is
    marked failed first. On PostgreSQL an advisory lock makes the check and the new row one step across workers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": START_LOCK})
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.status == ModelStatus.TRAINING, ModelVersion.created_at <= utcnow() - STALE_AFTER)
        .values(status=ModelStatus.FAILED, stage="failed", error=ABANDONED)
    )
    running = session.scalar(select(ModelVersion).where(ModelVersion.status == ModelStatus.TRAINING))
    if running is not None:
        raise TrainingBusy(f"A training is already running (version {running.id}, started by {running.created_by})")
    version = ModelVersion(
        status=ModelStatus.TRAINING,
        created_by=who,
        note=note,
        fingerprint="",
        content_version=current.version(session),
        stage="exporting",
    )
    session.add(version)
    session.flush()
    session.add(AuditEntry(who=who, action="train", target=f"version {version.id}", before=None, after={"note": note}))
    return version.id


def set_version(session: Session, version_id: int, values: dict[str, Any]) -> None:
    """Set fields of a version (its stage, status, log, figures)."""
    version = session.get(ModelVersion, version_id)
    assert version is not None
    for key, value in values.items():
        setattr(version, key, value)


class Trainer:
    """Runs trainings for the console and puts versions live."""

    def __init__(self, settings: Settings, sessions: Sessions) -> None:
        self._settings = settings
        self._sessions = sessions
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starting = asyncio.Lock()
        self._store = store_for(sessions, settings.models_dir)

    async def start(self, who: str, note: str = "") -> int:
        """Begin a training of the content as it is now; returns the new version's id (TrainingBusy if one runs).

        Two admins pressing Train at once start one training: the check and the new row are one step, in this
        process (a lock) and across workers (an advisory lock on PostgreSQL). A training left by a process that
        died is marked failed here, so the history does not show it training for ever."""
        async with self._starting:
            version_id = await self._sessions.run(begin_training, who, note)
        task = asyncio.create_task(self._run(version_id), name=f"train-{version_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return version_id

    async def wait(self) -> None:
        """Until every training (and evaluation) this process started has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop what runs (the app is stopping); the versions are marked failed."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _update(self, version_id: int, **values: Any) -> None:
        await self._sessions.run(set_version, version_id, values)

    async def _run(self, version_id: int) -> None:
        work = Path(tempfile.mkdtemp(prefix=f"frontline-train-{version_id}-"))
        trained = False
        try:
            content = await self._sessions.read(current.load)
            files = write_files(content)
            name = fingerprint(self._settings, files)
            write_tree(content, work / "content")
            await self._update(version_id, stage="training", fingerprint=name)
            started = time.monotonic()
            path = self._settings.models_dir / f"{name}.tar.gz"
            if not await self._store.has(name) and not path.exists():  # (a model of this content is kept already)
                await asyncio.to_thread(build_spacy_pipeline, self._settings)
                await self._rasa(
                    version_id,
                    [
                        "train",
                        "--config",
                        str(ROOT / "config.yml"),
                        "--domain",
                        str(work / "content" / "domain.yml"),
                        "--data",
                        str(work / "content" / "nlu"),
                        "--out",
                        str(work / "out"),
                        "--fixed-model-name",
                        name,
                    ],
                )
                self._settings.models_dir.mkdir(parents=True, exist_ok=True)
                shutil.move(str(work / "out" / f"{name}.tar.gz"), path)
            if not await self._store.has(name):  # (PostgreSQL: into the database, for every app instance)
                await self._store.put(path, name)
            await self._update(
                version_id,
                status=ModelStatus.READY,
                stage="evaluating",
                file=path.name,
                train_seconds=round(time.monotonic() - started, 1),
            )
            trained = True
            log.info("model version %d trained (%s)", version_id, path.name)
            metrics = await self._evaluate(version_id, content, work)
            await self._update(version_id, stage="ready", metrics=metrics)
        except asyncio.CancelledError:
            await self._stopped(version_id, trained, ABANDONED)
            raise
        except TrainingFailed as exc:
            await self._stopped(version_id, trained, str(exc))
        except Exception as exc:
            log.exception("training version %d failed", version_id)
            await self._stopped(
                version_id,
                trained,
                f"Training stopped because of a problem on the server "
                f"({type(exc).__name__}). The live model is unchanged. Details are in the app's log.",
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _stopped(self, version_id: int, trained: bool, error: str) -> None:
        """A training that stopped is FAILED; once the model is trained (it may be live already), only its
        evaluation is missing and the version stays READY."""
        if trained:
            await self._update(version_id, stage="ready", metrics={"error": f"The evaluation could not run. {error}"})
        else:
            await self._update(version_id, status=ModelStatus.FAILED, stage="failed", error=error)

    async def _evaluate(self, version_id: int, content: Content, work: Path) -> dict[str, Any] | None:
        train, held = hold_out(content)
        if not held:
            return None
        write_tree(train, work / "split")
        (work / "heldout.yml").write_text(test_file(held), encoding="utf-8")
        try:
            await self._rasa(
                version_id,
                [
                    "train",
                    "nlu",
                    "--config",
                    str(ROOT / "config.yml"),
                    "--nlu",
                    str(work / "split" / "nlu"),
                    "--domain",
                    str(work / "split" / "domain.yml"),
                    "--out",
                    str(work / "eval"),
                    "--fixed-model-name",
                    "eval",
                ],
            )
            await self._rasa(
                version_id,
                [
                    "test",
                    "nlu",
                    "--model",
                    str(work / "eval" / "eval.tar.gz"),
                    "--nlu",
                    str(work / "heldout.yml"),
                    "--out",
                    str(work / "results"),
                    "--no-plot",
                ],
            )
        except TrainingFailed as exc:
            log.warning("evaluation of version %d failed: %s", version_id, exc)
            return {"error": "The evaluation could not run; the model itself is fine."}
        figures = per_intent(work / "results")
        figures["held_out"] = len(held)
        return figures

    async def _rasa(self, version_id: int, arguments: list[str]) -> None:
        process = await asyncio.create_subprocess_exec(
            str(RASA_VENV / "bin" / "rasa"),
            *arguments,
            cwd=ROOT,
            env=training_env(self._settings),  # the embedding cache: a retrain encodes only new examples
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=lambda: os.nice(10),
        )  # below the serving Rasa and the app: customers first
        tail: list[str] = []
        last_saved = 0.0
        assert process.stdout is not None
        try:
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                if not line or "Warning" in line and "warn(" in line:
                    continue
                tail = [*tail[-(LOG_LINES - 1) :], line[-300:]]
                if time.monotonic() - last_saved > 1.0:
                    last_saved = time.monotonic()
                    await self._update(version_id, log="\n".join(tail))
            code = await process.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()  # (reaped, not left a zombie)
            raise
        await self._update(version_id, log="\n".join(tail))
        if code != 0:
            raise TrainingFailed(explain("\n".join(tail)))

    async def put_live(self, version_id: int, who: str) -> ModelVersion:
        """Put a trained version live (a new one, or an earlier one back): every Rasa instance pulls it. Refused
        when no model store has its model (on PostgreSQL, one found on this machine's disk is stored first)."""
        version = await self._sessions.read(versions.get_version, version_id)
        if (
            version is not None
            and version.status == ModelStatus.READY
            and not await self._store.ensure(version.fingerprint)
        ):
            raise ContentError(f"version {version_id}'s model ({version.file}) is missing: train again")
        try:
            return await self._sessions.run(versions.put_version_live, version_id, who)
        except ValueError as exc:
            raise ContentError(str(exc)) from None


class TrainingFailed(ContentError):
    """Rasa refused the content or failed; the message is for the admin."""
