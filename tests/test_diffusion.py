"""The diffusion maths against independent derivations (NumPy float64, SciPy, Monte Carlo)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from nanoddpm_utils import diffusion as D
from nanoddpm_utils.schedule import make_schedule

T = 1000
SCHED = make_schedule("linear", T)
BETAS = np.linspace(1e-4, 0.02, T)  # float64, independent of schedule.py
ABAR = np.cumprod(1 - BETAS)


def test_q_sample_monte_carlo_moments():
    x0 = jnp.array([0.7, -0.3, 0.0, 1.0])
    t = 300
    noise = jax.random.normal(jax.random.key(0), (200_000, 4))
    xt = jax.vmap(lambda n: D.q_sample(SCHED, x0, t, n))(noise)
    np.testing.assert_allclose(xt.mean(0), np.sqrt(ABAR[t]) * np.asarray(x0), atol=6e-3)
    np.testing.assert_allclose(xt.var(0), 1 - ABAR[t], rtol=1e-2)


def test_q_mean_variance():
    x0 = jnp.ones(3)
    mean, var, logvar = D.q_mean_variance(SCHED, x0, 10)
    np.testing.assert_allclose(mean, np.sqrt(ABAR[10]), rtol=1e-5)
    np.testing.assert_allclose(var, 1 - ABAR[10], rtol=1e-4)
    np.testing.assert_allclose(logvar, np.log(1 - ABAR[10]), rtol=1e-4)


def conjugate_posterior(x0, xt, t):
    """q(x_{t-1} | x_t, x_0) from q(x_{t-1} | x_0) and q(x_t | x_{t-1}) by Gaussian conjugacy, float64."""
    abar_prev = ABAR[t - 1] if t > 0 else 1.0
    a, b = 1 - BETAS[t], BETAS[t]
    if t == 0:  # x_{-1} = x_0 exactly
        return x0, 0.0
    prec = 1 / (1 - abar_prev) + a / b
    var = 1 / prec
    mean = var * (np.sqrt(abar_prev) * x0 / (1 - abar_prev) + np.sqrt(a) * xt / b)
    return mean, var


@pytest.mark.parametrize("t", [0, 1, 2, 17, 250, 999])
def test_posterior_equals_gaussian_conjugacy(t):
    rng = np.random.default_rng(t)
    x0, xt = rng.uniform(-1, 1, 6), rng.normal(size=6)
    mean, var, _ = D.q_posterior_mean_variance(SCHED, jnp.asarray(x0, jnp.float32), jnp.asarray(xt, jnp.float32), t)
    ref_mean, ref_var = conjugate_posterior(x0, xt, t)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var, ref_var, rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize("t", [0, 5, 500, 999])
@pytest.mark.parametrize("clip", [True, False])
def test_p_mean_variance_with_true_noise_is_posterior(t, clip):
    key0, key1 = jax.random.split(jax.random.key(t))
    x0 = jax.random.uniform(key0, (4, 4, 3), minval=-1, maxval=1)
    eps = jax.random.normal(key1, x0.shape)
    xt = D.q_sample(SCHED, x0, t, eps)
    mean, var, logvar = D.p_mean_variance(SCHED, eps, xt, t, variance="fixedsmall", clip_x0=clip)
    ref, _ = conjugate_posterior(np.asarray(x0, np.float64), np.asarray(xt, np.float64), t)
    np.testing.assert_allclose(mean, ref, atol=2e-3 if t == 999 else 2e-4)
    np.testing.assert_allclose(var, SCHED.posterior_variance[t])
    np.testing.assert_allclose(logvar, SCHED.posterior_log_variance_clipped[t])


def test_predict_x0_from_eps_inverts_q_sample():
    x0 = jnp.linspace(-1, 1, 12)
    eps = jnp.cos(jnp.arange(12.0))
    for t in (0, 100, 900):
        np.testing.assert_allclose(
            D.predict_x0_from_eps(SCHED, D.q_sample(SCHED, x0, t, eps), t, eps), x0, atol=5e-4 if t == 900 else 1e-5
        )


def test_model_variance_choices():
    var, logvar = D.model_variance(SCHED, 0, "fixedlarge")  # beta-tilde_1 at t = 0
    np.testing.assert_allclose(var, BETAS[1] * (1 - ABAR[0]) / (1 - ABAR[1]), rtol=1e-5)
    var, logvar = D.model_variance(SCHED, 400, "fixedlarge")
    np.testing.assert_allclose(var, BETAS[400], rtol=1e-6)
    np.testing.assert_allclose(logvar, np.log(BETAS[400]), rtol=1e-5)
    var, _ = D.model_variance(SCHED, 400, "fixedsmall")
    np.testing.assert_allclose(var, BETAS[400] * (1 - ABAR[399]) / (1 - ABAR[400]), rtol=1e-5)
    with pytest.raises(ValueError, match="unknown variance 'learned'"):
        D.model_variance(SCHED, 1, "learned")


def test_loss_simple():
    a = jnp.arange(6.0).reshape(2, 3)
    assert float(D.loss_simple(a, a)) == 0.0
    np.testing.assert_allclose(D.loss_simple(a, a + 2.0), 4.0)


def test_normal_kl_against_numerical_integral():
    m1, s1, m2, s2 = 0.3, 0.7, -0.5, 1.3
    x = np.linspace(-12, 12, 400_001)
    p, q = stats.norm.pdf(x, m1, s1), stats.norm.pdf(x, m2, s2)
    ref = np.trapezoid(p * (np.log(p) - np.log(q)), x)
    kl = D.normal_kl(jnp.array(m1), jnp.log(jnp.array(s1**2)), jnp.array(m2), jnp.log(jnp.array(s2**2)))
    np.testing.assert_allclose(kl, ref, rtol=1e-4)
    assert float(D.normal_kl(jnp.array(1.0), jnp.array(0.2), jnp.array(1.0), jnp.array(0.2))) == pytest.approx(
        0, abs=1e-7
    )


def test_discretized_gaussian_log_likelihood_against_scipy():
    levels = np.arange(256)
    x = levels / 127.5 - 1.0
    mean, std = 0.1, 0.05
    logp = D.discretized_gaussian_log_likelihood(
        jnp.asarray(x, jnp.float32), jnp.float32(mean), jnp.log(jnp.float32(std))
    )
    lo = np.where(levels == 0, -np.inf, x - 1 / 255)
    hi = np.where(levels == 255, np.inf, x + 1 / 255)
    ref = stats.norm.cdf(hi, mean, std) - stats.norm.cdf(lo, mean, std)
    probs = np.exp(np.asarray(logp, np.float64))
    big = ref > 1e-6
    np.testing.assert_allclose(probs[big], ref[big], rtol=1e-3)
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-4)  # a proper distribution over the 256 levels
    # edge bins take the tails: a mean far below -1 puts almost all mass on level 0
    edge = D.discretized_gaussian_log_likelihood(jnp.array([-1.0, 1.0]), jnp.float32(-3.0), jnp.log(jnp.float32(0.1)))
    assert float(edge[0]) > -1e-6 and float(edge[1]) < -20
