"""The index with the real MiniLM encoder: incremental changes rank as a rebuild does; the decision declines what
the base does not cover. Skips (fails under FRONTLINE_REQUIRE_SERVICES=1) without the encoder's weights."""

from __future__ import annotations

import asyncio
from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kb.center import HelpCenter
from bot.kb.encoder import DEFAULT_DIR, load_encoder
from bot.kb.index import Index
from bot.kb.search import rank
from bot.kb.text import text_hash
from tests.conftest import skip_or_fail

ARTICLES = {
    "returns": (
        "How do I return an item?",
        ["Send it back within 30 days with the label from your order page.", "Refunds reach your card in 5 days."],
    ),
    "sizes": (
        "Which size should I order?",
        ["Our shirts run small: order one size up.", "Measure your chest and compare it with the size table."],
    ),
    "pairing": (
        "How do I pair my headphones?",
        [
            "Hold the power button for five seconds until the light blinks blue.",
            "Then choose them in your phone's Bluetooth settings.",
        ],
    ),
    "delivery": (
        "Do you deliver abroad?",
        ["We ship to the EU, the UK and Switzerland.", "Deliveries abroad take four to seven working days."],
    ),
    "warranty": (
        "What does the warranty cover?",
        ["Two years for defects in materials and workmanship.", "Damage from drops or water is not covered."],
    ),
    "care": ("How do I wash wool?", ["Hand wash in cold water with a wool detergent.", "Dry it flat, away from heat."]),
}
QUERIES = [
    "my headphones won't connect to my phone",
    "can I send back a jumper",
    "is water damage covered",
    "shipping to Germany",
]


@cache
def encoder():  # type: ignore[no-untyped-def]
    if not (DEFAULT_DIR / "model.safetensors").is_file():
        skip_or_fail(f"the MiniLM weights are not in {DEFAULT_DIR}: run `make bench-kb` or fetch them")
    return load_encoder()


def ranking(index: Index) -> list[list[tuple[str, str]]]:
    vectors = encoder().encode(QUERIES)
    return [[(h.article_id, h.passage) for h in rank(index, q, v)] for q, v in zip(QUERIES, vectors, strict=True)]


@settings(deadline=None, max_examples=15)
@given(st.lists(st.tuples(st.sampled_from(sorted(ARTICLES)), st.sampled_from(["put", "edit", "remove"])), max_size=10))
def test_incremental_changes_rank_as_a_rebuild(steps: list[tuple[str, str]]) -> None:
    incremental = Index(encoder())
    current: dict[str, tuple[str, list[str]]] = {}
    for article_id, (title, passages) in ARTICLES.items():
        incremental.put_article(article_id, title, passages)
        current[article_id] = (title, passages)
    for article_id, step in steps:
        title, passages = ARTICLES[article_id]
        if step == "remove":
            incremental.remove_article(article_id)
            current.pop(article_id, None)
        else:
            changed = passages if step == "put" else [*passages[::-1], "Ask us in the chat if anything is unclear."]
            incremental.put_article(article_id, title, changed)
            current[article_id] = (title, changed)
    rebuilt = Index(encoder())
    for article_id in sorted(current):
        rebuilt.put_article(article_id, *current[article_id])
    assert ranking(incremental) == ranking(rebuilt)
    assert sorted(incremental.export_vectors()) == sorted(rebuilt.export_vectors())


def test_stored_vectors_are_used_and_only_new_texts_need_encoding() -> None:
    first = Index(encoder())
    for article_id, (title, passages) in ARTICLES.items():
        first.put_article(article_id, title, passages)
    stored = first.export_vectors()
    assert len(stored) == sum(1 + len(passages) for _, passages in ARTICLES.values())
    restarted = Index()  # no encoder: everything must come from the stored vectors
    for article_id, (title, passages) in ARTICLES.items():
        assert restarted.missing(title, passages, stored) == []
        restarted.put_article(article_id, title, passages, stored)
    assert ranking(restarted) == ranking(first)
    title, passages = ARTICLES["care"]
    assert restarted.missing(title, [*passages, "Never tumble dry."], stored) == [
        "How do I wash wool? Never tumble dry."
    ]


@cache
def center() -> HelpCenter:
    help_center = HelpCenter(encoder())
    for article_id, (title, passages) in ARTICLES.items():
        help_center.index.put_article(article_id, title, passages)
    return help_center


def test_the_decision_declines_a_query_the_base_knows_nothing_of() -> None:
    for query in ["what will the weather be in Paris tomorrow", "write me a poem about the sea"]:
        answer = center().answer(query)
        assert not answer.answered and answer.text == "", (query, answer.probability)


def test_the_decision_answers_a_covered_question_with_its_article() -> None:
    answer = center().answer("how do I pair my headphones with my phone")
    assert answer.answered, answer.probability
    assert answer.hit is not None and answer.hit.article_id == "pairing"
    assert answer.text in ARTICLES["pairing"][1]


def test_async_helpers_encode_in_a_thread() -> None:
    async def scenario() -> tuple[bool, dict[str, np.ndarray]]:
        help_center = HelpCenter(encoder(), index=Index())
        new = await help_center.put_article_async("care", *ARTICLES["care"])
        answer = await help_center.answer_async("how should I wash a wool jumper")
        return answer.hit is not None and answer.hit.article_id == "care", new

    found, new = asyncio.run(scenario())
    assert found
    assert set(new) == {text_hash(t) for t in Index.texts_to_encode(*ARTICLES["care"])}
