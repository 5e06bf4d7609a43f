# ruff: noqa: N806  (matrices are upper case, as in the maths)
"""Train the learned re-ranker on the study's cached candidates (``docs/RANKER.md``).

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python scripts/ranker_train.py [--hidden 8] [--write]

Reads /work/cache/ranker/*.candidates.jsonl (``scripts/ranker_study.py collect``): per
question, the hybrid retriever's 50 fused candidates with their features and labels, once
with the whole knowledge base ("full") and once with every other document left out ("half").

Every figure it prints is cross-fitted by halves: a model trained on the even questions
scores the odd ones and the other way round, so no figure comes from a question the model
was trained on. The ranker is a listwise softmax (the right passage's share of the
candidates' softmax, maximised) over standardised features, linear or with a small hidden
layer, fitted with Adam in numpy; the calibration of ``rerank_p`` is a logistic regression
on the cross-fitted scores. ``--write`` trains the final model on every question and writes
it into the package (src/atende/knowledge/ranker/model.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from atende.knowledge.ranker.features import FEATURES
from atende.knowledge.ranker.model import RankerModel, calibrated, calibration_inputs

STUDY = Path("/work/cache/ranker")
MODEL = Path(__file__).resolve().parents[1] / "src/atende/knowledge/ranker/model.json"
SETS = ("support-pt", "retrieval-en", "retrieval-es", "retrieval-pt")
CANDIDATES = 50


@dataclass
class Query:
    set: str
    q: int
    half: str
    answerable: bool
    x: np.ndarray
    y: np.ndarray
    coverage: np.ndarray
    terms: int  # the question's topic terms (for the long messages' gate)


def load(name: str) -> list[Query]:
    path = STUDY / f"{name}.candidates.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    if tuple(header["features"]) != FEATURES:
        raise SystemExit(f"{path} has features {header['features']}: collect again")
    cov = FEATURES.index("coverage")
    qt = FEATURES.index("query_terms")
    found = []
    for line in lines[1:]:
        row = json.loads(line)
        x = np.array(row["features"], dtype=float).reshape(-1, len(FEATURES))[:CANDIDATES]
        y = np.array(row["labels"], dtype=float)[:CANDIDATES]
        terms = round(float(np.exp(x[0, qt])) - 1) if len(x) else 0
        found.append(
            Query(name, row["q"], row["half"], row["answerable"], x, y, x[:, cov] if len(x) else x, terms)
        )
    return found


class Ranker:
    """Listwise softmax scorer: score = x·w + b (+ relu(x·W1 + b1)·w2)."""

    def __init__(self, n: int, hidden: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w = np.zeros(n)
        self.hidden = hidden
        self.W1 = rng.normal(0, 0.3, (n, hidden)) if hidden else np.zeros((n, 0))
        self.b1 = np.zeros(hidden)
        self.w2 = rng.normal(0, 0.1, hidden) if hidden else np.zeros(0)

    def score(self, x: np.ndarray) -> np.ndarray:
        s = x @ self.w
        if self.hidden:
            s = s + np.maximum(x @ self.W1 + self.b1, 0) @ self.w2
        return s

    def fit(self, queries: list[tuple[np.ndarray, np.ndarray]], l2: float, epochs: int, lr: float) -> None:
        # pad into one tensor: queries x candidates x features, with a mask
        m = max(len(x) for x, _ in queries)
        n = queries[0][0].shape[1]
        X = np.zeros((len(queries), m, n))
        Y = np.zeros((len(queries), m))
        M = np.zeros((len(queries), m), dtype=bool)
        for i, (x, y) in enumerate(queries):
            X[i, : len(x)] = x
            Y[i, : len(y)] = y
            M[i, : len(x)] = True
        params = [self.w, self.W1, self.b1, self.w2]
        moments = [np.zeros_like(p) for p in params]
        squares = [np.zeros_like(p) for p in params]
        for t in range(1, epochs + 1):
            H = X @ self.W1 + self.b1 if self.hidden else None
            R = np.maximum(H, 0) if H is not None else None
            S = X @ self.w + (R @ self.w2 if R is not None else 0)
            S = np.where(M, S, -1e9)
            S = S - S.max(axis=1, keepdims=True)
            E = np.exp(S) * M
            P = E / E.sum(axis=1, keepdims=True)
            pos = (P * Y).sum(axis=1)
            Q = (P * Y) / np.maximum(pos, 1e-12)[:, None]  # the positives' share among them
            G = (P - Q) / len(queries)  # d loss / d score
            grads = [np.einsum("qc,qcf->f", G, X) + l2 * self.w]
            if self.hidden and H is not None and R is not None:
                dR = G[:, :, None] * self.w2[None, None, :] * (H > 0)
                grads += [
                    np.einsum("qcu,qcf->fu", dR, X) + l2 * self.W1,
                    dR.sum(axis=(0, 1)),
                    np.einsum("qc,qcu->u", G, R) + l2 * self.w2,
                ]
            else:
                grads += [np.zeros_like(self.W1), np.zeros_like(self.b1), np.zeros_like(self.w2)]
            for p, g, mo, sq in zip(params, grads, moments, squares, strict=True):
                np.multiply(mo, 0.9, out=mo)
                np.add(mo, 0.1 * g, out=mo)
                np.multiply(sq, 0.999, out=sq)
                np.add(sq, 0.001 * g * g, out=sq)
                np.subtract(p, lr * (mo / (1 - 0.9**t)) / (np.sqrt(sq / (1 - 0.999**t)) + 1e-8), out=p)


def logistic(inputs: np.ndarray, labels: np.ndarray, l2: float = 1e-3, epochs: int = 3000) -> np.ndarray:
    """Weights (then bias) of a logistic regression, by Newton's method."""
    X = np.column_stack([inputs, np.ones(len(inputs))])
    w = np.zeros(X.shape[1])
    for _ in range(min(epochs, 50)):
        p = 1 / (1 + np.exp(-(X @ w)))
        gradient = X.T @ (p - labels) + l2 * w
        hessian = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(X.shape[1])
        w -= np.linalg.solve(hessian, gradient)
    return w


def fit_calibration(queries: list[Query], scores: dict[int, np.ndarray], parity: int | None) -> np.ndarray:
    """The calibration fitted on the top 3 of the questions of ``parity`` (all: ``None``)."""
    inputs, labels = [], []
    for i, q in enumerate(queries):
        if not len(q.x) or (parity is not None and q.q % 2 != parity):
            continue
        c = calibration_inputs(scores[i])
        for j in np.argsort(-scores[i], kind="stable")[:3]:
            inputs.append(c[j])
            labels.append(q.y[j])
    return logistic(np.array(inputs), np.array(labels))


def recall(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    r = [x for x in ranks if x is not None]
    return {
        "R@1": round(sum(x <= 1 for x in r) / n, 4),
        "R@5": round(sum(x <= 5 for x in r) / n, 4),
        "R@10": round(sum(x <= 10 for x in r) / n, 4),
        "MRR@10": round(sum(1 / x for x in r if x <= 10) / n, 4),
    }


def first_hit(y: np.ndarray, order: np.ndarray) -> int | None:
    hits = np.nonzero(y[order] > 0)[0]
    return int(hits[0]) + 1 if len(hits) else None


def standardise(queries: list[Query]) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.vstack([q.x for q in queries if len(q.x)])
    mean = stacked.mean(axis=0)
    scale = stacked.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def train(
    queries: list[Query], hidden: int, l2: float, epochs: int, lr: float
) -> tuple[Ranker, np.ndarray, np.ndarray]:
    mean, scale = standardise(queries)
    usable = [((q.x - mean) / scale, q.y) for q in queries if q.half == "full" and q.y.any()]
    ranker = Ranker(len(FEATURES), hidden)
    ranker.fit(usable, l2, epochs, lr)
    return ranker, mean, scale


def crossfit(queries: list[Query], hidden: int, l2: float, epochs: int, lr: float) -> dict[int, np.ndarray]:
    """Each query's scores from the model trained on the other half (by question index)."""
    out: dict[int, np.ndarray] = {}
    for parity in (0, 1):
        training = [q for q in queries if q.q % 2 != parity]
        ranker, mean, scale = train(training, hidden, l2, epochs, lr)
        for i, q in enumerate(queries):
            if q.q % 2 == parity:
                out[i] = ranker.score((q.x - mean) / scale) if len(q.x) else np.zeros(0)
    return out


def answers(
    queries: list[Query],
    scores: dict[int, np.ndarray],
    calibration: np.ndarray,
    threshold: float | None,
    coverage_threshold: float,
    top_k: int = 5,
    long_threshold: float | None = None,
    long_terms: int = 12,
) -> dict[str, float]:
    """The extractive answerer, simulated: answer from the top passage when its rerank_p
    clears ``threshold`` (``long_threshold`` for a question of at least ``long_terms`` topic
    terms), else from the strongest of the top 5 whose coverage clears
    ``coverage_threshold`` (the existing rule); on "full" rows share answered citing gold,
    on "half" rows unanswerable handed off and answerable answered citing gold."""
    tallies: dict[str, list[bool]] = {
        "full_cited": [],
        "full_answered": [],
        "half_cited": [],
        "half_handoff": [],
    }
    for i, q in enumerate(queries):
        if not len(q.x):
            answered = cited = False
        else:
            s = scores[i]
            order = np.argsort(-s, kind="stable")
            p_top = calibrated(s, calibration[q.q % 2])[order[0]] if threshold is not None else 0.0
            gate = threshold
            if threshold is not None and long_threshold is not None and q.terms >= long_terms:
                gate = min(threshold, long_threshold)
            if gate is not None and p_top >= gate:
                answered, cited = True, bool(q.y[order[0]])
            else:
                top = order[:top_k]
                strong = [j for j in top if q.coverage[j] >= coverage_threshold]
                answered = bool(strong)
                best = max(strong, key=lambda j: (q.coverage[j], s[j])) if strong else None
                cited = bool(best is not None and q.y[best])
        if q.half == "full":
            tallies["full_answered"].append(answered)
            tallies["full_cited"].append(cited)
        elif q.answerable:
            tallies["half_cited"].append(cited)
        else:
            tallies["half_handoff"].append(not answered)
    return {k: round(float(np.mean(v)), 4) if v else float("nan") for k, v in tallies.items()}


COVERAGE_THRESHOLDS = {"support-pt": 0.7, "retrieval-pt": 0.7, "retrieval-en": 0.5, "retrieval-es": 0.5}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=0)
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--threshold", type=float, action="append")
    parser.add_argument("--default", type=float, default=0.9, help="the gate for short questions")
    parser.add_argument("--long-threshold", type=float, action="append", help="the gate for long ones")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    every: list[Query] = []
    for name in args.sets.split(","):
        every += load(name)
    names = sorted({q.set for q in every})
    scores = crossfit(every, args.hidden, args.l2, args.epochs, args.lr)
    # calibration: the cross-fitted scores' top 3 of every question (full and half); the
    # figures below use the calibration fitted on the other half of the questions too
    calibration = fit_calibration(every, scores, None)
    by_half = {parity: fit_calibration(every, scores, 1 - parity) for parity in (0, 1)}
    report: dict[str, dict[str, object]] = {}
    for name in names:
        full = [(i, q) for i, q in enumerate(every) if q.set == name and q.half == "full"]
        before = recall([first_hit(q.y, np.arange(len(q.y))) for _, q in full])
        after = recall([first_hit(q.y, np.argsort(-scores[i], kind="stable")) for i, q in full])
        print(f"{name:14s} n={len(full)} fused {before}  learned {after}")
        report[name] = {"questions": len(full), "fused": before, "learned": after}
        subset = [q for q in every if q.set == name]
        index = {id(q): i for i, q in enumerate(every)}
        sub_scores = {k: scores[index[id(q)]] for k, q in enumerate(subset)}
        cov = COVERAGE_THRESHOLDS.get(name, 0.6)
        base = answers(
            subset,
            {k: np.array([-j for j in range(len(q.x))], dtype=float) for k, q in enumerate(subset)},
            calibration,
            None,
            cov,
        )
        print(f"    answers today (fused order, coverage {cov}): {base}")
        report[name]["answers_today"] = base
        for t in args.threshold or [0.5, 0.6, 0.7, 0.8]:
            gate = answers(subset, sub_scores, by_half, t, cov)
            print(f"    re-ranked, rerank_p >= {t}: {gate}")
            report[name][f"answers_gate_{t}"] = gate
        for t in args.long_threshold or []:
            gate = answers(subset, sub_scores, by_half, args.default, cov, long_threshold=t)
            print(f"    re-ranked, rerank_p >= {args.default}, {t} for 12 terms or more: {gate}")
            report[name][f"answers_gate_{args.default}_long_{t}"] = gate
        nogate = answers(subset, sub_scores, by_half, None, cov)
        print(f"    re-ranked, no gate: {nogate}")
    # reliability of rerank_p on the top passage (cross-fitted)
    tops = []
    for i, q in enumerate(every):
        if len(q.x):
            j = int(np.argmax(scores[i]))
            tops.append((calibrated(scores[i], by_half[q.q % 2])[j], q.y[j]))
    tops_a = np.array(tops)
    for low in np.arange(0, 1, 0.2):
        inside = tops_a[(tops_a[:, 0] >= low) & (tops_a[:, 0] < low + 0.2)]
        if len(inside):
            print(
                f"  rerank_p {low:.1f}-{low + 0.2:.1f}: n={len(inside)} mean p {inside[:, 0].mean():.3f}"
                f" hit rate {inside[:, 1].mean():.3f}"
            )
    if args.write:
        ranker, mean, scale = train(every, args.hidden, args.l2, args.epochs, args.lr)
        model = RankerModel(
            features=FEATURES,
            mean=mean,
            scale=scale,
            weights=ranker.w,
            bias=0.0,
            hidden=(ranker.W1, ranker.b1) if args.hidden else None,
            out=ranker.w2 if args.hidden else None,
            calibration=calibration,
            candidates=CANDIDATES,
            card={
                "trained_on": names,
                "hidden": args.hidden,
                "l2": args.l2,
                "epochs": args.epochs,
                "crossfit_by_halves": report,
            },
        )
        MODEL.write_text(json.dumps(model.as_json(), indent=1) + "\n")
        print(f"model -> {MODEL}")


if __name__ == "__main__":
    main(sys.argv[1:])
