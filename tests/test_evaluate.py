"""The digits judge: the Frechet distance against closed forms, and the like-for-like floor of the quality table."""

import numpy as np
import pytest

from nanoddpm_utils.data import load_digits
from nanoddpm_utils.evaluate import digits_judges, digits_quality_table, frechet_distance


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
