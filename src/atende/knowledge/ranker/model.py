"""The learned re-ranker's model: a small scorer and its calibration, read from a JSON file
shipped inside the package and evaluated with numpy (``docs/RANKER.md``).

The scorer maps each candidate's standardised features to a score: a linear layer, or a
linear layer plus one small hidden layer (``hidden``: weights and biases of a ReLU layer,
``out`` its output weights). The calibration turns a candidate's score, its margin over the
best other candidate and its share of the candidates' softmax into ``rerank_p``, the
probability that the candidate is the right passage, a logistic regression fitted on
questions the scorer was not trained on. Training (``scripts/ranker_train.py``) needs no
library beyond numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from atende.knowledge.ranker.features import FEATURES

MODEL_FILE = "model.json"


class ModelMismatch(ValueError):
    """The model file was trained on other features than this code computes."""


@dataclass(frozen=True)
class RankerModel:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # linear part, one per feature
    bias: float
    hidden: tuple[np.ndarray, np.ndarray] | None  # (features x units, units)
    out: np.ndarray | None  # units
    calibration: np.ndarray  # weights of (score, margin, softmax share), then the bias
    candidates: int  # how many fused candidates it was trained on
    card: dict[str, Any]  # what it was trained on and how it did (docs/RANKER.md)

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """One score per row of ``matrix`` (``FEATURES`` order), higher is better."""
        x = (matrix - self.mean) / self.scale
        score = x @ self.weights + self.bias
        if self.hidden is not None and self.out is not None:
            weights, biases = self.hidden
            score = score + np.maximum(x @ weights + biases, 0.0) @ self.out
        return np.asarray(score, dtype=float)

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """``rerank_p`` of each candidate from the candidates' ``scores``."""
        return calibrated(scores, self.calibration)

    def as_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "weights": self.weights.round(6).tolist(),
            "bias": round(self.bias, 6),
            "hidden": None
            if self.hidden is None
            else {"weights": self.hidden[0].round(6).tolist(), "biases": self.hidden[1].round(6).tolist()},
            "out": None if self.out is None else self.out.round(6).tolist(),
            "calibration": self.calibration.round(6).tolist(),
            "candidates": self.candidates,
            "card": self.card,
        }


def calibration_inputs(scores: np.ndarray) -> np.ndarray:
    """Per candidate: its score, its margin over the best other candidate, its softmax share."""
    n = len(scores)
    if n == 0:
        return np.zeros((0, 3))
    order = np.sort(scores)[::-1]
    best_other = np.where(scores >= order[0], order[1] if n > 1 else order[0] - 1.0, order[0])
    shifted = np.exp(scores - order[0])
    return np.column_stack([scores, scores - best_other, shifted / shifted.sum()])


def calibrated(scores: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    logits = calibration_inputs(scores) @ calibration[:-1] + calibration[-1]
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=float)


def parse(data: dict[str, Any]) -> RankerModel:
    features = tuple(data["features"])
    if features != FEATURES:
        raise ModelMismatch(f"the model was trained on features {features}, this code computes {FEATURES}")
    hidden = data.get("hidden")
    return RankerModel(
        features=features,
        mean=np.array(data["mean"], dtype=float),
        scale=np.array(data["scale"], dtype=float),
        weights=np.array(data["weights"], dtype=float),
        bias=float(data["bias"]),
        hidden=None
        if not hidden
        else (np.array(hidden["weights"], dtype=float), np.array(hidden["biases"], dtype=float)),
        out=None if data.get("out") is None else np.array(data["out"], dtype=float),
        calibration=np.array(data["calibration"], dtype=float),
        candidates=int(data["candidates"]),
        card=dict(data.get("card", {})),
    )


def read(path: Path) -> RankerModel:
    return parse(json.loads(path.read_text()))


@cache
def shipped() -> RankerModel:
    """The model that ships with atende (read once per process)."""
    source = resources.files("atende.knowledge.ranker").joinpath(MODEL_FILE)
    return parse(json.loads(source.read_text()))
