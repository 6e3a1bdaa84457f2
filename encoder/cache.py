"""Sentence embeddings kept on disk between trainings, keyed by (model id, text).

Encoding the shop's few thousand examples is most of a training's time on 2 cores; after an admin's small change
almost all of them are the same texts as last time. `EmbeddingCache` keeps their vectors in one SQLite file (the
standard library's, in both environments), so a retrain encodes only the new or changed examples.

- The model id is a hash of the weights, the vocabulary and the encoder's code (`model_id`): other weights or a
  changed forward pass never read an old vector. A text is looked up by its SHA-256, and stored exactly (float32).
- Every write is one SQLite transaction (WAL journal, waiting for the lock): two trainings at once, or a crash in
  the middle, leave the file whole. Switching a new file to WAL is the one step SQLite does not wait on (two
  processes creating the file at once: the loser gets "database is locked" at once), so it is retried.
- It is bounded: at most `max_entries` vectors, and past that the ones least recently used are dropped. "Recently"
  counts training runs, not the clock: each `EmbeddingCache` opened is one run, and a lookup or a write marks the
  vector used by it, so a run never drops what it used while older runs' vectors remain.

It is used only where it is switched on, by `FRONTLINE_ENCODER_CACHE` naming a directory: `frontline train` sets it
for Rasa's training process. A serving Rasa leaves it unset and so never writes customers' messages to disk.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

ENVIRONMENT = "FRONTLINE_ENCODER_CACHE"
FILE_NAME = "embeddings.sqlite3"
# About 1.6 kB a vector (384 float32 and the key): 20,000 is some 32 MB, several times the shop's examples.
DEFAULT_MAX_ENTRIES = 20_000
_TIMEOUT = 60.0  # seconds a writer waits for another's transaction
_CHUNK = 500  # texts per query (SQLite's limit on parameters is 999 in old builds)

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key BLOB NOT NULL, vector BLOB NOT NULL,"
        " used INTEGER NOT NULL, PRIMARY KEY (model, key))"
    ),
    "CREATE INDEX IF NOT EXISTS vectors_used ON vectors (used)",
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT)",
)


def model_id(files: Iterable[Path]) -> str:
    """A hash of the files an embedding depends on (weights, vocabulary, the encoder's source)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def wal_journal(db: sqlite3.Connection, timeout: float) -> None:
    """Put the database in WAL mode, retrying while another process holds the lock for the same switch.

    SQLite does not call its busy handler for this pragma (it would upgrade a read lock to a write lock), so
    several processes opening a new file together can fail it at once; once the file is WAL it is a no-op.
    """
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Vectors of one model on disk, by text; bounded to `max_entries` across all models, least recently used out."""

    def __init__(self, path: str | Path, model: str, dimension: int, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.path = Path(path)
        self.model = model
        self.dimension = dimension
        self.max_entries = max_entries
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, used from whichever thread encodes
        self._db = sqlite3.connect(self.path, timeout=_TIMEOUT, isolation_level=None, check_same_thread=False)
        wal_journal(self._db, _TIMEOUT)
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)
            self.run = int(self._db.execute("INSERT INTO runs DEFAULT VALUES").lastrowid or 0)
            self._db.execute("DELETE FROM runs WHERE id < ?", (self.run,))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those `texts` that have one, by text; marks them used by this run."""
        keys = {text_key(text): text for text in dict.fromkeys(texts)}
        found: dict[str, np.ndarray] = {}
        with self._lock, self._transaction():
            names = list(keys)
            for start in range(0, len(names), _CHUNK):
                chunk = names[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))  # placeholders only: the keys are parameters
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                    (self.model, *chunk),
                ).fetchall()
                hits = []
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype="<f4")
                    if vector.shape == (self.dimension,):
                        found[keys[bytes(key)]] = vector.astype(np.float32)
                        hits.append(bytes(key))
                if hits:
                    self._db.execute(
                        f"UPDATE vectors SET used = ? WHERE model = ? AND key IN ({','.join('?' * len(hits))})",
                        (self.run, self.model, *hits),
                    )
        return found

    def put(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Store the vectors of those texts (replacing any), then drop the least recently used past the bound."""
        rows = [
            (self.model, text_key(text), np.asarray(vector, dtype="<f4").tobytes(), self.run)
            for text, vector in vectors.items()
        ]
        if not rows:
            return
        with self._lock, self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO vectors (model, key, vector, used) VALUES (?, ?, ?, ?)", rows)
            (count,) = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
            if count > self.max_entries:
                self._db.execute(
                    "DELETE FROM vectors WHERE rowid IN (SELECT rowid FROM vectors ORDER BY used LIMIT ?)",
                    (count - self.max_entries,),
                )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an error): the write lock is taken first, so no reader upgrades late."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
