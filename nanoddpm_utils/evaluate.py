"""Sample quality without downloads, for the digits preset.

A small classifier trained on real digits (scikit-learn ships both) judges samples:
- confidence: the mean top-class probability (sharp, recognisable digits score high);
- coverage: the entropy of the predicted-class histogram, in nats (log 10 = 2.303 when all ten digits are equally common);
- Frechet distance between Gaussians fitted to the classifier's hidden pre-activations (the FID recipe, in a fixed
  64-d feature space instead of Inception's).
Each figure is reported next to real held-out digits (the floor) and uniform noise (the ceiling).

The likelihood side, bits/dim (the paper's Table 1), lives in ``bpd.py``; ``bits_per_dim`` is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import linalg

from .bpd import bits_per_dim  # noqa: F401  (re-exported: evaluate.bits_per_dim)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two sets of feature vectors."""
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    s_a, s_b = np.cov(feats_a, rowvar=False), np.cov(feats_b, rowvar=False)
    covmean = linalg.sqrtm(s_a @ s_b)  # (SciPy's `disp` argument is deprecated)
    covmean = (covmean[0] if isinstance(covmean, tuple) else covmean).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2.0 * covmean))


@dataclass(frozen=True)
class DigitsJudge:
    """A fixed MLP trained on the real training digits: its probabilities and hidden features."""

    clf: object
    reference_features: np.ndarray  # features of the real training digits

    def _flat(self, images_uint8: np.ndarray) -> np.ndarray:
        x = np.asarray(images_uint8)
        if x.dtype != np.uint8 or x.shape[1:] != (8, 8, 1):
            raise ValueError(f"expected uint8 digits of shape (N, 8, 8, 1), got {x.dtype} {x.shape}")
        return x.reshape(len(x), 64).astype(np.float64) / 255.0

    def features(self, images_uint8: np.ndarray) -> np.ndarray:
        # the hidden layer before its ReLU: 64 features, none of them dead (a singular covariance)
        return self._flat(images_uint8) @ self.clf.coefs_[0] + self.clf.intercepts_[0][None, :]

    def probabilities(self, images_uint8: np.ndarray) -> np.ndarray:
        return self.clf.predict_proba(self._flat(images_uint8))

    def score(self, images_uint8: np.ndarray) -> dict:
        p = self.probabilities(images_uint8)
        counts = np.bincount(p.argmax(1), minlength=10)
        share = counts / counts.sum()
        nz = share[share > 0]
        return {
            "confidence": float(p.max(1).mean()),
            "coverage_entropy": float(-(nz * np.log(nz)).sum()),
            "classes_present": int((counts > 0).sum()),
            "min_class_share": float(share.min()),
            "max_class_share": float(share.max()),
            "frechet": frechet_distance(self.features(images_uint8), self.reference_features),
        }


@lru_cache(maxsize=1)
def digits_judge() -> DigitsJudge:
    """Train the judge once (about a second) on the training split."""
    from sklearn.neural_network import MLPClassifier

    from .data import load_digits

    x, y = load_digits("train", return_labels=True)
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=2000, random_state=0)
    clf.fit(x.reshape(len(x), 64).astype(np.float64) / 255.0, y)
    judge = DigitsJudge(clf, np.zeros((0, 64)))
    return DigitsJudge(clf, judge.features(x))


def digits_quality_table(samples_uint8: np.ndarray, seed: int = 0) -> dict[str, dict]:
    """Scores of the samples, of real held-out digits (the floor) and of uniform noise (the ceiling)."""
    from .data import load_digits

    judge = digits_judge()
    noise = np.random.default_rng(seed).integers(0, 256, samples_uint8.shape, dtype=np.uint8)
    return {"samples": judge.score(samples_uint8), "real (held out)": judge.score(load_digits("test")),
            "noise": judge.score(noise)}


def format_table(table: dict[str, dict]) -> str:
    cols = ["confidence", "coverage_entropy", "classes_present", "min_class_share", "frechet"]
    lines = [f"{'':18s}" + "".join(f"{c:>18s}" for c in cols)]
    for name, row in table.items():
        lines.append(f"{name:18s}" + "".join(f"{row[c]:>18.3f}" if isinstance(row[c], float) else f"{row[c]:>18d}"
                                             for c in cols))
    return "\n".join(lines)
