"""Schedule values against their closed forms, written out independently here."""

import math

import numpy as np
import pytest

from nanoddpm_utils.schedule import make_schedule

T = 1000


def linear_beta(i):  # the paper: linear from 1e-4 to 0.02, i = 0 .. T-1
    return 1e-4 + (0.02 - 1e-4) * i / (T - 1)


def abar_linear(i):
    return math.prod(1 - linear_beta(j) for j in range(i + 1))


def abar_cosine(i, s=0.008):
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    return f((i + 1) / T) / f(0)


@pytest.mark.parametrize("t", [0, 1, T - 1])
def test_linear_against_closed_form(t):
    s = make_schedule("linear", T)
    np.testing.assert_allclose(s.betas[t], linear_beta(t), rtol=1e-6)
    np.testing.assert_allclose(s.alphas_cumprod[t], abar_linear(t), rtol=1e-5, atol=1e-9)
    prev = 1.0 if t == 0 else abar_linear(t - 1)
    np.testing.assert_allclose(s.alphas_cumprod_prev[t], prev, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(s.sqrt_alphas_cumprod[t], math.sqrt(abar_linear(t)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(s.sqrt_one_minus_alphas_cumprod[t], math.sqrt(1 - abar_linear(t)), rtol=1e-5)
    # beta-tilde_t = (1 - abar_{t-1}) / (1 - abar_t) * beta_t  (paper eq. 7)
    bt = (1 - prev) / (1 - abar_linear(t)) * linear_beta(t)
    np.testing.assert_allclose(s.posterior_variance[t], bt, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(
        s.posterior_mean_coef1[t], math.sqrt(prev) * linear_beta(t) / (1 - abar_linear(t)), rtol=1e-5
    )
    np.testing.assert_allclose(
        s.posterior_mean_coef2[t],
        math.sqrt(1 - linear_beta(t)) * (1 - prev) / (1 - abar_linear(t)),
        rtol=1e-5,
        atol=1e-12,
    )


def test_posterior_log_variance_clipped_at_t0_uses_t1():
    s = make_schedule("linear", T)
    assert float(s.posterior_variance[0]) == 0.0
    np.testing.assert_allclose(s.posterior_log_variance_clipped[0], math.log(float(s.posterior_variance[1])), rtol=1e-6)
    np.testing.assert_allclose(s.posterior_log_variance_clipped[5], math.log(float(s.posterior_variance[5])), rtol=1e-5)


@pytest.mark.parametrize("t", [0, 1, T - 1])
def test_cosine_against_closed_form(t):
    s = make_schedule("cosine", T)
    expected = abar_cosine(t)
    if t == T - 1:  # the last beta is clipped at 0.999
        expected = abar_cosine(T - 2) * (1 - 0.999)
    np.testing.assert_allclose(s.alphas_cumprod[t], expected, rtol=1e-4, atol=1e-10)


def test_cosine_endpoints():
    s = make_schedule("cosine", T)
    assert float(s.betas[-1]) == pytest.approx(0.999, rel=1e-6)
    assert float(s.alphas_cumprod[0]) > 0.9999  # almost no noise after one step
    assert float(s.alphas_cumprod[-1]) < 1e-6  # pure noise at the end
    assert float(s.betas.max()) <= 0.999 + 1e-7


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_monotone_and_float32(name):
    s = make_schedule(name, T)
    abar = np.asarray(s.alphas_cumprod)
    assert abar.dtype == np.float32 and abar.shape == (T,)
    assert np.all(np.diff(abar) < 0)
    assert np.all((abar > 0) & (abar < 1))
    assert s.num_timesteps == T


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="unknown schedule 'quadratic'"):
        make_schedule("quadratic")
    with pytest.raises(ValueError, match="num_timesteps must be an integer >= 1"):
        make_schedule("linear", 0)
