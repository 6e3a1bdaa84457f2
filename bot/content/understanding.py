"""A quick check of how well the examples tell the intents apart, in pure Python and without Rasa: for the console.

Every example is a bag of character n-grams within its words (2 to 4 characters, each word padded with a space, so
typos and word forms still share most of them) and of its whole words, with sublinear term frequencies, scaled to
length one. An intent is the normalised mean of its examples (its centroid). A message's score for an intent is the
sum over the n-grams they share of (message weight × centroid weight × idf²), idf counted over the examples the model
learned from: rare n-grams say more than common ones.

`check` cross-validates one intent: its examples are split in `FOLDS` parts (by position: example i is in part
i mod FOLDS); each part in turn is left out, the model learns from every other intent's examples and the rest of
this intent's (the idf too), and each left-out example counts as recognised when this intent scores strictly higher
than every other one. Only this intent's examples move between parts, so the other intents' centroids are built once.
`nearest` ranks the intents for a message with the model learned from every example (a cosine, 0 to 1).

It is far simpler than the trained model (a linear SVM over the same kind of n-grams, with a confidence threshold):
its figures are a quick, pessimistic guide, not the trained model's accuracy. Plain functions of plain data: no
database, no Rasa, no numpy.
"""

from __future__ import annotations

import collections
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

FOLDS = 5
MIN_EXAMPLES = 5  # fewer examples than this: "needs more examples"
MIN_RECALL = 0.7  # or fewer of its examples than this recognised in the check
NGRAMS = (2, 3, 4)
NOT_SUGGESTED = frozenset({"nlu_fallback", "out_of_scope"})  # never offered as the intent a message belongs to
_WORD = re.compile(r"\w+")

Vector = Mapping[str, float]


@functools.lru_cache(maxsize=100_000)
def features(text: str) -> Vector:
    """An example's n-grams and words with sublinear term frequencies, scaled to length one (cached: read-only)."""
    counts: collections.Counter[str] = collections.Counter()
    for word in _WORD.findall(text.casefold()):
        counts["w:" + word] += 1
        padded = f" {word} "
        for n in NGRAMS:
            counts.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    weights = {name: 1.0 + math.log(count) for name, count in counts.items()}
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    return {name: w / norm for name, w in weights.items()}


def centroid(vectors: Sequence[Vector]) -> dict[str, float]:
    """The normalised sum of the vectors (empty for none)."""
    total: dict[str, float] = collections.defaultdict(float)
    for vector in vectors:
        for name, w in vector.items():
            total[name] += w
    norm = math.sqrt(sum(w * w for w in total.values())) or 1.0
    return {name: w / norm for name, w in total.items()}


def idf(documents: int, frequency: int) -> float:
    """The inverse document frequency of an n-gram in `frequency` of `documents` examples (smoothed)."""
    return math.log((1 + documents) / (1 + frequency)) + 1.0


def folds(count: int, parts: int = FOLDS) -> list[tuple[list[int], list[int]]]:
    """(learned from, left out) positions of each part: every position left out exactly once, never in both."""
    parts = max(1, min(parts, count))
    return [
        ([i for i in range(count) if i % parts != part], [i for i in range(count) if i % parts == part])
        for part in range(parts)
    ]


@dataclass(frozen=True)
class Check:
    """How one intent's examples were understood in the cross-validation."""

    intent: str
    examples: int
    recognised: int  # left-out examples this intent scored highest for
    confused_with: str | None = None  # the other intent its left-out examples were most often taken for
    confused_count: int = 0
    confusions: tuple[str, ...] = ()  # up to two of its examples taken for `confused_with`
    missed: dict[str, int] = field(default_factory=dict)  # every other intent its examples were taken for, how often

    @property
    def recall(self) -> float | None:
        """The share of its examples recognised (None when it has none)."""
        return self.recognised / self.examples if self.examples else None

    @property
    def needs_more(self) -> bool:
        """Fewer than MIN_EXAMPLES examples, or under MIN_RECALL of them recognised."""
        return self.examples < MIN_EXAMPLES or (self.recall or 0.0) < MIN_RECALL


class _Index:
    """Intents' centroids by n-gram, and the n-grams' example counts, for scoring messages against them all."""

    def __init__(self, intents: Mapping[str, Sequence[str]]) -> None:
        self.names = [name for name, examples in intents.items() if examples]
        self.postings: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
        self.frequency: collections.Counter[str] = collections.Counter()
        self.documents = 0
        for number, name in enumerate(self.names):
            summary, frequency, count = _summary(tuple(intents[name]))
            for gram, w in summary.items():
                self.postings[gram].append((number, w))
            self.frequency.update(frequency)
            self.documents += count

    def scores(
        self,
        message: Vector,
        own: Mapping[str, float] | None = None,
        learned: tuple[Mapping[str, int], int] | None = None,
    ) -> tuple[list[float], float]:
        """Every intent's score for the message, and the score of `own` (a centroid outside the index).

        `learned` (n-gram counts, example count) is added to the index's own counts for the idf: the examples of the
        intent being checked that the model learned from in this part."""
        extra, extra_documents = learned if learned is not None else ({}, 0)
        documents = self.documents + extra_documents
        totals = [0.0] * len(self.names)
        own_total = 0.0
        for gram, w in message.items():
            frequency = self.frequency[gram] + extra.get(gram, 0)
            if not frequency:
                continue  # an n-gram no learned example has tells nothing
            weight = w * idf(documents, frequency) ** 2
            for number, c in self.postings.get(gram, ()):
                totals[number] += weight * c
            if own:
                own_total += weight * own.get(gram, 0.0)
        return totals, own_total


@functools.lru_cache(maxsize=1024)
def _summary(examples: tuple[str, ...]) -> tuple[dict[str, float], collections.Counter[str], int]:
    """An intent's centroid, how many of its examples have each n-gram, and how many there are (cached: an intent
    nobody changed is not read again at the next check)."""
    vectors = [features(e) for e in examples]
    frequency: collections.Counter[str] = collections.Counter()
    for vector in vectors:
        frequency.update(vector.keys())
    return centroid(vectors), frequency, len(vectors)


def check(intents: Mapping[str, Sequence[str]], name: str, parts: int = FOLDS) -> Check:
    """Cross-validate intent `name` against all the intents (name -> examples; those without examples left out)."""
    examples = list(intents.get(name) or ())
    mine = [features(e) for e in examples]
    index = _Index({other: found for other, found in intents.items() if other != name})
    recognised = 0
    missed: collections.Counter[str] = collections.Counter()
    taken_for: dict[str, list[str]] = collections.defaultdict(list)
    for learned, left_out in folds(len(mine), parts):
        if not learned:
            continue  # a single example: nothing to learn it from, so it is not recognised
        own = centroid([mine[i] for i in learned])
        counts: collections.Counter[str] = collections.Counter()
        for i in learned:
            counts.update(mine[i].keys())
        for i in left_out:
            totals, own_score = index.scores(mine[i], own, (counts, len(learned)))
            best = max(range(len(totals)), key=totals.__getitem__, default=None)
            if own_score > 0 and (best is None or own_score > totals[best]):
                recognised += 1
            elif best is not None and totals[best] > 0 and totals[best] >= own_score:
                missed[index.names[best]] += 1
                taken_for[index.names[best]].append(examples[i])
    top = missed.most_common(1)
    confused, count = top[0] if top else (None, 0)
    return Check(
        intent=name,
        examples=len(mine),
        recognised=recognised,
        confused_with=confused,
        confused_count=count,
        confusions=tuple(taken_for[confused][:2]) if confused else (),
        missed=dict(missed),
    )


class Nearest:
    """The model learned from every example, ranking the intents for messages (built once for many messages)."""

    def __init__(self, intents: Mapping[str, Sequence[str]]) -> None:
        self.index = _Index(intents)
        self.norms = [0.0] * len(self.index.names)  # each centroid's length with the idf² weights
        for gram, postings in self.index.postings.items():
            weight = idf(self.index.documents, self.index.frequency[gram]) ** 2
            for number, c in postings:
                self.norms[number] += c * c * weight
        self.norms = [math.sqrt(n) for n in self.norms]

    def ranking(self, text: str) -> list[tuple[str, float]]:
        """Every intent but NOT_SUGGESTED with its cosine to the message (0 to 1), the nearest first; only
        intents that share something with it."""
        message = features(text)
        totals, _ = self.index.scores(message)
        length = math.sqrt(
            sum(
                (w * idf(self.index.documents, self.index.frequency[g])) ** 2
                for g, w in message.items()
                if self.index.frequency[g]
            )
        )
        found = [
            (name, min(1.0, total / (length * self.norms[number])))
            for number, (name, total) in enumerate(zip(self.index.names, totals, strict=True))
            if total > 0 and name not in NOT_SUGGESTED
        ]
        return sorted(found, key=lambda item: (-item[1], item[0]))

    def nearest(self, text: str) -> tuple[str, float] | None:
        """The best intent for the message but NOT_SUGGESTED, with its cosine; None when none shares anything."""
        ranked = self.ranking(text)
        return ranked[0] if ranked else None
