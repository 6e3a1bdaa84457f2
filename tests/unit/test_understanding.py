"""The console's quick check of how well the examples are understood (bot/content/understanding.py), the closest
intent suggested for a question the bot did not understand (bot/admin/understood.py, bot/admin/insights.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.admin import insights, understood
from bot.content import understanding

SHOP = {
    "faq/gift_wrap": [
        "do you gift wrap",
        "can you gift wrap it",
        "gift wrapping please",
        "is gift wrapping free",
        "wrap it as a present",
        "how much is delivery of a gift",
    ],
    "faq/delivery_cost": [
        "how much is delivery",
        "what does delivery cost",
        "is delivery free",
        "delivery price",
        "shipping cost",
    ],
    "greet": ["hello", "hi there", "good morning"],
    "out_of_scope": ["tell me a joke", "what is the weather"],
}


def test_the_check_counts_what_is_recognised_and_what_it_is_taken_for() -> None:
    gift = understanding.check(SHOP, "faq/gift_wrap")
    # Parts by position: "how much is delivery of a gift" is left out with "do you gift wrap", and its words are
    # delivery's.
    assert (gift.examples, gift.recognised, gift.confused_with, gift.confused_count) == (6, 5, "faq/delivery_cost", 1)
    assert gift.confusions == ("how much is delivery of a gift",) and gift.recall == 5 / 6
    assert not gift.needs_more
    delivery = understanding.check(SHOP, "faq/delivery_cost")
    assert (delivery.recognised, delivery.examples, delivery.confusions) == (4, 5, ("shipping cost",))
    assert delivery.recall == 0.8 and not delivery.needs_more
    greet = understanding.check(SHOP, "greet")
    assert (greet.recognised, greet.examples, greet.confused_with, greet.missed) == (
        0,
        3,
        "out_of_scope",
        {"out_of_scope": 2, "faq/gift_wrap": 1},
    )
    assert greet.confusions == ("hello", "hi there") and greet.needs_more


def test_needs_more_examples_below_five_or_below_seventy_percent() -> None:
    assert (understanding.MIN_EXAMPLES, understanding.MIN_RECALL) == (5, 0.7)
    assert understanding.Check("x", 4, 4).needs_more, "four examples, all recognised: still too few"
    assert not understanding.Check("x", 10, 7).needs_more and understanding.Check("x", 10, 6).needs_more
    assert understanding.Check("x", 0, 0).recall is None and understanding.Check("x", 0, 0).needs_more
    alone = understanding.check({"a": ["only one"], "b": ["something else"]}, "a")
    assert (alone.examples, alone.recognised) == (1, 0), "one example: nothing left to learn it from"


@given(count=st.integers(0, 40), parts=st.integers(1, 8))
@settings(deadline=None)
def test_every_example_is_left_out_once_and_never_learned_in_its_own_part(count: int, parts: int) -> None:
    split = understanding.folds(count, parts)
    left_out = [i for _, out in split for i in out]
    assert sorted(left_out) == list(range(count))
    for learned, out in split:
        assert not set(learned) & set(out) and sorted(learned + out) == list(range(count))


LETTERS = "abcdefghijklmnopqrstuvwxyz"


@given(
    letters=st.lists(st.sampled_from(LETTERS), min_size=2, max_size=12, unique=True),
    lengths=st.lists(st.integers(1, 6), min_size=12, max_size=12),
    others=st.lists(st.text("αβγδεζηθ ", min_size=1, max_size=20).filter(str.strip), min_size=1, max_size=6),
)
@settings(deadline=None)
def test_an_example_is_never_recognised_from_itself(letters: list[str], lengths: list[int], others: list[str]) -> None:
    # Each example is one letter repeated: no two share a word or a part of one, so only a check that had learned
    # the example itself could recognise it.
    mine = [letter * length for letter, length in zip(letters, lengths)]
    result = understanding.check({"mine": mine, "other": others}, "mine")
    assert (result.examples, result.recognised) == (len(mine), 0)
    # Each beside a twin (next positions: never left out together): the twin's words are learned, and recognised.
    twins = [example for e in mine for example in (e, f"{e} {e}")]
    assert understanding.check({"mine": twins, "other": others}, "mine").recognised == len(twins)


NAMES = st.sampled_from(["greet", "faq/x", "faq/y", "out_of_scope", "nlu_fallback", "deny"])


@given(
    intents=st.dictionaries(NAMES, st.lists(st.text(min_size=0, max_size=20), max_size=4), max_size=6),
    text=st.text(max_size=30),
    ranking=st.lists(
        st.tuples(st.sampled_from(["faq/x", "gone", "out_of_scope", "nlu_fallback", "greet"]), st.floats(0, 1))
    ),
)
@settings(deadline=None)
def test_the_suggestion_is_always_an_intent_the_content_has_never_not_understood(
    intents: dict[str, list[str]], text: str, ranking: list[tuple[str, float]]
) -> None:
    question = insights.Unanswered(
        text=text, count=1, last_seen=insights.datetime.now(insights.UTC), ranking=tuple(ranking)
    )
    (suggestion,) = understood.suggest(intents, [question])
    if suggestion is not None:
        assert suggestion.intent in intents and suggestion.intent not in understanding.NOT_SUGGESTED
        assert 0.0 <= suggestion.score <= 1.0
        if suggestion.source == "check":
            assert intents[suggestion.intent], "the quick check suggests only intents with examples"
    usable = [name for name, _ in ranking if name in intents and name not in understanding.NOT_SUGGESTED]
    if usable:
        assert suggestion is not None and (suggestion.intent, suggestion.source) == (usable[0], "model")


def test_the_nearest_intent_by_wording() -> None:
    nearest = understanding.Nearest(SHOP)
    assert nearest.nearest("can you wrap my gift")[0] == "faq/gift_wrap"
    assert nearest.nearest("how much is shipping")[0] == "faq/delivery_cost"
    assert nearest.nearest("tell me a joke")[0] != "out_of_scope", "out_of_scope is never suggested"
    assert nearest.nearest("zzz") is None, "nothing in common: no suggestion"
    name, score = nearest.nearest("do you gift wrap")
    assert name == "faq/gift_wrap" and 0.5 < score <= 1.0


def test_rasa_ranking_gives_the_faq_topic_and_leaves_out_not_understood() -> None:
    parse_data = {
        "intent": {"name": "nlu_fallback", "confidence": 0.7},
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.7},
            {"name": "faq", "confidence": 0.41},
            {"name": "out_of_scope", "confidence": 0.2},
            {"name": "greet", "confidence": 0.1},
        ],
        "response_selector": {
            "all_retrieval_intents": ["faq"],
            "faq": {"response": {"intent_response_key": "faq/payment_methods", "confidence": 0.41}, "ranking": []},
        },
    }
    assert insights.rasa_ranking(parse_data) == (("faq/payment_methods", 0.41), ("greet", 0.1))
    assert insights.rasa_ranking(None) == () and insights.rasa_ranking({"intent_ranking": [{"name": 3}]}) == ()
