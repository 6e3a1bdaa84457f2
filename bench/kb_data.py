"""StackFAQ and CLINC150 for `make bench-kb`: the base, the split by article id parity, and a vector cache."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.kb.encoder import Encoder
from bot.kb.text import text_hash

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STACKFAQ = DATA / "stackfaq"
CLINC = DATA / "clinc150"


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    passages: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    text: str
    article_id: str
    answerable: bool  # False: its article is held out of the base


def passages_of(body: str) -> tuple[str, ...]:
    """An article's paragraphs: blank-line separated, blank ones dropped."""
    return tuple(" ".join(part.split()) for part in body.split("\n\n") if part.strip())


def articles(directory: Path = STACKFAQ) -> list[Article]:
    rows = [json.loads(line) for line in (directory / "articles.jsonl").read_text(encoding="utf-8").splitlines()]
    return [Article(row["id"], row["title"], passages_of(row["body"])) for row in rows if row.get("body")]


def heldout_ids(directory: Path = STACKFAQ) -> set[str]:
    return set((directory / "heldout_articles.txt").read_text(encoding="utf-8").split())


def base(directory: Path = STACKFAQ) -> list[Article]:
    """The knowledge base: the articles not held out."""
    held = heldout_ids(directory)
    return [article for article in articles(directory) if article.id not in held]


def is_validation(article_id: str) -> bool:
    """Even-numbered articles' queries tune (validation); odd-numbered ones are the test."""
    return int(article_id.lstrip("sf")) % 2 == 0


def queries(half: str, directory: Path = STACKFAQ) -> list[Query]:
    """The queries of one half ("validation" or "test"), answerable and held-out alike."""
    if half not in ("validation", "test"):
        raise ValueError(f"half must be validation or test, not {half!r}")
    held = heldout_ids(directory)
    with (directory / "queries.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Query(row["question"], row["article_id"], row["article_id"] not in held)
        for row in rows
        if is_validation(row["article_id"]) == (half == "validation")
    ]


def clinc_oos(split: str = "test", directory: Path = CLINC) -> list[str]:
    """CLINC150's out-of-scope queries of a split (oos_val: 100, oos_test: 1,000)."""
    with (directory / f"oos_{split}.csv").open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


class VectorCache:
    """Vectors by text hash in an .npz file, so that tuning runs encode StackFAQ once."""

    def __init__(self, encoder: Encoder, path: Path | None) -> None:
        self.encoder = encoder
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            with np.load(path) as stored:
                self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(text for text in texts if text_hash(text) not in self.vectors))
        if missing:
            for text, vector in zip(missing, self.encoder.encode(missing), strict=True):
                self.vectors[text_hash(text)] = vector
            self.save()
        return np.stack([self.vectors[text_hash(text)] for text in texts]) if texts else np.zeros((0, 384), "float32")

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.vectors)
        np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.vectors[key] for key in keys]))
