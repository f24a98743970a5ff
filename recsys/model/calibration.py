"""Click probabilities from scores: Platt scaling, ``sigmoid(a * score + b)``, fitted on labelled rows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, dtype=np.float64), -50, 50)))


@dataclass(frozen=True)
class Calibration:
    """``a`` and ``b`` of ``sigmoid(a * score + b)``; the identity calibration is (1, 0)."""

    a: float = 1.0
    b: float = 0.0

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        return sigmoid(self.a * np.asarray(scores, dtype=np.float64) + self.b)

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> Calibration:
        """Platt scaling on (score, click) rows; ``a`` is kept positive, so calibration never reverses a ranking."""
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels)
        if len(labels) == 0 or labels.min() == labels.max():
            return cls()
        fit = LogisticRegression(C=1e6).fit(np.asarray(scores, dtype=np.float64).reshape(-1, 1), labels)
        a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
        return cls(a, b) if math.isfinite(a) and math.isfinite(b) and a > 0 else cls()
