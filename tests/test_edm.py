"""EDM (Karras et al. 2022): the step schedule against eq. 5 written out, the preconditioning against the unit
variances it is derived from, the DDPM model as a denoiser, and Heun's sampler against a Python loop of the
paper's Algorithms 1 and 2 and against the exact answer on Gaussian data.

On data x_0 ~ N(MU, S^2) the probability-flow ODE in EDM's coordinates, x = x_0 + sigma n, has the solution
x(sigma) = MU + sqrt(S^2 + sigma^2) z: one z per trajectory, so the sampler must end at MU + S z.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils.edm import (
    ddpm_denoiser,
    ddpm_sigmas,
    edm_plan,
    edm_preconditioning,
    edm_sample_loop,
    edm_sigmas,
    nearest_steps,
)
from nanoddpm_utils.schedule import make_schedule

MU, S = 0.3, 0.5


class GaussianEps(eqx.Module):
    """The exact eps predictor for x_0 ~ N(MU, S^2) on DDPM's scale: sigma_t (x_t - alpha mu) / Var(x_t)."""

    abar: jax.Array

    def __call__(self, x, t):
        a, sig2 = jnp.sqrt(self.abar[t]), 1.0 - self.abar[t]
        return jnp.sqrt(sig2) * (x - a * MU) / (a**2 * S**2 + sig2)


class Wobbly(GaussianEps):
    """An imperfect model: the exact one plus a term nonlinear in x and t, to exercise every coefficient (a model
    far from any data would leave x ~ 100 at sigma ~ 0.01, where float32's x - D(x) loses its digits)."""

    def __call__(self, x, t):
        return super().__call__(x, t) + 0.1 * jnp.tanh(x) * (1.0 + 0.001 * t)


def wobbly_np(x, t, abar):
    a, sig2 = math.sqrt(abar[t]), 1.0 - abar[t]
    return math.sqrt(sig2) * (x - a * MU) / (a**2 * S**2 + sig2) + 0.1 * np.tanh(x) * (1.0 + 0.001 * t)


def test_the_step_schedule_is_eq_5():
    s = np.asarray(edm_sigmas(18, 0.002, 80.0, 7.0), np.float64)
    assert (
        s.shape == (19,)
        and s[-1] == 0.0
        and math.isclose(s[0], 80.0, rel_tol=1e-6)
        and math.isclose(s[17], 0.002, rel_tol=1e-5)
    )
    i = np.arange(18)
    np.testing.assert_allclose(s[:-1], (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7, rtol=1e-5)
    np.testing.assert_allclose(
        np.diff(np.asarray(edm_sigmas(5, 1.0, 5.0, rho=1.0))[:-1]), -1.0, rtol=1e-5
    )  # rho = 1: even in sigma
    gaps = -np.diff(s[:-1])
    assert np.all(gaps[1:] < gaps[:-1])  # rho = 7: the steps shrink towards sigma_min
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        edm_sigmas(10, 5.0, 1.0)


@pytest.mark.parametrize("sigma", [0.002, 0.1, 0.5, 2.0, 80.0])
def test_the_preconditioning_gives_unit_variances_and_the_best_skip(sigma):
    """x = x_0 + sigma n with Var(x_0) = sigma_data^2: the network's input c_in x has unit variance, and so has
    its target (x_0 - c_skip x) / c_out; c_skip is the one that makes that target's variance least (eq. 131-138)."""
    sd = 0.5
    c_skip, c_out, c_in, c_noise = (float(c) for c in edm_preconditioning(jnp.float32(sigma), sd))
    assert math.isclose(c_in**2 * (sd**2 + sigma**2), 1.0, rel_tol=1e-5)

    def target_var(skip):  # Var((x_0 - skip (x_0 + sigma n)) / c_out), x_0 and n independent
        return ((1 - skip) ** 2 * sd**2 + skip**2 * sigma**2) / c_out**2

    assert math.isclose(target_var(c_skip), 1.0, rel_tol=1e-5)
    assert target_var(c_skip) < min(target_var(c_skip * 1.01), target_var(c_skip * 0.99))
    assert math.isclose(c_noise, math.log(sigma) / 4, rel_tol=1e-5, abs_tol=1e-6)
    rng = np.random.default_rng(0)  # and by sampling, not only by algebra
    x0, n = sd * rng.normal(size=200_000), rng.normal(size=200_000)
    x = x0 + sigma * n
    assert abs(np.var(c_in * x) - 1) < 0.02 and abs(np.var((x0 - c_skip * x) / c_out) - 1) < 0.02


def test_ddpm_sigmas_and_the_nearest_step():
    schedule = make_schedule("linear", 1000)
    abar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    table = np.asarray(ddpm_sigmas(schedule))
    np.testing.assert_allclose(table, np.sqrt((1 - abar) / abar), rtol=1e-5)
    assert np.all(np.diff(table) > 0) and 0.009 < table[0] < 0.011 and 150 < table[-1] < 160
    np.testing.assert_array_equal(nearest_steps(schedule, table[[0, 17, 999]]), [0, 17, 999])
    np.testing.assert_array_equal(nearest_steps(schedule, [1e-6, 1e6]), [0, 999])


def test_a_ddpm_model_is_a_denoiser():
    """With the exact eps of data that is one point x*, D(x; sigma_t) = x* for every x and t."""
    schedule = make_schedule("linear", 1000)
    star = jnp.asarray([[0.25, -0.5]])

    def eps_of_one_point(x_vp, t):  # x_t = sqrt(abar) x* + sqrt(1 - abar) eps, solved for eps
        return (x_vp - schedule.sqrt_alphas_cumprod[t] * star) / schedule.sqrt_one_minus_alphas_cumprod[t]

    table = np.asarray(ddpm_sigmas(schedule))
    for t in (0, 100, 500):
        x = star + table[t] * jnp.asarray([[1.3, -0.7]])  # EDM's x = x_0 + sigma n
        np.testing.assert_allclose(ddpm_denoiser(eps_of_one_point, schedule, x, t), star, atol=2e-4)


def edm_reference(eps_fn, abar, plan, x, noises, s_noise=1.0):
    """Algorithm 2 of the paper as a Python loop in float64, on the plan's (rounded) levels; D from eps."""
    sig = np.sqrt((1 - abar) / abar)

    def D(x, t):
        return x - sig[t] * eps_fn(x / math.sqrt(1 + sig[t] ** 2), t)

    x = x * math.sqrt(1 + plan["sigma"][0] ** 2)
    for i in range(len(plan["t"])):
        s, s_hat, s_next = plan["sigma"][i], plan["sigma_hat"][i], plan["sigma_next"][i]
        x_hat = x + s_noise * math.sqrt(max(s_hat**2 - s**2, 0.0)) * noises[i]
        d = (x_hat - D(x_hat, plan["t_hat"][i])) / s_hat
        x = x_hat + (s_next - s_hat) * d
        if s_next > 0:
            d2 = (x - D(x, plan["t_next"][i])) / s_next
            x = x_hat + (s_next - s_hat) * (d + d2) / 2
    return x


@pytest.mark.parametrize("steps, churn", [(1, 0.0), (2, 0.0), (18, 0.0), (10, 5.0)])
def test_the_sampler_matches_a_python_loop_of_the_paper(steps, churn):
    T = 1000
    schedule = make_schedule("linear", T)
    x_T = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 3, 1)), jnp.float32)
    key = jax.random.key(4)
    x = edm_sample_loop(
        Wobbly(schedule.alphas_cumprod), schedule, key, x_T.shape, num_steps=steps, churn=churn, clip_x0=False, x_T=x_T
    )
    k_loop = jax.random.split(key)[1]
    noises = [np.asarray(jax.random.normal(jax.random.fold_in(k_loop, i), x_T.shape), np.float64) for i in range(steps)]
    abar = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
    plan = {
        k: np.asarray(v, np.float64 if k.startswith("sigma") else np.int64)
        for k, v in edm_plan(schedule, steps, churn=churn).items()
    }
    if churn:
        assert np.any(plan["t_hat"] > plan["t"])  # the churn does raise some levels
    ref = edm_reference(lambda x, t: wobbly_np(x, t, abar), abar, plan, np.asarray(x_T, np.float64), noises)
    np.testing.assert_allclose(x, ref, rtol=1e-3, atol=1e-3)


def test_heun_is_second_order_and_lands_on_the_exact_answer():
    """On Gaussian data the ODE's end is MU + S z; Heun's error falls about 4x when the steps double (Euler's 2x)."""
    T = 1000
    schedule = make_schedule("linear", T)
    model = GaussianEps(schedule.alphas_cumprod)
    z = jnp.asarray(np.random.default_rng(2).normal(size=(64, 2, 2, 1)), jnp.float32)

    def error(n):
        x = edm_sample_loop(model, schedule, jax.random.key(0), z.shape, num_steps=n, clip_x0=False, x_T=z)
        s_max = float(ddpm_sigmas(schedule)[-1])  # x starts at z sqrt(1 + s_max^2) = MU + sqrt(S^2 + s_max^2) z'
        exact = MU + S * (np.asarray(z) * math.sqrt(1 + s_max**2) - MU) / math.sqrt(S**2 + s_max**2)
        return float(np.abs(np.asarray(x) - exact).max())

    e = [error(n) for n in (12, 24, 48)]  # (sigma_max = 157 here, not EDM's 80: the first few steps are long)
    assert e[2] < 0.02
    assert e[0] / e[1] > 3.0 and e[1] / e[2] > 3.0, e


def test_churn_keeps_the_distribution():
    """Algorithm 2's added noise is the forward process's: with the exact model the samples stay N(MU, S^2)."""
    schedule = make_schedule("linear", 1000)
    model = GaussianEps(schedule.alphas_cumprod)
    shape = (4000, 2, 2, 1)
    x = np.asarray(edm_sample_loop(model, schedule, jax.random.key(1), shape, num_steps=96, churn=20.0, clip_x0=False))
    assert abs(x.mean() - MU) < 0.01 and abs(x.std() - S) < 0.01
    det = np.asarray(edm_sample_loop(model, schedule, jax.random.key(1), shape, num_steps=96, clip_x0=False))
    assert np.abs(x - det).mean() > 0.05  # and the churn did change the samples


def test_churn_must_not_be_negative():
    with pytest.raises(ValueError, match="churn must be >= 0"):
        edm_plan(make_schedule("linear", 100), 10, churn=-1.0)
