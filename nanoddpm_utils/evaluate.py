"""Sample quality without downloads, for the digits preset.

A small classifier trained on real digits (scikit-learn ships both) judges samples: its confidence (the mean
top-class probability), coverage (the entropy of the predicted classes, log 10 = 2.303 nats when all are equally
common), and in its 64 hidden features (the FID recipe without Inception) the Frechet distance, KID (unlike the
Frechet distance, its expectation does not depend on the set's size) and precision and recall (fidelity and
diversity read apart). A second judge shares nothing with it (``PixelJudge``: an RBF SVM on the pixels, and the
digits' principal components as features). Every figure stands next to real digits the judge never saw (the
floor) and uniform noise (the ceiling), like for like. ``copy_distances``: is the model copying its training
digits? ``class_scores``: class-conditional samples, class by class. Bits/dim (the paper's Table 1) is ``bpd``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import linalg
from scipy.spatial.distance import cdist
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from .data import load_digits


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two sets of feature vectors."""
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(feats_a, rowvar=False)), np.atleast_2d(np.cov(feats_b, rowvar=False))
    covmean = linalg.sqrtm(s_a @ s_b)  # (SciPy's `disp` argument is deprecated)
    covmean = (covmean[0] if isinstance(covmean, tuple) else covmean).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2.0 * covmean))


def _kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _within(x: np.ndarray) -> float:
    """mean_{i != j} k(x_i, x_j): the kernel's mean over distinct pairs of one set."""
    k = _kernel(x, x)
    return float((k.sum() - np.trace(k)) / (len(x) * (len(x) - 1)))


def kid(feats_a: np.ndarray, feats_b: np.ndarray, *, within_b: float | None = None) -> float:
    """KID (Binkowski et al. 2018): the unbiased squared MMD with the kernel k(x, y) = (x.y / d + 1)^3,
    mean_{i != j} k(a_i, a_j) + mean_{i != j} k(b_i, b_j) - 2 mean_{i, j} k(a_i, b_j) (it can be slightly negative;
    0 on average for samples of the real distribution). ``within_b``: the middle term, when already known."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    m, n = len(a), len(b)
    if m < 2 or n < 2:
        raise ValueError(f"KID needs at least 2 feature vectors in each set, got {m} and {n}")
    within_b = _within(b) if within_b is None else within_b
    return _within(a) + within_b - 2.0 * float(_kernel(a, b).mean())


def kid_with_error(feats: np.ndarray, reference: np.ndarray, num_subsets: int = 10) -> tuple[float, float]:
    """(KID of all of ``feats`` against ``reference``, its standard error): the spread of the KIDs of
    ``num_subsets`` disjoint subsets over sqrt(num_subsets), at least the full set's error; nan below 4 images."""
    parts = np.array_split(np.arange(len(feats)), max(1, min(num_subsets, len(feats) // 2)))
    within_ref = _within(np.asarray(reference, np.float64))  # the reference's own term, once for every subset
    full = kid(feats, reference, within_b=within_ref)
    if len(parts) < 2:
        return full, float("nan")
    values = [kid(feats[p], reference, within_b=within_ref) for p in parts]
    return full, float(np.std(values, ddof=1) / np.sqrt(len(values)))


# --------------------------------------------------------------------------- precision and recall
def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (points, features), got shape {x.shape}")
    return x


def knn_radii(feats: np.ndarray, k: int = 3) -> np.ndarray:
    """Each point's distance to its k-th nearest neighbour in the same set, the point itself left out."""
    d = cdist(feats, feats)  # (n, n) Euclidean distances
    np.fill_diagonal(d, np.inf)  # a point is not its own neighbour
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def _share_inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    """The share of ``points`` inside at least one ball (centre, radius): the union of balls is the manifold."""
    return float(np.mean((cdist(points, centres) <= radii[None, :]).any(axis=1)))


def precision_recall(real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, arXiv:1904.06991). A manifold is the union of
    balls around a set's points, each of radius its distance to its k-th nearest neighbour in the set; precision
    (fidelity) is the share of fake points inside the real manifold, recall (diversity) of real points in the fake."""
    real, fake = _as_features(real_feats, "real_feats"), _as_features(fake_feats, "fake_feats")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in size: {real.shape[1]} against {fake.shape[1]}")
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"k = {k} needs at least {k + 1} points in each set, got {len(real)} real, {len(fake)} fake")
    precision = _share_inside(fake, real, knn_radii(real, k))
    recall = _share_inside(real, fake, knn_radii(fake, k))
    return precision, recall


# --------------------------------------------------------------------------- is the model copying?
def nearest_neighbours(query_feats: np.ndarray, reference_feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices): for each query point, its Euclidean distance to the nearest reference point and which."""
    query, reference = _as_features(query_feats, "query_feats"), _as_features(reference_feats, "reference_feats")
    if query.shape[1] != reference.shape[1] or len(reference) == 0:
        raise ValueError(
            f"need a non-empty reference with the query's {query.shape[1]} features, got shape {reference.shape}"
        )
    d = cdist(query, reference)
    idx = d.argmin(axis=1)
    return d[np.arange(len(query)), idx], idx


def _pixels(images_uint8: np.ndarray, shape: tuple | None = None) -> np.ndarray:
    """uint8 images (N, H, W, C), of the given per-image ``shape`` if one is given, as rows of floats in [0, 1]."""
    x = np.asarray(images_uint8)
    if x.dtype != np.uint8 or x.ndim != 4 or (shape is not None and x.shape[1:] != shape):
        want = "(N, H, W, C)" if shape is None else f"(N, {', '.join(map(str, shape))})"
        raise ValueError(f"expected uint8 images {want}, got {x.dtype} {x.shape}")
    return x.reshape(len(x), -1).astype(np.float64) / 255.0


def copy_distances(samples_uint8: np.ndarray, train_uint8: np.ndarray, held_out_uint8: np.ndarray) -> dict:
    """Is the model copying? In pixels in [0, 1], each sample's distance to its nearest training digit (and
    which), and the same for real digits the model never saw: a copying model's samples sit much nearer."""
    train = _pixels(train_uint8)
    d_s, i_s = nearest_neighbours(_pixels(samples_uint8), train)
    d_h, i_h = nearest_neighbours(_pixels(held_out_uint8), train)
    return {"samples": d_s, "samples_index": i_s, "held_out": d_h, "held_out_index": i_h}


@dataclass(frozen=True)
class DigitsJudge:
    """A fixed MLP trained on 80% of the real digits: its probabilities, its hidden features, the 20% it never saw."""

    clf: object
    reference_features: np.ndarray  # features of the digits it was trained on
    held_out: np.ndarray  # uint8 (N, 8, 8, 1): real digits it never saw, drawn at random as samples are
    held_out_labels: np.ndarray

    def _flat(self, images_uint8: np.ndarray) -> np.ndarray:
        return _pixels(images_uint8, (8, 8, 1))

    def features(self, images_uint8: np.ndarray) -> np.ndarray:
        # the hidden layer before its ReLU: 64 features, none of them dead (a singular covariance)
        return self._flat(images_uint8) @ self.clf.coefs_[0] + self.clf.intercepts_[0][None, :]

    def probabilities(self, images_uint8: np.ndarray) -> np.ndarray:
        return self.clf.predict_proba(self._flat(images_uint8))

    def score(self, images_uint8: np.ndarray, size: int | None = None) -> dict:
        """Confidence and coverage of all the images; the Frechet distance, precision and recall (against as many
        reference digits, the same in every call) the mean over sets of ``size`` images (default: one set), since
        they depend on the set's size."""
        n = len(images_uint8)
        if n < 2:
            raise ValueError(f"a Frechet distance needs at least 2 images, got {n}; draw more samples")
        size = n if size is None else size
        if not 2 <= size <= n:
            raise ValueError(f"size must be 2 .. {n} (the number of images), got {size}")
        p = self.probabilities(images_uint8)
        counts = np.bincount(p.argmax(1), minlength=10)
        share = counts / counts.sum()
        nz = share[share > 0]
        feats = self.features(images_uint8)
        kid_value, kid_se = kid_with_error(feats, self.reference_features)
        sets = [feats[i : i + size] for i in range(0, n - size + 1, size)]
        reference = self.reference_features[np.random.default_rng(0).permutation(len(self.reference_features))[:size]]
        k = 3  # precision and recall need more than k images in a set: nan below that, as KID's error is
        pr = np.mean([precision_recall(reference, f, k) for f in sets], axis=0) if size > k else (np.nan, np.nan)
        return {
            "confidence": float(p.max(1).mean()),
            "coverage_entropy": float(-(nz * np.log(nz)).sum()),
            "classes_present": int((counts > 0).sum()),
            "min_class_share": float(share.min()),
            "max_class_share": float(share.max()),
            "frechet": float(np.mean([frechet_distance(f, self.reference_features) for f in sets])),
            "precision": float(pr[0]),
            "recall": float(pr[1]),
            "kid": kid_value,
            "kid_se": kid_se,
        }


NUM_COMPONENTS = 20  # principal components of the pixel judge: about 90% of the real digits' variance


class PixelJudge(DigitsJudge):
    """The second judge, sharing nothing with the MLPs: an RBF SVM on the pixels gives the classes, the digits' first
    ``NUM_COMPONENTS`` principal components (learnt without labels) the features. Its own 80/20 split."""

    def features(self, images_uint8: np.ndarray) -> np.ndarray:
        return self.clf[0].transform(self._flat(images_uint8))  # clf = (pca, svm)

    def probabilities(self, images_uint8: np.ndarray) -> np.ndarray:
        return self.clf[1].predict_proba(self._flat(images_uint8))


NUM_JUDGES = 8


@lru_cache(maxsize=1)
def digits_judges(num: int = NUM_JUDGES) -> tuple[DigitsJudge, ...]:
    """``num`` judges (a second each to train), judge i on its own random 80/20 split of the 1797 digits;
    several average out the luck of one split. Random, not stratified: a perfect model's class shares wander, so
    the real digits must too (a stratified 20% reads a third lower on the Frechet distance: 0.37 against 0.57)."""
    x, y = load_digits("all", return_labels=True)
    judges = []
    for i in range(num):
        train, held_out = train_test_split(np.arange(len(y)), test_size=0.2, random_state=i)
        clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=2000, random_state=0)
        clf.fit(_pixels(x[train]), y[train])
        judge = DigitsJudge(clf, None, x[held_out], y[held_out])
        judges.append(replace(judge, reference_features=judge.features(x[train])))
    return tuple(judges)


PIXEL_JUDGE_SPLIT = 1000  # the random_state of the pixel judge's split (the MLP judges use 0 .. NUM_JUDGES - 1)


@lru_cache(maxsize=1)
def pixel_judge() -> PixelJudge:
    """The second feature space (a few seconds to build): PCA of real digits + an RBF SVM on their pixels."""
    x, y = load_digits("all", return_labels=True)
    train, held_out = train_test_split(np.arange(len(y)), test_size=0.2, random_state=PIXEL_JUDGE_SPLIT)
    flat = _pixels(x[train])
    pca = PCA(n_components=NUM_COMPONENTS, random_state=0).fit(flat)
    svm = CalibratedClassifierCV(SVC(kernel="rbf"), ensemble=False).fit(flat, y[train])  # Platt-scaled probabilities
    judge = PixelJudge((pca, svm), None, x[held_out], y[held_out])
    return replace(judge, reference_features=judge.features(x[train]))


def digits_judge() -> DigitsJudge:
    """The first judge, for looking at one feature space."""
    return digits_judges()[0]


def _mean_rows(rows: list[dict]) -> dict:
    """Mean over judges; ``classes_present`` is the fewest any judge saw."""
    return {
        k: min(r[k] for r in rows) if k == "classes_present" else float(np.mean([r[k] for r in rows])) for k in rows[0]
    }


def digits_quality_table(samples_uint8: np.ndarray, seed: int = 0) -> dict[str, dict]:
    """Scores of the samples, of real digits the judges never saw (the floor) and of uniform noise (the ceiling),
    like for like: the same judges, sets of m = min(samples, a judge's held-out digits) images (the real row: m
    held-out digits at random). The MLP judges' figures are their mean (KID's error too: they share the samples);
    the pixel judge's are prefixed ``pixel_``."""
    judges = digits_judges()
    m = min(len(samples_uint8), len(judges[0].held_out))
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, samples_uint8.shape, dtype=np.uint8)
    names = ("samples", "real (held out)", "noise")
    rows = {name: [] for name in names}
    for judge in judges:
        real = judge.held_out[rng.permutation(len(judge.held_out))[:m]]
        for name, images in zip(names, (samples_uint8, real, noise)):
            rows[name].append(judge.score(images, m))
    table = {name: _mean_rows(r) for name, r in rows.items()}
    pixel = pixel_judge()
    real = pixel.held_out[rng.permutation(len(pixel.held_out))[:m]]
    for name, images in zip(names, (samples_uint8, real, noise)):
        table[name].update({f"pixel_{k}": v for k, v in pixel.score(images, m).items()})
    return table


TABLE_COLUMNS = tuple(
    "confidence coverage_entropy classes_present min_class_share frechet kid precision recall "
    "pixel_confidence pixel_frechet pixel_kid pixel_precision pixel_recall".split()
)


def format_table(table: dict[str, dict]) -> str:
    """The rows of ``digits_quality_table``; KID with its standard error, both x 1000."""

    def cell(row, c):  # a space, then the figure right-aligned: columns never run together
        if c.endswith("kid"):
            return " " + f"{1e3 * row[c]:.2f}+-{1e3 * row[c + '_se']:.2f}".rjust(16)
        return f" {row[c]:>16.3f}" if isinstance(row[c], float) else f" {row[c]:>16d}"

    heads = [c.replace("kid", "kid x1e3").replace("coverage_", "class_") for c in TABLE_COLUMNS]
    lines = [f"{'':18s}" + "".join(f" {h:>16s}" for h in heads)]
    lines += [f"{name:18s}" + "".join(cell(row, c) for c in TABLE_COLUMNS) for name, row in table.items()]
    return "\n".join(lines)


JUDGES = {"mlp": ("frechet", "kid"), "pixel": ("pixel_frechet", "pixel_kid")}


def as_good(candidate: dict, reference: dict, spread: dict | None = None, tolerance: float = 0.10) -> dict:
    """Is ``candidate`` as good as ``reference`` (rows of ``digits_quality_table``, or means over seeds)? Each
    figure (each judge's Frechet distance and KID) says yes when at most ``tolerance`` (relative) above the
    reference, or within ``spread[figure]`` (a seed-to-seed deviation, or KID's error); a judge needs both its
    figures, "as good" both judges. Returns {figure: bool, ..., "mlp": bool, "pixel": bool, "as_good": bool}."""
    spread = spread or {}
    out = {}
    for judge, figures in JUDGES.items():
        for f in figures:
            margin = max(tolerance * abs(reference[f]), spread.get(f, 0.0))
            out[f] = bool(candidate[f] - reference[f] <= margin)
        out[judge] = all(out[f] for f in figures)
    out["as_good"] = all(out[j] for j in JUDGES)
    return out


# --------------------------------------------------------------------------- class-conditional samples, class by class
def class_scores(samples_uint8: np.ndarray, labels, judges=None) -> dict[str, np.ndarray]:
    """Per requested class c, the mean over ``judges`` (default ``digits_judges()``) of ``accuracy[c]`` (the
    share of samples asked to be c classified as c), ``frechet[c]`` (those samples against the class-c digits the
    judge learnt from, in sets of held-out size) and ``frechet_real[c]`` (its held-out class-c digits, the floor)."""
    samples_uint8, labels = np.asarray(samples_uint8), np.asarray(labels)
    judges = digits_judges() if judges is None else judges
    all_x, all_y = load_digits("all", return_labels=True)
    classes = np.unique(labels)
    acc, fd, fd_real = (np.zeros((len(judges), len(classes))) for _ in range(3))
    for j, judge in enumerate(judges):
        held = {img.tobytes() for img in judge.held_out}
        trained = np.array([img.tobytes() not in held for img in all_x])  # the digits this judge learnt from
        pred = judge.probabilities(samples_uint8).argmax(1)
        for k, c in enumerate(classes):
            mine = labels == c
            acc[j, k] = np.mean(pred[mine] == c)
            ref = judge.features(all_x[(all_y == c) & trained])
            real = judge.held_out[judge.held_out_labels == c]
            size = min(len(real), int(mine.sum()))
            feats = judge.features(samples_uint8[mine])
            sets = range(0, len(feats) - size + 1, size)
            fd[j, k] = np.mean([frechet_distance(feats[i : i + size], ref) for i in sets])
            fd_real[j, k] = frechet_distance(judge.features(real[:size]), ref)
    return {"classes": classes, "accuracy": acc.mean(0), "frechet": fd.mean(0), "frechet_real": fd_real.mean(0)}
