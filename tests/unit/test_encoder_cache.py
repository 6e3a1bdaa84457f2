"""The sentence encoder's embeddings on disk (encoder/cache.py): read back exactly, re-encoded when the text or the
model changes, bounded, safe with several writers at once; and encoding off the event loop."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from encoder.cache import ENVIRONMENT, FILE_NAME, EmbeddingCache, wal_journal
from encoder.sentence_encoder import SentenceEncoder, encode_off_loop
from tests.unit.racing import race, switch_waits_for_writer
from tests.unit.test_sentence_encoder import VOCAB, tiny_dir, tiny_weights  # noqa: F401  (fixture)

TEXTS = ["where is my order", "cafe", "my unknown order is where, a123?", "is my order a cafe"]


def counted(encoder: SentenceEncoder) -> list[int]:
    """Make `encoder` record how many texts each forward pass encodes."""
    sizes: list[int] = []
    forward = encoder._forward

    def recording(batch):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        return forward(batch)

    encoder._forward = recording  # type: ignore[method-assign]
    return sizes


@pytest.fixture(autouse=True)
def _no_cache_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVIRONMENT, raising=False)


def test_a_cached_vector_equals_a_fresh_encode(tiny_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    cache = tmp_path / "cache"
    first = SentenceEncoder.load(tiny_dir, heads=2, cache=cache)
    written = first.encode(TEXTS)
    # A later process: a new encoder on the same directory reads every vector back and encodes nothing.
    later = SentenceEncoder.load(tiny_dir, heads=2, cache=cache)
    sizes = counted(later)
    read_back = later.encode(TEXTS)
    assert sizes == []
    fresh = SentenceEncoder.load(tiny_dir, heads=2)
    assert fresh.store is None
    np.testing.assert_array_equal(read_back, written)
    np.testing.assert_array_equal(read_back, fresh.encode(TEXTS))


def test_only_new_or_changed_texts_are_encoded(tiny_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    cache = tmp_path / "cache"
    SentenceEncoder.load(tiny_dir, heads=2, cache=cache).encode(TEXTS)
    changed = [*TEXTS[:3], "is my order a cafe?", "un cafe"]
    later = SentenceEncoder.load(tiny_dir, heads=2, cache=cache)
    sizes = counted(later)
    vectors = later.encode(changed)
    assert sum(sizes) == 2
    fresh = SentenceEncoder.load(tiny_dir, heads=2)
    np.testing.assert_allclose(vectors, np.vstack([fresh.encode([text]) for text in changed]), atol=1e-6)
    assert not np.allclose(vectors[3], fresh.encode([TEXTS[3]])[0])


def test_other_weights_never_read_the_vectors_of_a_model(tiny_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    cache = tmp_path / "cache"
    SentenceEncoder.load(tiny_dir, heads=2, cache=cache).encode(TEXTS)
    other = tmp_path / "other"
    other.mkdir()
    save_file(tiny_weights(len(VOCAB), seed=1), str(other / "model.safetensors"))
    (other / "tokenizer.json").write_bytes((tiny_dir / "tokenizer.json").read_bytes())
    encoder = SentenceEncoder.load(other, heads=2, cache=cache)
    sizes = counted(encoder)
    vectors = encoder.encode(TEXTS)
    assert sum(sizes) == len(TEXTS)
    np.testing.assert_allclose(vectors, SentenceEncoder.load(other, heads=2).encode(TEXTS), atol=1e-6)


def test_the_environment_switches_it_on(tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv(ENVIRONMENT, str(tmp_path / "from-env"))
    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    encoder.encode(TEXTS)
    assert encoder.store is not None and len(encoder.store) == len(TEXTS)
    assert (tmp_path / "from-env" / FILE_NAME).is_file()


def vector(text: str) -> np.ndarray:
    """A vector that depends on the text only (the same in every process)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    return np.random.default_rng(seed).normal(size=8).astype(np.float32)


def test_the_least_recently_used_go_past_the_bound(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    old = EmbeddingCache(path, "m", 8, max_entries=4)
    old.put({text: vector(text) for text in ("a", "b", "c")})
    old.close()
    run = EmbeddingCache(path, "m", 8, max_entries=4)
    assert set(run.get(["a", "b"])) == {"a", "b"}  # used by this run
    run.put({text: vector(text) for text in ("d", "e")})
    assert len(run) == 4
    assert set(run.get(["a", "b", "c", "d", "e"])) == {"a", "b", "d", "e"}
    np.testing.assert_array_equal(run.get(["e"])["e"], vector("e"))


def write_many(path: str, worker: int) -> int:
    """One writer process: 300 vectors, a third of them also written by the other writers, in small batches."""
    cache = EmbeddingCache(path, "m", 8, max_entries=100_000)
    texts = [f"shared {i}" for i in range(100)] + [f"writer {worker} text {i}" for i in range(200)]
    for start in range(0, len(texts), 10):
        cache.put({text: vector(text) for text in texts[start : start + 10]})
        cache.get(texts[max(0, start - 20) : start])
    cache.close()
    return len(texts)


def test_concurrent_writers_leave_it_whole(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with ProcessPoolExecutor(4, mp_context=get_context("spawn")) as pool:
        assert list(pool.map(write_many, [str(path)] * 4, range(4))) == [300] * 4
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    cache = EmbeddingCache(path, "m", 8)
    texts = [f"shared {i}" for i in range(100)] + [f"writer {w} text {i}" for w in range(4) for i in range(200)]
    found = cache.get(texts)
    assert len(found) == len(cache) == 900
    for text in texts:
        np.testing.assert_array_equal(found[text], vector(text))


def test_the_switch_to_wal_waits_for_a_writer_on_a_new_file(tmp_path: Path) -> None:
    assert switch_waits_for_writer(tmp_path / FILE_NAME, lambda db: wal_journal(db, 5.0)) == "wal"


def open_together(paths: list[str], barrier: Any, results: Any) -> None:
    """One process of several: for each new file, wait for the others, then all create it at the same moment."""
    failures = []
    for path in paths:
        barrier.wait()
        try:
            cache = EmbeddingCache(path, "m", 8)
            cache.put({"shared": vector("shared")})
            cache.close()
        except sqlite3.Error as error:
            failures.append(f"{path}: {error}")
    results.put(failures)


def test_processes_creating_the_file_at_once_all_open_it(tmp_path: Path) -> None:
    # Switching a new file to WAL is the one step SQLite does not wait on: without a retry, about one in thirty
    # processes racing to create the file fails at once with "database is locked".
    paths = [str(tmp_path / f"{trial}" / FILE_NAME) for trial in range(40)]
    assert race(open_together, paths) == []
    for path in paths:
        cache = EmbeddingCache(path, "m", 8)
        np.testing.assert_array_equal(cache.get(["shared"])["shared"], vector("shared"))
        cache.close()


async def test_encoding_off_the_event_loop_runs_in_another_thread(tiny_dir: Path) -> None:  # noqa: F811
    encoder = SentenceEncoder.load(tiny_dir, heads=2)
    threads: list[int] = []
    encode = encoder.encode

    def recording(texts, batch_size=64):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return encode(texts, batch_size)

    encoder.encode = recording  # type: ignore[method-assign]
    vectors = await encode_off_loop(encoder, TEXTS)
    assert threads and threads[0] != threading.get_ident()
    np.testing.assert_array_equal(vectors, encode(TEXTS))
    assert vectors.shape == (len(TEXTS), 8)
