"""The shop's sealed help-center questions (tests/data/help_center.yml) through the real stack, each from a new
customer: which article answered, which were declined, which went to an intent or FAQ answer instead. The figures
go to var/bench/help_center_e2e.json and are reported, never asserted (the set is sealed: never tuned on); the test
asserts only that every question got a reply."""

from __future__ import annotations

import json
import time
import urllib.request

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.emulator.client import EmulatorClient
from devstack.stack import ROOT, Stack
from tests.e2e.help_center_support import answered_with, wait_until_indexed
from tests.e2e.helpers import replies_after, variations

SEALED = ROOT / "tests" / "data" / "help_center.yml"
OUT = ROOT / "var" / "bench" / "help_center_e2e.json"
FIRST_USER = 880_001


def _kind(texts: list[str]) -> tuple[str, str | None]:
    """What a reply was: an article's answer (and which), a decline (not understood / out of scope), or another
    answer (an intent or an FAQ)."""
    for text in texts:
        slug = answered_with(text)
        if slug is not None:
            return "article", slug
    declines = {t for r in ("utter_default", "utter_out_of_scope") for t in variations(r)}
    return ("declined" if any(t.strip() in declines for t in texts) else "intent"), None


def _search_quantiles(stack: Stack) -> dict[str, float | int | None]:
    """The action server's help-center searches while it served these customers (its /metrics histogram): how many,
    and the bucket bounds of the median and the 95th percentile (5 ms steps)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.actions_port}/metrics", headers={"Authorization": f"Bearer {stack.metrics_token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "frontline_help_center_search_seconds_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    total = buckets.get(float("inf"), 0.0)

    def quantile(q: float) -> float | None:
        return next((bound for bound in sorted(buckets) if buckets[bound] >= q * total), None) if total else None

    return {"searches": int(total), "p50_at_most": quantile(0.5), "p95_at_most": quantile(0.95)}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def test_the_sealed_questions_through_the_emulator(stack: Stack, emulator: EmulatorClient) -> None:
    await wait_until_indexed(stack)
    questions = yaml.safe_load(SEALED.read_text())["questions"]
    rows = []
    started = time.monotonic()
    for number, question in enumerate(questions):
        user = (await emulator.add_user(f"Sealed{number}", user_id=FIRST_USER + number))["id"]
        after = (await emulator.sent(user)).last
        sent = time.monotonic()
        await emulator.send_text(user, question["text"])
        replies = await replies_after(emulator, user, after, timeout=30)
        seconds = time.monotonic() - sent
        texts = [m.get("text") or "" for m in replies]
        kind, slug = _kind(texts)
        first = " ".join(texts[0].split())[:90] if texts else ""
        rows.append({**question, "reply": kind, "answered_with": slug, "seconds": round(seconds, 3), "said": first})
    assert all(row["reply"] for row in rows) and len(rows) == len(questions)

    answerable = [r for r in rows if r["article"]]
    unanswerable = [r for r in rows if not r["article"]]
    answered = [r for r in rows if r["reply"] == "article"]
    right = [r for r in answerable if r["answered_with"] == r["article"]]
    wrong = [r for r in answered if r["answered_with"] != r["article"]]
    latencies = sorted(r["seconds"] for r in rows)
    figures = {
        "questions": len(rows),
        "answerable": {
            "n": len(answerable),
            "answered_right_article": _share(len(right), len(answerable)),
            "answered_wrong_article": _share(
                sum(r["reply"] == "article" for r in answerable) - len(right), len(answerable)
            ),
            "declined": _share(sum(r["reply"] == "declined" for r in answerable), len(answerable)),
            "went_to_intent_or_faq": _share(sum(r["reply"] == "intent" for r in answerable), len(answerable)),
        },
        "unanswerable": {
            "n": len(unanswerable),
            "declined": _share(sum(r["reply"] == "declined" for r in unanswerable), len(unanswerable)),
            "answered_from_an_article": _share(sum(r["reply"] == "article" for r in unanswerable), len(unanswerable)),
            "went_to_intent_or_faq": _share(sum(r["reply"] == "intent" for r in unanswerable), len(unanswerable)),
        },
        "wrong_among_answered": _share(len(wrong), len(answered)),
        "answered": len(answered),
        "reply_seconds": {
            "median": latencies[len(latencies) // 2],
            "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        },
        "run_seconds": round(time.monotonic() - started, 1),
        "search_seconds_in_the_action_server": _search_quantiles(stack),
        "rows": rows,
    }
    searches = figures["search_seconds_in_the_action_server"]
    assert searches["searches"] >= len(answered), "every answer from an article was a timed search"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "rows"}, indent=2))
