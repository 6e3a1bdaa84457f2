"""The held-out phrasings are a fair test: every intent has them, and none is in the training data."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MIN_PER_INTENT = 5


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _examples(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for block in (yaml.safe_load(path.read_text()) or {}).get("nlu", []):
        if "intent" in block:
            lines = [line.strip()[2:] for line in block["examples"].splitlines() if line.strip().startswith("- ")]
            found.setdefault(block["intent"], []).extend(
                re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line) for line in lines
            )
    return found


def _training() -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        for intent, texts in _examples(path).items():
            merged.setdefault(intent, []).extend(texts)
    return merged


# Intents only the app sends (`/attach_photo` for a photo without a caption, the Yes / No buttons under a help-center
# answer): customers never type them.
SENT_BY_THE_APP = ("attach_photo", "article_helpful", "article_not_helpful")
HELDOUT = _examples(ROOT / "tests" / "data" / "heldout.yml")
TRAINING = _training()


def _complaint_set(name: str) -> list[str]:
    data = yaml.safe_load((ROOT / "tests" / "data" / name).read_text())
    return [o["text"] for o in data["openings"]] + list(data["lookalikes"])


# The complaint sets of the empathy end-to-end test (the sealed one is only ever reported): never trained on either.
COMPLAINT_SETS = _complaint_set("complaints.yml") + _complaint_set("complaints_sealed.yml")


def test_every_intent_and_faq_topic_has_heldout_phrasings() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    faq_topics = {name.removeprefix("utter_") for name in domain["responses"] if name.startswith("utter_faq/")}
    intents = {i for i in domain["intents"] if i not in ("faq", *SENT_BY_THE_APP)} | faq_topics
    assert intents <= set(HELDOUT), f"no held-out phrasings for {sorted(intents - set(HELDOUT))}"
    thin = {intent: len(texts) for intent, texts in HELDOUT.items() if len(set(texts)) < MIN_PER_INTENT}
    assert not thin, f"fewer than {MIN_PER_INTENT} held-out phrasings: {thin}"


def test_every_intent_has_at_least_15_training_examples() -> None:
    thin = {intent: len(texts) for intent, texts in TRAINING.items() if len(set(texts)) < 15}
    assert not thin


def _held_out() -> list[str]:
    return [text for texts in HELDOUT.values() for text in texts] + COMPLAINT_SETS


def test_no_heldout_phrasing_is_in_the_training_data() -> None:
    training = {_normalise(text) for texts in TRAINING.values() for text in texts}
    leaked = [text for text in _held_out() if _normalise(text) in training]
    assert not leaked, f"held-out phrasings found in nlu/: {leaked}"


def test_the_complaint_sets_are_large_enough() -> None:
    for name, openings, lookalikes in (("complaints.yml", 80, 40), ("complaints_sealed.yml", 40, 20)):
        data = yaml.safe_load((ROOT / "tests" / "data" / name).read_text())
        assert len({o["text"] for o in data["openings"]}) >= openings
        assert len(set(data["lookalikes"])) >= lookalikes


def test_no_heldout_phrasing_is_a_near_duplicate_of_training() -> None:
    training = [_normalise(text) for texts in TRAINING.values() for text in texts]
    near = []
    for texts in (_held_out(),):
        for text in texts:
            probe = _normalise(text)
            matcher = SequenceMatcher(None, "", probe)
            for candidate in training:
                matcher.set_seq1(candidate)
                if matcher.real_quick_ratio() >= 0.9 and matcher.quick_ratio() >= 0.9 and matcher.ratio() >= 0.9:
                    near.append((text, candidate))
                    break
    assert not near, f"held-out phrasings nearly identical to training examples: {near}"


def test_normalising_catches_case_and_punctuation() -> None:
    assert _normalise("Where's my ORDER?!") == _normalise("where s my order")


# The shop's out-of-scope test set (bench/oos_shop.py): CLINC150 test messages a shop does not serve. A test set.
OOS_SHOP = _examples(ROOT / "tests" / "data" / "oos_shop.yml")


def test_the_shops_out_of_scope_set_is_large_and_never_trained_on() -> None:
    assert set(OOS_SHOP) == {"out_of_scope"}
    texts = OOS_SHOP["out_of_scope"]
    assert len({_normalise(text) for text in texts}) == len(texts) >= 300
    training = [_normalise(text) for texts in TRAINING.values() for text in texts]
    assert not {_normalise(text) for text in texts} & set(training), "out-of-scope test messages found in nlu/"
    near = []
    for text in texts:
        matcher = SequenceMatcher(None, "", _normalise(text))
        for candidate in training:
            matcher.set_seq1(candidate)
            if matcher.real_quick_ratio() >= 0.9 and matcher.quick_ratio() >= 0.9 and matcher.ratio() >= 0.9:
                near.append((text, candidate))
                break
    assert not near, f"out-of-scope test messages nearly identical to training examples: {near}"
