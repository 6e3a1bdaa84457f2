"""Would a MiniLM-L6 cross-encoder, fine-tuned on StackFAQ validation pairs, rerank and decide better? Bench only.

Validation data only: StackFAQ's even-numbered articles' queries (answerable ones, and the held-out even articles'
ones, which have no answer in the 100-article base). The test half (odd articles) is never read. Articles are dealt
to FOLDS folds by article (answerable and held-out ones dealt separately, as `bench.kb_fit` does), so every figure is
out of fold. Three steps, because the project's venv has no torch and must not get it:

    # 1. project venv: today's retrieval (shipped ranking weights), top candidates and their features
    PYTHONPATH=. .venv/bin/python -m bench.kb_cross dump --out /tmp/xenc/dump.json
    # 2. a throw-away venv with torch, numpy, safetensors, tokenizers (never a project dependency)
    PYTHONPATH=. /work/venv-torch/bin/python -m bench.kb_cross train --dump /tmp/xenc/dump.json \
        --out /tmp/xenc/scores.json
    # 3. project venv: out-of-fold decisions, today's and the cross-encoder's, on the same folds
    PYTHONPATH=. .venv/bin/python -m bench.kb_cross decide --dump /tmp/xenc/dump.json --scores /tmp/xenc/scores.json

The cross-encoder: MiniLM-L6 (var/encoders/all-MiniLM-L6-v2) on "[CLS] query [SEP] title. passage [SEP]", mean
pooling, a linear head; binary cross-entropy on (query, own article) positives and (query, retrieved other article)
hard negatives, held-out articles' queries giving negatives only. This module imports neither torch nor the app at
its top level: each step imports what it needs. Result (2026-12, 3 folds, 2 epochs): reranking drops top-1 from
0.986 to 0.808 and the CE alone declines far worse (AUC 0.83 vs 0.97); added to today's 7 features it moves declined
at 0.926 right from 0.831 to 0.854, none at 0.90: 33 training articles are too few for a cross-encoder.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from encoder import sentence_encoder

FOLDS = 3
HEAD_LR = 1e-3  # the linear head starts at zero: at the encoder's rate it would hardly move in a few hundred steps
TOP = 5  # candidates the cross-encoder rescores at query time (and hard negatives per training query)
MAX_TOKENS = 128  # query + title + the start of the best passage
MINILM = sentence_encoder.DEFAULT_DIR


def folds(rows: list[dict]) -> dict[str, int]:
    """Each even article's fold: answerable and held-out articles dealt separately, in id order."""
    out: dict[str, int] = {}
    for answerable in (True, False):
        out |= {
            a: i % FOLDS for i, a in enumerate(sorted({r["article_id"] for r in rows if r["answerable"] == answerable}))
        }
    return out


def dump(out: Path) -> None:
    from bench import kb_data
    from bench.kb_eval import build, ranked
    from bot.kb.decision import load_model
    from bot.kb.encoder import load_encoder
    from bot.kb.search import rank

    encoder = kb_data.VectorCache(load_encoder(), out.parent / "minilm.npz")
    base = kb_data.base()
    index = build(base, encoder)
    queries = kb_data.queries("validation")
    assert all(kb_data.is_validation(q.article_id) for q in queries)
    vectors = encoder.encode([q.text for q in queries])
    weights = load_model().ranking
    hit = lambda h: {"article_id": h.article_id, "title": h.title, "passage": h.passage, "features": h.features}
    rows = []
    for q, v in zip(queries, vectors, strict=True):
        hits = rank(index, q.text, v, weights, limit=len(base))  # all: the own article's best passage, wherever it is
        own = next((h for h in hits if h.article_id == q.article_id), None)
        row = {"text": q.text, "article_id": q.article_id, "answerable": q.answerable, "own": own and hit(own)}
        rows.append(row | {"hits": [hit(h) for h in hits[:TOP]], "deeper": [hit(h) for h in hits[TOP : 4 * TOP]]})
    fold_of = folds(rows)
    for row in rows:
        row["fold"] = fold_of[row["article_id"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    # CLINC150 oos_val against the same base: today's fit (`bench.kb_fit`) adds them, counted 10 times, to every fold's
    # training; the cross-encoder does not see them (kept apart from "rows").
    oos = [kb_data.Query(t, f"clinc-oos-val-{i}", False) for i, t in enumerate(kb_data.clinc_oos("val"))]
    clinc = [
        {"features": r.hits[0].features} for r in ranked(index, oos, encoder.encode([q.text for q in oos]), weights)
    ]
    payload = {"ranking": weights.__dict__, "rows": rows, "clinc_oos_val": clinc}
    out.write_text(json.dumps(payload), encoding="utf-8")
    print(f"wrote {out}: {len(rows)} queries, {sum(r['answerable'] for r in rows)} answerable")


def candidate_text(hit: dict) -> str:
    title = hit["title"].strip()
    return f"{title}{'' if title[-1:] in '.?!:' else '.'} {hit['passage'].strip()}"


def cross_encoder(torch_module, directory: Path = MINILM):
    """A BERT-style MiniLM-L6 in torch with MiniLM's weights, mean pooling and a fresh linear head."""
    torch, nn = torch_module, torch_module.nn
    from safetensors.torch import load_file

    weights = load_file(str(directory / "model.safetensors"))
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}

    class Layer(nn.Module):
        def __init__(self, d: int, heads: int, ff: int) -> None:
            super().__init__()
            self.heads = heads
            self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
            self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
            self.up, self.down = nn.Linear(d, ff), nn.Linear(ff, d)

        def forward(self, x, bias):
            b, n, d = x.shape
            split = lambda t: t.view(b, n, self.heads, d // self.heads).transpose(1, 2)
            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            attention = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            x = self.norm1(x + self.out(attention.transpose(1, 2).reshape(b, n, d)))
            return self.norm2(x + self.down(torch.nn.functional.gelu(self.up(x))))

    class Cross(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            vocab, d = weights["embeddings.word_embeddings.weight"].shape
            self.word = nn.Embedding(vocab, d)
            self.position = nn.Embedding(weights["embeddings.position_embeddings.weight"].shape[0], d)
            self.token_type = nn.Embedding(weights["embeddings.token_type_embeddings.weight"].shape[0], d)
            self.norm = nn.LayerNorm(d, eps=1e-12)
            count = len({k.split(".")[2] for k in weights if k.startswith("encoder.layer.")})
            ff = weights["encoder.layer.0.intermediate.dense.weight"].shape[0]
            self.layers = nn.ModuleList(Layer(d, 12, ff) for _ in range(count))
            self.head = nn.Linear(d, 1)

        def forward(self, ids, types, mask):
            positions = torch.arange(ids.shape[1]).unsqueeze(0)
            x = self.norm(self.word(ids) + self.position(positions) + self.token_type(types))
            bias = ((1.0 - mask[:, None, None, :].float()) * -1e4).to(x.dtype)
            for layer in self.layers:
                x = layer(x, bias)
            m = mask.unsqueeze(-1).float()
            return self.head((x * m).sum(1) / m.sum(1)).squeeze(-1)

    model = Cross()
    state = {
        "word.weight": "embeddings.word_embeddings.weight",
        "position.weight": "embeddings.position_embeddings.weight",
        "token_type.weight": "embeddings.token_type_embeddings.weight",
        "norm.weight": "embeddings.LayerNorm.weight",
        "norm.bias": "embeddings.LayerNorm.bias",
    }
    names = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "out": "attention.output.dense",
        "norm1": "attention.output.LayerNorm",
        "up": "intermediate.dense",
        "down": "output.dense",
        "norm2": "output.LayerNorm",
    }
    for i in range(len(model.layers)):
        for ours, theirs in names.items():
            for p in ("weight", "bias"):
                state[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    loaded = {ours: weights[theirs] for ours, theirs in state.items()}
    loaded |= {"head.weight": torch.zeros(1, model.head.in_features), "head.bias": torch.zeros(1)}
    model.load_state_dict(loaded)
    return model


def train(dump_path: Path, out: Path, epochs: int, lr: float, batch: int, seed: int) -> None:
    import torch
    from tokenizers import Tokenizer

    torch.set_num_threads(2)
    rows = json.loads(dump_path.read_text(encoding="utf-8"))["rows"]
    tokenizer = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS, strategy="only_second")

    def tensors(pairs: Sequence[tuple[str, str]]):
        encoded = tokenizer.encode_batch(list(pairs))
        n = max(len(e.ids) for e in encoded)
        pad = lambda seq: [list(s) + [0] * (n - len(s)) for s in seq]
        return (
            torch.tensor(pad([e.ids for e in encoded])),
            torch.tensor(pad([e.type_ids for e in encoded])),
            torch.tensor(pad([e.attention_mask for e in encoded])),
        )

    def pairs_of(row: dict, seen: set[str]) -> list[tuple[str, str, float]]:
        """Its positive and up to TOP hard negatives, among the training folds' answerable articles only: an article
        met only as a negative (the held-out fold's, the odd ones) would teach the model its identity, not relevance
        (a first run with every retrieved negative ranked the held-out fold's own articles last: top-1 0.39)."""
        out = [(row["text"], candidate_text(row["own"]), 1.0)] if row["answerable"] else []
        pool = [h for h in row["hits"] + row["deeper"] if h["article_id"] != row["article_id"]]
        return out + [(row["text"], candidate_text(h), 0.0) for h in pool if h["article_id"] in seen][:TOP]

    scores: dict[int, list[float]] = {}
    report: dict[str, object] = {
        "epochs": epochs,
        "lr": lr,
        "head_lr": HEAD_LR,
        "batch": batch,
        "max_tokens": MAX_TOKENS,
    }
    report["folds"] = {}
    latencies: list[float] = []
    for fold in range(FOLDS):
        random.seed(seed + fold)
        torch.manual_seed(seed + fold)
        model = cross_encoder(torch)
        seen = {row["article_id"] for row in rows if row["fold"] != fold and row["answerable"]}
        examples = [p for row in rows if row["fold"] != fold for p in pairs_of(row, seen)]
        steps = epochs * math.ceil(len(examples) / batch)
        body = [p for name, p in model.named_parameters() if not name.startswith("head.")]
        groups = [{"params": body, "lr": lr}, {"params": list(model.head.parameters()), "lr": HEAD_LR}]
        optimiser = torch.optim.AdamW(groups, weight_decay=0.01)
        warm = max(1, steps // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s, w=warm, n=steps: min((s + 1) / w, max(0.0, (n - s) / max(1, n - w)))
        )
        start = time.perf_counter()
        model.train()
        step = 0
        for epoch in range(epochs):
            random.shuffle(examples)
            total = 0.0
            for i in range(0, len(examples), batch):
                chunk = examples[i : i + batch]
                ids, types, mask = tensors([(q, c) for q, c, _ in chunk])
                labels = torch.tensor([y for _, _, y in chunk])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ids, types, mask), labels)
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
                schedule.step()
                total += loss.item() * len(chunk)
                step += 1
            print(f"fold {fold} epoch {epoch}: loss {total / len(examples):.4f} ({time.perf_counter() - start:.0f} s)")
        seconds = time.perf_counter() - start
        model.eval()
        held = [i for i, row in enumerate(rows) if row["fold"] == fold]
        with torch.inference_mode():
            for i in held:
                row = rows[i]
                t0 = time.perf_counter()
                logits = model(*tensors([(row["text"], candidate_text(h)) for h in row["hits"]]))
                latencies.append(time.perf_counter() - t0)
                scores[i] = [float(v) for v in logits]
        report["folds"][fold] = {"train_pairs": len(examples), "steps": step, "train_seconds": round(seconds, 1)}
        print(json.dumps(report["folds"][fold]))
        # Written after every fold, so that a run cut short still leaves its finished folds' scores.
        out.write_text(json.dumps({"report": report, "scores": [scores.get(i) for i in range(len(rows))]}), "utf-8")
    parameters = sum(p.numel() for p in model.parameters())
    report |= {
        "parameters": parameters,
        "fp32_mb": round(parameters * 4 / 2**20, 1),
        "top5_latency_ms_p50": round(1000 * float(np.percentile(latencies, 50)), 1),
        "top5_latency_ms_p95": round(1000 * float(np.percentile(latencies, 95)), 1),
        "torch_threads": torch.get_num_threads(),
    }
    out.write_text(json.dumps({"report": report, "scores": [scores[i] for i in range(len(rows))]}), encoding="utf-8")
    print(json.dumps(report, indent=1))


def decide(dump_path: Path, scores_path: Path) -> None:
    from bench.kb_fit import OOS_WEIGHT, fit_and_apply
    from bot.kb.decision import load_model
    from bot.kb.search import FEATURES

    dump_data = json.loads(dump_path.read_text(encoding="utf-8"))
    rows = dump_data["rows"]
    scored = json.loads(scores_path.read_text(encoding="utf-8"))
    # A run cut short leaves some folds unscored: only the scored queries count (today's figures on them too).
    keep = [i for i, s in enumerate(scored["scores"]) if s is not None]
    rows, ce = [rows[i] for i in keep], [scored["scores"][i] for i in keep]
    fold = np.array([r["fold"] for r in rows])
    answerable = np.array([r["answerable"] for r in rows])
    n_answerable, n_unanswerable = int(answerable.sum()), int((~answerable).sum())

    def candidates(rerank: bool) -> list[int]:
        """The candidate each query would answer with: the retriever's first, or the cross-encoder's best."""
        return [int(np.argmax(s)) if rerank else 0 for s in ce]

    def right(chosen: list[int]) -> np.ndarray:
        return np.array(
            [
                r["answerable"] and r["hits"][c]["article_id"] == r["article_id"]
                for r, c in zip(rows, chosen, strict=True)
            ]
        )

    def features(chosen: list[int], names: Sequence[str]) -> np.ndarray:
        out = []
        for r, s, c in zip(rows, ce, chosen, strict=True):
            f = dict(r["hits"][c]["features"])
            others = [v for j, v in enumerate(s) if j != c]
            f |= {"ce": s[c], "ce_margin": s[c] - max(others), "ce_p": 1 / (1 + math.exp(-s[c]))}
            out.append([f[n] for n in names])
        return np.array(out, dtype=float)

    def out_of_fold(x: np.ndarray, y: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Out-of-fold probabilities; `extra` (CLINC150 oos_val rows, all negatives) joins every fold's training,
        each counted OOS_WEIGHT times, as in `bench.kb_fit --shop-val`."""
        p = np.zeros(len(y))
        for k in sorted(set(fold.tolist())):
            train = fold != k
            xt, yt, wt = x[train], y[train].astype(float), np.ones(int(train.sum()))
            if extra is not None:
                xt, yt = np.vstack([xt, extra]), np.append(yt, np.zeros(len(extra)))
                wt = np.append(wt, np.full(len(extra), OOS_WEIGHT))
            p[~train] = fit_and_apply(xt, yt, x[~train], wt)
        return p

    def points(score: np.ndarray, ok: np.ndarray) -> dict[str, object]:
        """(a) the highest threshold answering >= 0.926 of answerable right, (b) the lowest declining >= 0.90."""
        need_right, need_declined = math.ceil(0.926 * n_answerable), math.ceil(0.90 * n_unanswerable)
        table = [  # (threshold, answered right, unanswerable declined, answered wrong)
            (t, int(((score >= t) & ok).sum()), int(((score < t) & ~answerable).sum()), int(((score >= t) & ~ok).sum()))
            for t in [*sorted(set(score.tolist())), math.inf]
        ]
        a = max((p for p in table if p[1] >= need_right), key=lambda p: p[0], default=None)
        b = min((p for p in table if p[2] >= need_declined), key=lambda p: p[0], default=None)
        show = lambda p: (
            p
            and {
                "right": round(p[1] / n_answerable, 3),
                "declined": round(p[2] / n_unanswerable, 3),
                "wrong_among_answers": round(p[3] / max(1, p[1] + p[3]), 3),
            }
        )
        auc_pos, auc_neg = score[ok], score[~answerable]
        auc = float((auc_pos[:, None] > auc_neg).mean() + 0.5 * (auc_pos[:, None] == auc_neg).mean())
        return {
            "top1_right": round(float(ok.sum()) / n_answerable, 3),
            "(a) right>=0.926": show(a),
            "(b) declined>=0.90": show(b),
            "AUC right vs unanswerable": round(auc, 3),
        }

    today = list(FEATURES)
    variants: dict[str, tuple[bool, list[str] | None]] = {
        "today: 7 features, logistic (same folds)": (False, today),
        "CE score alone, retriever's top": (False, None),
        "CE rerank top-5, CE score alone": (True, None),
        "CE rerank, logistic(ce, ce_margin)": (True, ["ce", "ce_margin"]),
        "retriever's top, logistic(7 features + ce, ce_margin)": (False, [*today, "ce", "ce_margin"]),
        "CE rerank, logistic(7 features + ce, ce_margin)": (True, [*today, "ce", "ce_margin"]),
    }
    report: dict[str, object] = {
        "queries": len(rows),
        "answerable": n_answerable,
        "unanswerable": n_unanswerable,
        "folds scored": sorted(set(fold.tolist())),
    }
    chosen = candidates(False)
    ok = right(chosen)
    x = features(chosen, today)
    clinc = np.array([[r["features"][n] for n in today] for r in dump_data["clinc_oos_val"]])
    report["today: 7 features, logistic + CLINC150 oos_val x10 in each fold's fit (kb_fit's recipe)"] = points(
        out_of_fold(x, ok, clinc), ok
    )
    shipped = load_model()
    report["shipped decision.json as is (fit on all validation: NOT out of fold)"] = points(
        np.array([shipped.probability(r["hits"][0]["features"]) for r in rows]), ok
    )
    for name, (rerank, names) in variants.items():
        chosen = candidates(rerank)
        ok = right(chosen)
        score = features(chosen, ["ce"])[:, 0] if names is None else out_of_fold(features(chosen, names), ok)
        report[name] = points(score, ok)
    report["cross-encoder"] = scored["report"]
    print(json.dumps(report, indent=1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("dump", "train", "decide"))
    parser.add_argument("--dump", type=Path, default=Path("/tmp/xenc/dump.json"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--scores", type=Path, default=Path("/tmp/xenc/scores.json"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.step == "dump":
        dump(args.out or args.dump)
    elif args.step == "train":
        train(args.dump, args.out or args.scores, args.epochs, args.lr, args.batch, args.seed)
    else:
        decide(args.dump, args.scores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
