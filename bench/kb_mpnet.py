"""Does all-mpnet-base-v2 evidence help the answer decision? Validation data only, out-of-fold, as `kb_fit` fits.

The sets are `bench.kb_fit --shop-val`'s (StackFAQ's validation half, the shop's validation questions, CLINC150
`oos_val` against both bases), ranked with the shipped ranking weights. For the top candidate of each query, MPNet
features are added to the seven MiniLM ones: the cosine of the query to the candidate's title and its margin over the
best other title (titles encoded at index time), and the cosine to the candidate's best passage ("title. passage")
and its margin over the second candidate's (passages encoded at query time for the top two). Each variant is fit with
5 folds by article, CLINC150 counted 10 times, and decided at the pooled out-of-fold threshold.

    .venv/bin/python -m bench.kb_mpnet [--cache-dir /tmp/kb-mpnet] [--rerank 0 0.5 1.0]
    .venv/bin/python -m bench.kb_mpnet --timings
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import kb_data, kb_shop
from bench.kb_eval import Ranked, build, ranked, retrieval
from bench.kb_fit import OOS_SETS, OOS_WEIGHT, choose_pooled_threshold, curve, logistic, out_of_fold
from bot.kb.decision import load_model
from bot.kb.encoder import load_encoder
from bot.kb.index import Index
from bot.kb.search import FEATURES
from bot.kb.text import encoding_text
from encoder.mpnet_wheel import DEFAULT_DIR as MPNET_DIR
from encoder.sentence_encoder import SentenceEncoder

MPNET_FEATURES = ("m_title", "m_title_margin", "m_passage", "m_passage_margin")
VARIANTS: dict[str, tuple[str, ...]] = {
    "seven (shipped)": FEATURES,
    "+ m_title": (*FEATURES, "m_title"),
    "+ m_title, m_title_margin": (*FEATURES, "m_title", "m_title_margin"),
    "+ m_passage": (*FEATURES, "m_passage"),
    "+ m_passage, m_passage_margin": (*FEATURES, "m_passage", "m_passage_margin"),
    "+ all four": (*FEATURES, *MPNET_FEATURES),
    "+ m_title, m_passage": (*FEATURES, "m_title", "m_passage"),
    "MPNet in place of MiniLM cosines": (
        "score",
        "margin",
        "bm25",
        "overlap",
        "title_overlap",
        *MPNET_FEATURES,
    ),
}


def mpnet_rows(
    index: Index, rows: list[Ranked], queries: np.ndarray, mpnet: kb_data.VectorCache, rerank: float
) -> list[tuple[Ranked, dict[str, float]]]:
    """Each ranked query with hits: (the query re-ranked, MiniLM + MPNet features of its top candidate).

    With `rerank` > 0 the top five are re-ordered by score + rerank * MPNet title cosine."""
    ids = index.matrices().article_ids
    titles = mpnet.encode([index.title(a) for a in ids])
    position = {a: i for i, a in enumerate(ids)}
    out = []
    for r, q in zip(rows, queries, strict=True):
        if not r.hits:
            continue
        title_cos = titles @ q
        hits = r.hits
        if rerank:
            hits = sorted(hits, key=lambda h: -(h.score + rerank * title_cos[position[h.article_id]]))
        top = hits[0]
        m_title = float(title_cos[position[top.article_id]])
        others = np.delete(title_cos, position[top.article_id])
        texts = [encoding_text(h.title, h.passage) for h in hits[:2]]
        passages = mpnet.encode(texts) @ q
        features = dict(top.features)
        features |= {
            "m_title": m_title,
            "m_title_margin": m_title - float(others.max()) if len(others) else m_title,
            "m_passage": float(passages[0]),
            "m_passage_margin": float(passages[0] - passages[1]) if len(passages) > 1 else float(passages[0]),
        }
        out.append((Ranked(r.query, hits), features))
    return out


def separation(rows: list[tuple[Ranked, dict[str, float]]]) -> dict[str, float]:
    """Each feature alone: the chance that a query whose top candidate is right scores above an unanswerable one
    (AUC, ties counted half)."""
    right = [f for r, f in rows if r.query.answerable and r.hits[0].article_id == r.query.article_id]
    unanswerable = [f for r, f in rows if not r.query.answerable]
    out = {}
    for name in (*FEATURES, *MPNET_FEATURES):
        a, b = np.array([f[name] for f in right]), np.array([f[name] for f in unanswerable])
        out[name] = round(float((a[:, None] > b).mean() + 0.5 * (a[:, None] == b).mean()), 3)
    return out


def evaluate(sets: dict[str, list[tuple[Ranked, dict[str, float]]]], names: Sequence[str]) -> dict[str, object]:
    """Out-of-fold figures at the pooled threshold, and in-sample at the in-sample threshold, for one feature set."""
    pairs = [pair for rows in sets.values() for pair in rows]
    x = np.array([[f[n] for n in names] for _, f in pairs])
    y = np.array([float(r.query.answerable and r.hits[0].article_id == r.query.article_id) for r, _ in pairs])
    groups = [r.query.article_id for r, _ in pairs]
    weight_of = {name: OOS_WEIGHT if name.startswith(OOS_SETS) else 1.0 for name in sets}
    sample_weight = np.array([weight_of[name] for name, rows in sets.items() for _ in rows])
    ranked_sets = {name: [r for r, _ in rows] for name, rows in sets.items()}
    oof = out_of_fold(x, y, groups, sample_weight)
    threshold = choose_pooled_threshold(ranked_sets, oof)
    mean, scale = x.mean(0), x.std(0) + 1e-9
    w, b = logistic((x - mean) / scale, y, sample_weight=sample_weight)
    in_sample = 1 / (1 + np.exp(-(((x - mean) / scale) @ w + b)))
    return {
        "matched": matched(ranked_sets, oof),
        "threshold": threshold,
        "out_of_fold": _figures(curve(ranked_sets, oof, threshold), sets),
        "in_sample": _figures(curve(ranked_sets, in_sample, threshold), sets),
        "weights": dict(zip(names, np.round(w, 3).tolist(), strict=True)),
    }


def matched(sets: dict[str, list[Ranked]], oof: np.ndarray) -> dict[str, object]:
    """Out-of-fold operating points matched to the shipped decision's: StackFAQ unanswerable declined at the
    highest threshold still answering 463 of 500 right (0.926), and right answers at the lowest threshold declining
    116 of 130 (0.892)."""
    points = []
    for t in sorted(set(np.round(oof, 4))):
        f = curve(sets, oof, float(t))
        points.append((float(t), f))
    name = "StackFAQ validation"
    at_right = max((p for p in points if p[1][name]["right"] >= 463), key=lambda p: p[0])
    at_declined = min((p for p in points if p[1][name]["unanswerable_declined"] >= 116), key=lambda p: p[0])
    show = lambda f: {k: (v["right"], v["wrong"], v["unanswerable_declined"]) for k, v in f.items()}
    return {"right>=463": show(at_right[1]), "declined>=116": show(at_declined[1])}


def _figures(raw: dict[str, dict[str, int]], sets: dict[str, list[tuple[Ranked, dict[str, float]]]]) -> dict:
    out = {}
    for name, f in raw.items():
        unanswerable = sum(not r.query.answerable for r, _ in sets[name])
        out[name] = {
            "right": round(f["right"] / f["answerable"], 3) if f["answerable"] else None,
            "declined": round(f["unanswerable_declined"] / unanswerable, 3) if unanswerable else None,
            "wrong": f["wrong"],
        }
    return out


def timings(mpnet: SentenceEncoder, queries: int = 120) -> dict[str, float]:
    """MPNet's costs, no vector reused: 1,000 distinct titles, one query alone and with one or two passages (p50 /
    p95), 120 passages in one batch (and 5,752, the 1,000-article build's count, at that rate), one edited title."""
    articles = kb_data.base()

    def seconds(texts: list[str]) -> float:
        mpnet._cache.clear()
        start = time.perf_counter()
        mpnet.encode(texts)
        return time.perf_counter() - start

    seconds(["warm up"])
    out = {"1000 titles s": seconds([f"{a.title} ({i})" for i in range(10) for a in articles][:1000])}
    texts = [q.text for q in kb_data.queries("validation")][::5][:queries]
    for k in (0, 1, 2):
        latencies = []
        for i, text in enumerate(texts):
            a = articles[i % len(articles)]
            latencies.append(
                seconds([text] + [encoding_text(a.title, a.passages[j % len(a.passages)]) for j in range(k)])
            )
        out[f"query + {k} passages p50 ms"] = 1000 * float(np.percentile(latencies, 50))
        out[f"query + {k} passages p95 ms"] = 1000 * float(np.percentile(latencies, 95))
    passages = [encoding_text(a.title, p) for a in articles for p in a.passages][:120]
    out["120 passages s"] = seconds(passages)
    out["5752 passages s (at that rate)"] = out["120 passages s"] * 5752 / len(passages)
    out["one edited title ms"] = 1000 * seconds([articles[0].title + " (edited)"])
    return {name: round(value, 1) for name, value in out.items()}


def validation_plan(minilm: kb_data.VectorCache) -> dict[str, tuple[Index, list[kb_data.Query]]]:
    """`bench.kb_fit --shop-val`'s four validation sets, each with the index its queries are ranked against."""
    index = build(kb_data.base(), minilm)
    shop = kb_shop.shop_index(minilm)
    validation = kb_data.queries("validation")
    oos = [kb_data.Query(text, f"clinc-oos-val-{i}", False) for i, text in enumerate(kb_data.clinc_oos("val"))]
    shop_questions = kb_shop.shop_queries(kb_shop.VALIDATION)
    shop_oos = [kb_data.Query(q.text, "shop:" + q.article_id, False) for q in oos]
    return {
        "StackFAQ validation": (index, validation),
        "CLINC150 oos_val (StackFAQ base)": (index, oos),
        "shop validation": (shop, shop_questions),
        "CLINC150 oos_val (shop)": (shop, shop_oos),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/kb-mpnet"))
    parser.add_argument("--rerank", type=float, nargs="*", default=[0.0])
    parser.add_argument("--timings", action="store_true", help="only MPNet's encoding costs (no fit)")
    args = parser.parse_args(argv)
    if args.timings:
        print(json.dumps(timings(SentenceEncoder.load(MPNET_DIR)), indent=1))
        return 0
    minilm = kb_data.VectorCache(load_encoder(), args.cache_dir / "minilm.npz")
    mpnet = kb_data.VectorCache(SentenceEncoder.load(MPNET_DIR), args.cache_dir / "mpnet.npz")
    weights = load_model().ranking
    plan = validation_plan(minilm)
    report: dict[str, object] = {}
    for rerank in args.rerank:
        sets = {}
        for name, (where, queries) in plan.items():
            texts = [q.text for q in queries]
            rows = ranked(where, queries, minilm.encode(texts), weights)
            sets[name] = mpnet_rows(where, rows, mpnet.encode(texts), mpnet, rerank)
        answerable = [r for name in ("StackFAQ validation", "shop validation") for r, _ in sets[name]]
        figures: dict[str, object] = {
            "retrieval": retrieval(answerable),
            "AUC right vs unanswerable, StackFAQ validation": separation(sets["StackFAQ validation"]),
            "AUC right vs unanswerable, shop validation": separation(sets["shop validation"]),
        }
        for variant, names in VARIANTS.items():
            figures[variant] = evaluate(sets, names)
        report[f"rerank {rerank}"] = figures
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
