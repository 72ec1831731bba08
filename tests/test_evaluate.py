"""The digits judges: the Frechet distance against closed forms, KID against a direct double loop and known cases,
precision and recall and the copy check on point sets worked out by hand, the second (pixel) judge's independence
from the first, the "as good" verdict, and the like-for-like floor."""

import numpy as np
import pytest

from nanoddpm_utils import evaluate
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.evaluate import (
    as_good,
    copy_distances,
    digits_judges,
    digits_quality_table,
    frechet_distance,
    kid,
    kid_with_error,
    knn_radii,
    nearest_neighbours,
    pixel_judge,
    precision_recall,
)


def with_moments(rng, n, mean, cov):
    """n points whose sample mean and sample covariance (ddof 1, as np.cov) are exactly ``mean`` and ``cov``."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T  # now cov(z) = I
    return z @ np.linalg.cholesky(cov).T + mean


def psd_sqrt(m):
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_distance_in_one_dimension_is_the_gap_in_means_and_in_standard_deviations():
    rng = np.random.default_rng(0)
    a = with_moments(rng, 50, np.array([1.0]), np.array([[4.0]]))
    b = with_moments(rng, 80, np.array([-0.5]), np.array([[0.25]]))
    assert frechet_distance(a, b) == pytest.approx(1.5**2 + (2.0 - 0.5) ** 2, rel=1e-9)


def test_frechet_distance_matches_the_symmetric_form_for_covariances_that_do_not_commute():
    # d^2 = |mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a^1/2 S_b S_a^1/2)^1/2), written with eigendecompositions
    rng = np.random.default_rng(1)
    d = 5
    A, B = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s_a, s_b = A @ A.T + 0.1 * np.eye(d), B @ B.T + 0.1 * np.eye(d)
    assert not np.allclose(s_a @ s_b, s_b @ s_a)
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    a, b = with_moments(rng, 200, mu_a, s_a), with_moments(rng, 300, mu_b, s_b)
    root = psd_sqrt(s_a)
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(psd_sqrt(root @ s_b @ root))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_each_judge_holds_out_a_random_fifth_of_the_digits_and_recognises_it():
    judges = digits_judges()
    assert len(judges) >= 5
    for judge in judges:
        assert len(judge.held_out) == 360 and len(judge.reference_features) == 1797 - 360
    assert not np.array_equal(judges[0].held_out, judges[1].held_out)  # each judge has its own split
    for judge in judges:  # it recognises digits it never saw
        accuracy = np.mean(judge.probabilities(judge.held_out).argmax(1) == judge.held_out_labels)
        assert accuracy > 0.95
    # the held-out fifth is not stratified: its class shares wander, as those of independent samples do
    shares = np.bincount(judges[0].held_out_labels, minlength=10) / 360
    assert shares.max() - shares.min() > 0.02


def test_the_floor_is_scored_on_sets_of_the_samples_size():
    real = load_digits("test")
    small, full = digits_quality_table(real[:64]), digits_quality_table(real)
    # the Frechet distance of a small set is inflated by its noisy mean and covariance; the floor moves with it
    assert small["real (held out)"]["frechet"] > 2 * full["real (held out)"]["frechet"]
    assert small["samples"]["frechet"] > 2 * full["samples"]["frechet"]
    for table in (small, full):
        floor, noise = table["real (held out)"], table["noise"]
        assert floor["classes_present"] == 10 and floor["confidence"] > 0.95
        assert noise["frechet"] > 20 * floor["frechet"] and noise["coverage_entropy"] < floor["coverage_entropy"]


def test_a_frechet_distance_needs_two_images():
    with pytest.raises(ValueError, match="at least 2 images, got 1"):
        digits_quality_table(load_digits("test")[:1])
    with pytest.raises(ValueError, match="size must be 2 .. 3"):
        digits_judges()[0].score(load_digits("test")[:3], size=4)


# --------------------------------------------------------------------------- KID
def kid_by_pairs(a, b):
    """Unbiased MMD^2 written as the double sums over pairs, one pair at a time, k(x, y) = (x.y / d + 1)^3."""
    d = a.shape[1]

    def k(x, y):
        return (sum(x[i] * y[i] for i in range(d)) / d + 1) ** 3

    m, n = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    bb = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    ab = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return aa + bb - 2 * ab


def test_kid_is_the_unbiased_mmd_of_the_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 3)), rng.normal(0.5, 2.0, size=(9, 3))
    assert kid(a, b) == pytest.approx(kid_by_pairs(a, b), rel=1e-10)
    assert kid(a, b) == pytest.approx(kid(b, a), rel=1e-12)
    # kid_with_error computes the reference's own term once and shares it: the same figures as pair by pair
    big_a = rng.normal(size=(20, 3))
    value, se = kid_with_error(big_a, b, num_subsets=4)
    subsets = [kid_by_pairs(big_a[i : i + 5], b) for i in range(0, 20, 5)]
    assert value == pytest.approx(kid_by_pairs(big_a, b), rel=1e-10)
    assert se == pytest.approx(np.std(subsets, ddof=1) / 2, rel=1e-8)
    with pytest.raises(ValueError, match="at least 2"):
        kid(a[:1], b)


def test_kid_is_zero_on_average_for_one_distribution_and_positive_for_shifted_ones():
    rng = np.random.default_rng(1)
    same = [kid(rng.normal(size=(30, 4)), rng.normal(size=(40, 4))) for _ in range(400)]
    # unbiased: the mean over 400 pairs of small sets is 0 within 3 standard errors (a biased estimate, which keeps
    # the diagonal k(x, x) terms, sits well above: checked below)
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    assert min(same) < 0 < max(same)

    def diagonal(x):  # what keeping the k(x, x) terms adds, to first order
        return np.mean([(v @ v / 4 + 1) ** 3 for v in x]) / len(x)

    pairs = ((rng.normal(size=(30, 4)), rng.normal(size=(40, 4))) for _ in range(50))
    biased = [kid(a, b) + diagonal(a) + diagonal(b) for a, b in pairs]
    assert np.mean(biased) > 10 * np.std(same) / np.sqrt(len(same))
    shifted = [kid(rng.normal(size=(30, 4)), rng.normal(0.5, 1.0, size=(40, 4))) for _ in range(50)]
    assert np.mean(shifted) > 10 * np.std(shifted) / np.sqrt(50) and np.mean(shifted) > 5 * abs(np.mean(same))
    # the further apart, the larger
    assert kid(rng.normal(size=(500, 4)), rng.normal(1.0, 1.0, size=(500, 4))) > np.mean(shifted)


def test_kid_standard_error_matches_the_spread_across_fresh_sets():
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(300, 5))
    draws = [kid_with_error(rng.normal(0.2, 1.0, size=(200, 5)), reference) for _ in range(60)]
    spread = np.std([v for v, _ in draws], ddof=1)  # the real spread of the full-set figure over fresh sample sets
    reported = np.mean([se for _, se in draws])
    assert 0.7 * spread < reported < 2.0 * spread  # an upper-side estimate (subset means), but of the right size
    assert np.isnan(kid_with_error(rng.normal(size=(3, 5)), reference)[1])  # one subset: no error to give


# --------------------------------------------------------------------------- precision and recall
REAL = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])  # points on a line, worked out by hand below


def test_knn_radii_leave_the_point_itself_out():
    # distances from 0: 1, 3, 6, 10; from 1: 1, 2, 5, 9; from 3: 3, 2, 3, 7; from 6: 6, 5, 3, 4; from 10: 10, 9, 7, 4
    np.testing.assert_array_equal(knn_radii(REAL, k=1), [1, 1, 2, 3, 4])
    np.testing.assert_array_equal(knn_radii(REAL, k=2), [3, 2, 3, 4, 7])


def test_precision_counts_fakes_inside_the_balls_of_the_real_points():
    fake = np.array([[-0.5], [2.25], [8.5], [14.5], [20.0]])
    # k = 1, radii 1 1 2 3 4: -0.5 (ball of 0), 2.25 (of 3), 8.5 (of 6) are in; 14.5 (4.5 from 10) and 20 are out
    assert precision_recall(REAL, fake, k=1)[0] == 3 / 5
    # k = 2, radii 3 2 3 4 7: 14.5 is now inside the ball of 10 (radius 7); 20 is still out
    assert precision_recall(REAL, fake, k=2)[0] == 4 / 5


def test_recall_counts_real_points_inside_the_balls_of_the_fakes():
    fake = np.array([[0.25], [0.5], [1.25], [1.5]])
    # k = 1, fake radii 0.25 each. Real 0 is 0.25 from the fake 0.25 (on the boundary: inside), 1 is 0.25 from 1.25
    # (inside), 3 is 1.5 from 1.5 (out), 6 and 10 are out: recall 2/5. Every fake lies in the ball of 0 or of 1
    # (radius 1): precision 1
    assert precision_recall(REAL, fake, k=1) == (1.0, 2 / 5)
    # the roles are not symmetric: swapping the two sets swaps the two figures
    assert precision_recall(fake, REAL, k=1) == (2 / 5, 1.0)
    # k = 2, the second-nearest fake: from 0.25, 1.0 (1.25); from 0.5, 0.75 (1.25); from 1.25, 0.75 (0.5); from 1.5,
    # 1.0 (0.5). Real 3 is still 1.5 from 1.5: out
    np.testing.assert_array_equal(knn_radii(fake, k=2), [1.0, 0.75, 0.75, 1.0])
    assert precision_recall(REAL, fake, k=2) == (1.0, 2 / 5)
    # a lone fake far out has a big ball (its nearest fake neighbour is far): it alone covers 3, 6 and 10
    assert precision_recall(REAL, np.concatenate([fake, [[9.0]]]), k=1) == (1.0, 1.0)


def test_identical_sets_far_sets_and_a_collapsed_set():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 4))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)  # every point is the centre of its own ball
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)  # far away: nothing inside either manifold
    # a 10 x 10 grid with spacing 1, and 20 fakes within 0.01 of its corner (0, 0): the corner's ball (k = 3: its
    # neighbours at 1, 1 and sqrt(2)) holds every fake, so precision is 1; the fakes' balls are tiny and hold only
    # the corner itself: recall is 1 point in 100
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    collapsed = rng.uniform(-0.005, 0.005, size=(20, 2))
    assert precision_recall(grid, collapsed) == (1.0, 0.01)


def test_precision_recall_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 4 points in each set, got 5 real, 3 fake"):
        precision_recall(REAL, REAL[:3], k=3)
    with pytest.raises(ValueError, match="differ in size: 1 against 2"):
        precision_recall(REAL, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="2-d array"):
        precision_recall(REAL[:, 0], REAL)
    with pytest.raises(ValueError, match="positive integer"):
        precision_recall(REAL, REAL, k=0)


# --------------------------------------------------------------------------- the copy check
def test_nearest_neighbours_by_hand():
    query = np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 12.0]])
    reference = np.array([[1.0, 0.0], [4.0, 4.0], [9.0, 9.0]])
    distances, indices = nearest_neighbours(query, reference)
    np.testing.assert_allclose(distances, [1.0, np.sqrt(2.0), 3.0])
    np.testing.assert_array_equal(indices, [0, 1, 2])


def test_the_copy_check_finds_a_planted_copy():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(50, 8, 8, 1), dtype=np.uint8)
    held_out = rng.integers(0, 256, size=(20, 8, 8, 1), dtype=np.uint8)
    samples = rng.integers(0, 256, size=(30, 8, 8, 1), dtype=np.uint8)
    samples[7] = train[23]  # one sample is a training image, pixel for pixel
    samples[11] = np.clip(train[4].astype(int) + 2, 0, 255)  # another is a training image, slightly brightened
    out = copy_distances(samples, train, held_out)
    assert out["samples"][7] == 0.0 and out["samples_index"][7] == 23
    assert out["samples_index"][11] == 4 and 0 < out["samples"][11] <= np.sqrt(64) * 2 / 255
    # the two copies are the two samples nearest the training set, nearer than any held-out image is
    assert set(np.argsort(out["samples"])[:2]) == {7, 11} and out["samples"][11] < out["held_out"].min()
    assert out["held_out"].shape == (20,) and out["held_out_index"].shape == (20,)
    with pytest.raises(ValueError, match="uint8"):
        copy_distances(samples.astype(np.float32), train, held_out)


# --------------------------------------------------------------------------- the second judge
def test_the_pixel_judge_shares_nothing_with_the_mlp_judges(monkeypatch):
    pixel_judge.cache_clear()

    class NoMLP:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the pixel judge must not use an MLP")

    monkeypatch.setattr(evaluate, "MLPClassifier", NoMLP)
    judge = pixel_judge()  # built without any MLP
    pca, svm = judge.clf
    assert type(svm).__name__ == "CalibratedClassifierCV" and svm.estimator.kernel == "rbf"
    # its features are the principal components of its real training digits, found here by an SVD
    x, y = load_digits("all", return_labels=True)
    held = {tuple(im.ravel()) for im in judge.held_out}
    train = np.array([im for im in x if tuple(im.ravel()) not in held]).reshape(-1, 64) / 255.0
    centred = train - train.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    mine = centred @ vt[: evaluate.NUM_COMPONENTS].T
    theirs = judge.features(train.reshape(-1, 8, 8, 1).__mul__(255).round().astype(np.uint8))
    np.testing.assert_allclose(np.abs(theirs), np.abs(mine), atol=1e-6)  # each component up to its sign
    # its own split: not any MLP judge's
    for mlp in digits_judges():
        assert not np.array_equal(np.sort(mlp.held_out_labels), np.sort(judge.held_out_labels)) or not np.array_equal(
            mlp.held_out, judge.held_out
        )
    accuracy = np.mean(judge.probabilities(judge.held_out).argmax(1) == judge.held_out_labels)
    assert accuracy > 0.97


def test_class_scores_read_each_digit_as_its_class_and_a_wrong_label_as_far():
    judges = digits_judges()[:2]
    x, y = load_digits("test", return_labels=True)
    right = evaluate.class_scores(x, y, judges)
    assert list(right["classes"]) == list(range(10)) and right["accuracy"].mean() > 0.9
    wrong = evaluate.class_scores(x, (y + 1) % 10, judges)  # every digit asked to be the next one
    assert wrong["accuracy"].mean() < 0.1
    assert (wrong["frechet"] > 2 * right["frechet"]).all()


def test_as_good_needs_both_judges_and_both_figures():
    ref = {"frechet": 1.0, "kid": 0.010, "pixel_frechet": 0.05, "pixel_kid": 0.002}
    assert as_good(dict(ref), ref)["as_good"]
    assert as_good({**ref, "frechet": 1.09}, ref)["as_good"]  # within 10%
    worse_pixel = {**ref, "pixel_kid": 0.0025}
    v = as_good(worse_pixel, ref)
    assert v["mlp"] and not v["pixel"] and not v["as_good"]  # one judge is not enough
    assert as_good(worse_pixel, ref, spread={"pixel_kid": 0.001})["as_good"]  # inside the spread counts
    assert not as_good({**ref, "kid": 0.02}, ref)["as_good"]
    assert as_good({**ref, "kid": -0.01}, ref)["as_good"]  # lower is never worse


def test_the_table_scores_every_row_with_both_judges():
    table = digits_quality_table(load_digits("test"))
    floor, noise = table["real (held out)"], table["noise"]
    for judge_kid in ("kid", "pixel_kid"):
        assert abs(floor[judge_kid]) < 3 * floor[judge_kid + "_se"]  # real digits: KID 0 within its error
        assert noise[judge_kid] > 30 * floor[judge_kid + "_se"]  # pixel judge: about 80x; MLP judges: about 10,000x
    assert noise["pixel_frechet"] > 20 * floor["pixel_frechet"] and floor["pixel_confidence"] > 0.9
    for judge in ("", "pixel_"):  # real digits lie on the real manifold and cover it; noise does neither
        assert floor[judge + "precision"] > 0.85 and floor[judge + "recall"] > 0.85
        assert noise[judge + "precision"] < 0.1 and noise[judge + "recall"] < 0.1
    text = evaluate.format_table(table)
    assert "pixel_kid x1e3" in text
    # every row splits into its name and one field per column, whatever the size of a figure (noise's KID is big)
    for line, name in zip(text.splitlines()[1:], table):
        assert line[18:].split() == line[18:].split(maxsplit=len(evaluate.TABLE_COLUMNS) - 1), line
        assert len(line[18:].split()) == len(evaluate.TABLE_COLUMNS) and line.startswith(name), line
