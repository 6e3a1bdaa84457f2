"""What the action server's help-center index reads and writes in the database: the articles (by revision), their
passages, and the passages' stored vectors. Plain functions of a Session, run with `Sessions.run`/`read`.

Vectors are float32 bytes keyed by the sha256 of the encoded text and the encoder's id; two action servers may
store the same one at once, so an insert that finds the row already there is not an error. Vectors of texts no
article has any more are deleted (`prune_vectors`) once an article was changed or removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.content.articles import as_help_article, revisions
from bot.content.help_center import passages
from bot.kb.index import Index
from bot.kb.text import text_hash
from bot.storage.kb_models import Article, PassageVector

BATCH = 500  # hashes per IN (...) query


@dataclass(frozen=True)
class IndexedArticle:
    """An article as the index takes it: id, revision, title, link and the texts of its passages."""

    id: int
    revision: int
    title: str
    url: str | None
    passages: tuple[str, ...]


def article_revisions(session: Session) -> dict[int, int]:
    """Every article's id and revision, in one query: what the index polls."""
    return revisions(session)


def articles(session: Session, ids: Iterable[int] | None = None) -> list[IndexedArticle]:
    """The articles (all, or those of `ids`) with their passages."""
    query = select(Article)
    if ids is not None:
        query = query.where(Article.id.in_(list(ids)))
    return [
        IndexedArticle(row.id, row.revision, row.title, row.url, tuple(p.text for p in passages(as_help_article(row))))
        for row in session.scalars(query).all()
    ]


def stored_vectors(
    session: Session, model: str, hashes: Iterable[str] | None = None
) -> dict[str, npt.NDArray[np.float32]]:
    """The stored vectors of this encoder (all, or those of `hashes`), by text hash."""
    wanted = None if hashes is None else sorted(set(hashes))
    found: dict[str, npt.NDArray[np.float32]] = {}
    chunks = [None] if wanted is None else [wanted[i : i + BATCH] for i in range(0, len(wanted), BATCH)]
    for chunk in chunks:
        query = select(PassageVector.text_hash, PassageVector.vector).where(PassageVector.model == model)
        if chunk is not None:
            query = query.where(PassageVector.text_hash.in_(chunk))
        for key, blob in session.execute(query).all():
            found[key] = np.frombuffer(blob, dtype=np.float32).copy()
    return found


def store_vectors(session: Session, model: str, vectors: Mapping[str, npt.NDArray[np.float32]]) -> None:
    """Store new vectors; one another server stored meanwhile is kept as it is."""
    if not vectors:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    rows = [
        {"text_hash": key, "model": model, "vector": np.asarray(vector, dtype=np.float32).tobytes()}
        for key, vector in vectors.items()
    ]
    for start in range(0, len(rows), BATCH):
        session.execute(insert(PassageVector).values(rows[start : start + BATCH]).on_conflict_do_nothing())


def prune_vectors(session: Session, model: str) -> int:
    """Delete this encoder's stored vectors of texts no article has any more (an edited paragraph, a deleted
    article); how many. The articles are read in the same transaction: a vector stored for an article committed
    since is kept, and one lost to the narrow race of an article committed during the delete is encoded again."""
    used = {text_hash(text) for row in articles(session) for text in Index.texts_to_encode(row.title, row.passages)}
    stored = session.scalars(select(PassageVector.text_hash).where(PassageVector.model == model)).all()
    unused = sorted(set(stored) - used)
    for start in range(0, len(unused), BATCH):
        chunk = unused[start : start + BATCH]
        session.execute(delete(PassageVector).where(PassageVector.model == model, PassageVector.text_hash.in_(chunk)))
    return len(unused)
