"""The pure parts of the few-shot benchmark (bench/fewshot.py): the seeded draw of k examples per intent, the
noisy variants of test messages, and the figures of one run. Standard library only: the unit tests run it in
`.venv`, the benchmark in `.venv-rasa`.
"""

from __future__ import annotations

import random
import re
import statistics
import string
from collections.abc import Sequence
from typing import Protocol

OUT_OF_SCOPE = "out_of_scope"
FALLBACK = "nlu_fallback"
DECLINED = frozenset({OUT_OF_SCOPE, FALLBACK})
SEEDS = (0, 1, 2, 3, 4)
SHOTS = (5, 10, 20)

# Neighbours on a QWERTY keyboard: a typo hits a key next to the right one.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _char in enumerate(_row):
        near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        near += [_ROWS[r][j] for r in (_r - 1, _r + 1) if 0 <= r < 3 for j in (_c - 1, _c) if 0 <= j < len(_ROWS[r])]
        KEYBOARD[_char] = "".join(sorted(set(near)))
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}‘’“”…]")


class Labelled(Protocol):
    text: str
    intent: str


def draw(examples: Sequence[Labelled], k: int, seed: int) -> list[Labelled]:
    """k examples of each intent (all of an intent with fewer), out-of-scope examples never.

    Each intent's examples are shuffled with `seed` and the first k taken, so for one seed the draw of 5 is inside
    the draw of 10, which is inside the draw of 20. The result is in the order of `examples`.
    """
    by_intent: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        if example.intent != OUT_OF_SCOPE:
            by_intent.setdefault(example.intent, []).append(index)
    chosen: list[int] = []
    for intent in sorted(by_intent):
        indices = by_intent[intent][:]
        random.Random(f"{seed}:{intent}").shuffle(indices)
        chosen += indices[:k]
    return [examples[i] for i in sorted(chosen)]


def typo(word: str, rng: random.Random) -> str:
    """One character typo in `word`: a neighbouring key instead of a letter, a letter dropped, a key pressed twice
    or two letters swapped. The result always differs from `word`."""
    letters = [i for i, char in enumerate(word) if char.lower() in KEYBOARD]
    if not letters:
        return word + rng.choice(_ROWS[1])
    while True:
        i = rng.choice(letters)
        kind = rng.choice(("substitute", "delete", "insert", "swap") if len(word) > 1 else ("substitute", "insert"))
        if kind == "substitute":
            result = word[:i] + rng.choice(KEYBOARD[word[i].lower()]) + word[i + 1 :]
        elif kind == "delete":
            result = word[:i] + word[i + 1 :]
        elif kind == "insert":
            result = word[: i + 1] + rng.choice(KEYBOARD[word[i].lower()]) + word[i + 1 :]
        else:
            j = i + 1 if i + 1 < len(word) else i - 1
            a, b = sorted((i, j))
            result = word[:a] + word[b] + word[a] + word[b + 1 :]
        if result != word:
            return result


def with_typos(texts: Sequence[str], share: float, seed: int) -> list[str]:
    """The texts with one typo in exactly round(share * words) of their words (words: split on white space),
    the words chosen at random with `seed` over all the texts together."""
    words = [text.split() for text in texts]
    positions = [(t, w) for t, split in enumerate(words) for w in range(len(split))]
    rng = random.Random(f"typos:{seed}:{share}")
    for t, w in rng.sample(positions, round(share * len(positions))):
        words[t][w] = typo(words[t][w], rng)
    return [" ".join(split) if split else text for text, split in zip(texts, words)]


def plain(text: str) -> str:
    """Lower case without punctuation, as many customers type."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def figures(truth: Sequence[str], answered: Sequence[str], top: Sequence[str]) -> dict[str, float | None]:
    """The figures of one test run.

    `truth` is the intent of each message (`out_of_scope` for one no intent covers); `answered` the intent the
    assistant answers with (`nlu_fallback` or `out_of_scope`: it declines), `top` its best intent before declining.
    - accuracy: in-scope messages answered with their intent (a declined one is a miss);
    - top1: in-scope messages whose best intent is theirs, nothing declined (as the published figures count);
    - oos_recall: out-of-scope messages declined;
    - confident_wrong: messages of ALL answered with a wrong intent (an out-of-scope one answered at all);
    - confident_wrong_in_scope, declined_in_scope: over the in-scope messages.
    An answered message's confidence is at least the fallback threshold: below it, it is declined.
    """
    inside = [i for i, label in enumerate(truth) if label != OUT_OF_SCOPE]
    outside = [i for i, label in enumerate(truth) if label == OUT_OF_SCOPE]
    wrong = [answered[i] not in DECLINED and answered[i] != truth[i] for i in range(len(truth))]

    def share(hits: Sequence[bool]) -> float | None:
        return sum(hits) / len(hits) if hits else None

    return {
        "accuracy": share([answered[i] == truth[i] for i in inside]),
        "top1": share([top[i] == truth[i] for i in inside]),
        "oos_recall": share([answered[i] in DECLINED for i in outside]),
        "confident_wrong": share(wrong),
        "confident_wrong_in_scope": share([wrong[i] for i in inside]),
        "declined_in_scope": share([answered[i] in DECLINED for i in inside]),
    }


def spread(values: Sequence[float | None]) -> dict[str, float] | None:
    """Mean, standard deviation (of the sample), minimum and maximum; None without values."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return {
        "mean": statistics.fmean(present),
        "sd": statistics.stdev(present) if len(present) > 1 else 0.0,
        "min": min(present),
        "max": max(present),
    }
