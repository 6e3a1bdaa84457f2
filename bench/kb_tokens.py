"""Does token-level evidence (late interaction, MaxSim) help the answer decision? Validation data only, out-of-fold.

MiniLM-L6's last-layer state of every token (the index's encoder, no training), L2-normalised per token; [CLS],
[SEP] and punctuation left out. For each query token, its best cosine to any token of a target text; over the query:
the mean, the idf-weighted mean (BM25 idf of the token's word in the base, split over its word pieces, stop words 0),
and over the content tokens (idf > 0) the minimum and the share below CUTOFF. Targets, for the top candidate:

- `t_*`: its title alone;
- `p_*`: its best passage as the index encodes it ("title. passage");
- `a_*`: every passage of the article (the best cosine over all of them);
- `rt_*`: the reverse for the title, each title token's best cosine to any query token (mean, min, idf mean);
- `*_margin`: the same feature for the top candidate less for the second one.

The sets, folds, sample weights and pooled threshold are `bench.kb_mpnet`'s (= `bench.kb_fit --shop-val`'s), and so
are the figures: out-of-fold at the pooled threshold, and at the two operating points matched to the shipped decision
(StackFAQ declined at 463 of 500 right, right at 116 of 130 declined).

    .venv/bin/python -m bench.kb_tokens [--cache-dir var/bench/kb-maxsim] [--out FILE] [--center] [--cutoff 0.5]
    .venv/bin/python -m bench.kb_tokens --timings
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import kb_data
from bench.kb_eval import Ranked, ranked
from bench.kb_fit import OOS_SETS, OOS_WEIGHT, out_of_fold
from bench.kb_mpnet import evaluate, validation_plan
from bot.kb.decision import load_model
from bot.kb.encoder import load_encoder
from bot.kb.index import Index
from bot.kb.search import FEATURES
from bot.kb.text import encoding_text, terms
from encoder.wordpiece import MAX_TOKENS, _is_punctuation, basic_words

CUTOFF = 0.5  # a query token whose best cosine to the target is below this counts as not covered
STATS = ("mean", "min", "idf", "low")
TARGETS = ("t", "p", "a")
REVERSE = ("rt_mean", "rt_min", "rt_idf")
SETS: dict[str, tuple[str, ...]] = {
    **{f"{t}: {t}_mean, {t}_min, {t}_idf, {t}_low": tuple(f"{t}_{s}" for s in STATS) for t in TARGETS},
    "rt: rt_mean, rt_min, rt_idf": REVERSE,
    **{f"{t} margins": tuple(f"{t}_{s}_margin" for s in STATS) for t in TARGETS},
    "rt margins": tuple(f"{n}_margin" for n in REVERSE),
}
POOL = tuple(name for names in SETS.values() for name in names)


class TokenStates:
    """Contextual token vectors of texts (cached by text): (states (n, 384) L2-normalised, the word of each token,
    how many pieces that word has). With `center`, that vector (the mean token state of the base) is subtracted
    before normalising: the raw states share a large common direction."""

    def __init__(self, encoder: object, cutoff: float = CUTOFF, center: np.ndarray | None = None) -> None:
        self.encoder, self.cutoff, self.center = encoder, cutoff, center
        self.cache: dict[str, tuple[np.ndarray, list[str], list[int]]] = {}

    def mean_state(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """The mean raw token state over `texts` (the vector `center` takes)."""
        rows = [
            s
            for start in range(0, len(texts), batch_size)
            for s, _, _ in self.hidden(texts[start : start + batch_size])
        ]
        return np.vstack(rows).mean(0)

    def of(self, texts: Sequence[str], batch_size: int = 32) -> list[tuple[np.ndarray, list[str], list[int]]]:
        todo = sorted({t for t in texts if t not in self.cache}, key=len)
        for start in range(0, len(todo), batch_size):
            self.cache |= dict(zip(todo[start : start + batch_size], self.forward(todo[start : start + batch_size])))
        return [self.cache[t] for t in texts]

    def forward(self, texts: Sequence[str]) -> list[tuple[np.ndarray, list[str], list[int]]]:
        out = []
        for states, words, pieces in self.hidden(texts):
            states = states - self.center if self.center is not None else states
            states = states / np.maximum(np.linalg.norm(states, axis=1, keepdims=True), 1e-12)
            out.append((states.astype(np.float32), words, pieces))
        return out

    def hidden(self, texts: Sequence[str]) -> list[tuple[np.ndarray, list[str], list[int]]]:
        """One padded batch through the encoder's layers (onnxruntime where installed), as `SentenceEncoder` runs it."""
        enc = self.encoder
        pieces, batch = [], []
        for text in texts:
            words = [(w, len(enc.tokenizer.word_ids(w))) for w in basic_words(enc.prefix + text)]
            pieces.append([(w, n) for w, n in words for _ in range(n)][: MAX_TOKENS - 2])
            batch.append(enc.tokenizer.encode(enc.prefix + text, MAX_TOKENS))
            assert len(batch[-1]) == len(pieces[-1]) + 2
        x, mask = enc._embed(batch)
        bias = enc.architecture.position_bias(mask.shape[1])
        hidden = enc._layers(x, mask, bias) if enc._onnx is None else enc._onnx.forward(x, mask, bias)
        out = []
        for row, words in enumerate(pieces):
            keep = [i for i, (w, _) in enumerate(words) if not (len(w) == 1 and _is_punctuation(w))]
            states = hidden[row, 1 : len(words) + 1][keep]
            out.append((states, [words[i][0] for i in keep], [words[i][1] for i in keep]))
        return out


def idf_weights(index: Index, words: list[str], pieces: list[int]) -> np.ndarray:
    """Each token's weight: its word's BM25 idf in `index` (0 for a stop word), split over the word's pieces."""
    out = []
    for word, n in zip(words, pieces, strict=True):
        found = terms(word)
        out.append(index.bm25.idf(found[0]) / n if found else 0.0)
    return np.array(out)


def coverage(best: np.ndarray, weights: np.ndarray, cutoff: float) -> dict[str, float]:
    """Mean, idf-weighted mean of per-token best cosines; min and share below `cutoff` over the content tokens (idf
    weight > 0; all tokens when there is none)."""
    if not len(best):
        return dict.fromkeys(STATS, 0.0)
    total = weights.sum()
    content = best[weights > 0] if total else best
    return {
        "mean": float(best.mean()),
        "min": float(content.min()),
        "idf": float((weights * best).sum() / total) if total else float(best.mean()),
        "low": float((content < cutoff).mean()),
    }


def candidate_features(
    index: Index, tokens: TokenStates, query: tuple[np.ndarray, np.ndarray], article_id: str, passage: str
) -> dict[str, float]:
    """The coverage features of one candidate article for a query (its token states and idf weights)."""
    states, weights = query
    title = index.title(article_id)
    texts = [title, encoding_text(title, passage)] + [p.encoded for p in index.passages(article_id)]
    found = tokens.of(texts)
    (title_states, title_words, title_pieces), (passage_states, _, _) = found[0], found[1]
    everything = np.vstack([s for s, _, _ in found[2:]])
    out: dict[str, float] = {}
    for name, target in (("t", title_states), ("p", passage_states), ("a", everything)):
        best = (states @ target.T).max(1) if len(target) and len(states) else np.zeros(len(states))
        out |= {f"{name}_{k}": v for k, v in coverage(best, weights, tokens.cutoff).items()}
    reverse = (title_states @ states.T).max(1) if len(states) and len(title_states) else np.zeros(len(title_states))
    rt = coverage(reverse, idf_weights(index, title_words, title_pieces), tokens.cutoff)
    out |= {f"rt_{k}": rt[k] for k in ("mean", "min", "idf")}
    return out


def token_rows(index: Index, rows: list[Ranked], tokens: TokenStates) -> list[tuple[Ranked, dict[str, float]]]:
    """Each ranked query with hits: (the query, the seven features + token coverage of its top two candidates)."""
    query_states = tokens.of([r.query.text for r in rows])
    out = []
    for r, (states, words, pieces) in zip(rows, query_states, strict=True):
        if not r.hits:
            continue
        query = (states, idf_weights(index, words, pieces))
        top = candidate_features(index, tokens, query, r.hits[0].article_id, r.hits[0].passage)
        second = (
            candidate_features(index, tokens, query, r.hits[1].article_id, r.hits[1].passage)
            if len(r.hits) > 1
            else dict.fromkeys(top, 0.0)
        )
        features = dict(r.hits[0].features) | top | {f"{k}_margin": top[k] - second[k] for k in top}
        out.append((r, features))
    return out


def auc(rows: list[tuple[Ranked, dict[str, float]]], name: str) -> float:
    """The chance that a right top candidate scores above an unanswerable query's on one feature (ties half)."""
    right = np.array([f[name] for r, f in rows if r.query.answerable and r.hits[0].article_id == r.query.article_id])
    none = np.array([f[name] for r, f in rows if not r.query.answerable])
    return round(float((right[:, None] > none).mean() + 0.5 * (right[:, None] == none).mean()), 3)


def answered_auc(sets: dict[str, list[tuple[Ranked, dict[str, float]]]], threshold: float) -> dict[str, object]:
    """Where the seven's decision errs: among the StackFAQ validation queries it answers out-of-fold at `threshold`
    (the shipped one), each feature's AUC of right answers against unanswerable ones."""
    pairs = [pair for rows in sets.values() for pair in rows]
    x = np.array([[f[n] for n in FEATURES] for _, f in pairs])
    y = np.array([float(r.query.answerable and r.hits[0].article_id == r.query.article_id) for r, _ in pairs])
    weight = np.array([OOS_WEIGHT if name.startswith(OOS_SETS) else 1.0 for name, rows in sets.items() for _ in rows])
    oof = out_of_fold(x, y, [r.query.article_id for r, _ in pairs], weight)
    stackfaq = sets["StackFAQ validation"]  # the first set: its rows come first in `oof`
    answered = [pair for pair, p in zip(stackfaq, oof[: len(stackfaq)], strict=True) if p >= threshold]
    wrong = sorted({r.query.article_id for r, _ in answered if not r.query.answerable})
    auc_of = {n: auc(answered, n) for n in ("cos_title", "cos_passage", "score", *POOL)}
    return {"answered": len(answered), "unanswerable answered, from articles": wrong, "AUC": auc_of}


def quiet_evaluate(sets: dict[str, list[tuple[Ranked, dict[str, float]]]], names: Sequence[str]) -> dict:
    """`bench.kb_mpnet.evaluate` without the threshold search's progress lines."""
    with contextlib.redirect_stdout(io.StringIO()):
        return evaluate(sets, names)


def greedy(sets: dict[str, list[tuple[Ranked, dict[str, float]]]], steps: int = 3) -> list[tuple[str, ...]]:
    """Forward selection from the seven: each step adds the pool feature with the most StackFAQ unanswerable declined
    at 463 right (ties: most right at 116 declined). Chosen on the same out-of-fold figures: optimistic."""
    chosen: tuple[str, ...] = FEATURES
    path = []
    for _ in range(steps):
        scored = []
        for name in POOL:
            if name in chosen:
                continue
            m = quiet_evaluate(sets, (*chosen, name))["matched"]
            scored.append(
                (m["right>=463"]["StackFAQ validation"][2], m["declined>=116"]["StackFAQ validation"][0], name)
            )
        best = max(scored)
        chosen = (*chosen, best[2])
        path.append(chosen)
    return path


def timings(encoder: object, queries: int = 120) -> dict[str, float]:
    """Token states at query time, nothing reused: the query alone (its pooled vector's forward pass gives them),
    then the top k candidates' titles and best passages ("title. passage") in one batch (p50 / p95 ms), three titles
    alone, all passages of one article; and stored token vectors' size per 1,000 articles (the StackFAQ base's token
    counts scaled)."""
    articles = kb_data.base()
    tokens = TokenStates(encoder)

    def ms(texts: list[str]) -> float:
        start = time.perf_counter()
        tokens.forward(texts)
        return 1000 * (time.perf_counter() - start)

    ms(["warm up"])
    texts = [q.text for q in kb_data.queries("validation")][::5][:queries]
    out: dict[str, float] = {}
    for k in (0, 1, 2, 3):
        latencies = []
        for i, text in enumerate(texts):
            picked = [articles[(7 * i + j) % len(articles)] for j in range(k)]
            batch = [a.title for a in picked] + [
                encoding_text(a.title, a.passages[i % len(a.passages)]) for a in picked
            ]
            latencies.append(ms(batch) if k else ms([text]))
        label = "query alone" if k == 0 else f"top {k}: titles + best passages"
        out[f"{label} p50 ms"] = float(np.percentile(latencies, 50))
        out[f"{label} p95 ms"] = float(np.percentile(latencies, 95))
    titles = [ms([articles[(7 * i + j) % len(articles)].title for j in range(3)]) for i in range(len(texts))]
    out["top 3: titles only p50 ms"] = float(np.percentile(titles, 50))
    out["top 3: titles only p95 ms"] = float(np.percentile(titles, 95))
    whole = [ms([encoding_text(a.title, p) for p in a.passages]) for a in articles[:60]]
    out["all passages of one article p50 ms"] = float(np.percentile(whole, 50))
    out["all passages of one article p95 ms"] = float(np.percentile(whole, 95))
    states = tokens.of([a.title for a in articles] + [encoding_text(a.title, p) for a in articles for p in a.passages])
    count = sum(len(s) for s, _, _ in states) * 1000 / len(articles)
    out["passages per 1,000 articles"] = 1000 * sum(len(a.passages) for a in articles) / len(articles)
    out["tokens per 1,000 articles (titles + passages)"] = count
    title_count = sum(len(s) for s, _, _ in states[: len(articles)]) * 1000 / len(articles)
    out["title tokens per 1,000 articles"] = title_count
    out["stored MB per 1,000 articles, titles only, float16"] = title_count * 384 * 2 / 1e6
    out["stored MB per 1,000 articles, float16"] = count * 384 * 2 / 1e6
    out["stored MB per 1,000 articles, int8"] = count * 384 / 1e6
    return {name: round(value, 1) for name, value in out.items()}


def summary(result: dict) -> str:
    """One table row: pooled StackFAQ right / declined; shop right / declined | matched points | CLINC150 answered."""
    o, at_right, at_declined = result["out_of_fold"], *result["matched"].values()
    sf, shop = o["StackFAQ validation"], o["shop validation"]
    clinc = sum(v[1] for k, v in at_right.items() if k.startswith("CLINC")) + sum(
        v[1] for k, v in at_declined.items() if k.startswith("CLINC")
    )
    return (
        f"{sf['right']:.3f} / {sf['declined']:.3f}; {shop['right']:.3f} / {shop['declined']:.3f} | "
        f"declined at 463 right {at_right['StackFAQ validation'][2]}, right at 116 declined "
        f"{at_declined['StackFAQ validation'][0]} | shop right {at_right['shop validation'][0]} / "
        f"{at_declined['shop validation'][0]} | CLINC150 answered {clinc}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("var/bench/kb-maxsim"))
    parser.add_argument("--out", type=Path, default=None, help="also write the full report here (JSON)")
    parser.add_argument("--cutoff", type=float, default=CUTOFF, help="a token below this best cosine is uncovered")
    parser.add_argument("--center", action="store_true", help="subtract the base's mean token state first")
    parser.add_argument("--timings", action="store_true", help="only the costs (no fit)")
    args = parser.parse_args(argv)
    encoder = load_encoder()
    if args.timings:
        print(json.dumps(timings(encoder), indent=1))
        return 0
    minilm = kb_data.VectorCache(encoder, args.cache_dir / "minilm.npz")
    weights = load_model().ranking
    tokens = TokenStates(encoder, args.cutoff)
    if args.center:
        tokens.center = tokens.mean_state([encoding_text(a.title, p) for a in kb_data.base() for p in a.passages])
    sets = {}
    for name, (where, queries) in validation_plan(minilm).items():
        rows = ranked(where, queries, minilm.encode([q.text for q in queries]), weights)
        sets[name] = token_rows(where, rows, tokens)
    report: dict[str, object] = {
        "AUC right vs unanswerable, StackFAQ validation": {n: auc(sets["StackFAQ validation"], n) for n in POOL},
        "AUC right vs unanswerable, shop validation": {n: auc(sets["shop validation"], n) for n in POOL},
        "AUC among the queries the seven answer, StackFAQ validation": answered_auc(sets, load_model().threshold),
        "seven (shipped)": quiet_evaluate(sets, FEATURES),
    }
    for label, names in SETS.items():
        report[f"+ {label}"] = quiet_evaluate(sets, (*FEATURES, *names))
    for name in POOL:
        report[f"+ {name}"] = quiet_evaluate(sets, (*FEATURES, name))
    for chosen in greedy(sets):
        report["greedy: + " + ", ".join(chosen[len(FEATURES) :])] = quiet_evaluate(sets, chosen)
    for label, result in report.items():
        if not label.startswith("AUC"):
            print(f"{label}: {summary(result)}")  # type: ignore[arg-type]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
