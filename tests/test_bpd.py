"""bits/dim (the variational bound) against closed forms (NumPy float64, SciPy) and Monte Carlo."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import oracle
import pytest
from scipy import stats

from nanoddpm_utils.bpd import bits_per_dim, vb_terms_bpd
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.diffusion import q_sample
from nanoddpm_utils.schedule import make_schedule
from nanoddpm_utils.unet import make_model

LOG2 = np.log(2.0)


def make_oracle(schedule, image_uint8):
    return oracle.make_oracle(schedule, (jnp.asarray(image_uint8, jnp.float32) - 127.5) / 127.5)


def betas64(T, beta_start=1e-4, beta_end=0.02):
    """The schedule again in float64, independently of schedule.py."""
    b = np.linspace(beta_start, beta_end, T)
    abar = np.cumprod(1 - b)
    abar_prev = np.append(1.0, abar[:-1])
    return b, abar, b * (1 - abar_prev) / (1 - abar)  # betas, alphas_cumprod, beta-tilde


def decoder_bits(x0, sigma):
    """-log2 p(x0 | mean = x0, sigma) of the discretized Gaussian (the paper's eq. 13), mean over pixels."""
    d = 1.0 / 255.0
    p = np.where(np.abs(x0) > 0.999, stats.norm.cdf(d / sigma), stats.norm.cdf(d / sigma) - stats.norm.cdf(-d / sigma))
    return float(np.mean(-np.log2(p)))


@pytest.fixture(scope="module")
def image():
    """One digit (uint8, 8x8x1): it has pixels at both edges (0, 255) and in between."""
    return load_digits("test")[3]


@pytest.mark.parametrize("variance", ["fixedlarge", "fixedsmall"])
def test_oracle_terms_have_closed_forms(image, variance):
    T = 100
    schedule = make_schedule("linear", T)
    out = bits_per_dim(
        make_oracle(schedule, image),
        schedule,
        np.stack([image] * 3),
        key=jax.random.key(0),
        batch_size=2,
        variance=variance,
        progress=False,
    )
    b, abar, bt = betas64(T)
    x0 = (image.astype(np.float64) - 127.5) / 127.5
    # L_t, t >= 1: equal means, so KL(N(m, bt) || N(m, s2)) = 0.5 (log(s2 / bt) + bt / s2 - 1) per dimension
    s2 = b if variance == "fixedlarge" else bt
    kl = 0.5 * (np.log(s2[1:] / bt[1:]) + bt[1:] / s2[1:] - 1) / LOG2
    assert out["terms"].shape == (T,)
    np.testing.assert_allclose(out["terms"][1:], kl, rtol=1e-3, atol=1e-6)
    if variance == "fixedsmall":
        np.testing.assert_allclose(out["terms"][1:], 0.0, atol=1e-6)
    # L_T: KL(N(sqrt(abar) x0, 1 - abar) || N(0, 1)) per dimension
    a = abar[-1]
    prior = np.mean(0.5 * (-1 - np.log(1 - a) + (1 - a) + a * x0**2)) / LOG2
    np.testing.assert_allclose(out["prior"], prior, rtol=1e-4)
    # L_0: the decoder centred on the true x0 (both variances are beta-tilde_1 at t = 0)
    np.testing.assert_allclose(out["decoder"], decoder_bits(x0, np.sqrt(bt[1])), rtol=1e-3)
    np.testing.assert_allclose(out["decoder"], out["terms"][0])
    np.testing.assert_allclose(out["kl"], kl.sum(), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(out["total"], out["prior"] + out["kl"] + out["decoder"], rtol=1e-6)
    assert out["num_examples"] == 3


def test_oracle_decoder_is_sharp(image):
    # with a tiny beta_0 the decoder's sigma (~1e-3) is far below the bin half-width 1/255: p(x0 | x1) ~ 1
    schedule = make_schedule("linear", 20, beta_start=1e-6)
    out = bits_per_dim(make_oracle(schedule, image), schedule, image[None], key=jax.random.key(1), progress=False)
    assert 0.0 <= out["decoder"] < 1e-3


def perturbed_unet(seed=0, scale=0.05):
    """The smoke UNet with every weight jittered: at init its output layer is zero (it would predict eps = 0)."""
    model = make_model("smoke", key=jax.random.key(seed))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    leaves = [p + scale * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)]
    return eqx.nn.inference_mode(eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static))


def test_random_unet_terms_are_nonnegative_and_deterministic():
    schedule = make_schedule("linear", 20)
    data = load_digits("test")[:5]
    model = perturbed_unet()
    out = bits_per_dim(model, schedule, data, key=jax.random.key(2), batch_size=2, progress=False)
    assert np.all(np.isfinite(out["terms"])) and np.all(out["terms"] >= 0)
    assert out["prior"] >= 0 and out["decoder"] >= 0 and out["kl"] >= 0
    assert out["decoder"] > 0.1  # an untrained model is far from sharp
    again = bits_per_dim(model, schedule, data, key=jax.random.key(2), batch_size=2, progress=False)
    np.testing.assert_array_equal(out["terms"], again["terms"])


def test_compiles_once_per_batch_shape(image):
    schedule = make_schedule("linear", 20)
    oracle = make_oracle(schedule, image)
    data = np.stack([image] * 5)
    bits_per_dim(oracle, schedule, data, key=jax.random.key(0), batch_size=2, progress=False)  # 2 + 2 + 1 (padded)
    traced = len(oracle.calls)
    assert 1 <= traced < 20  # the scan body is traced once, not once per t or per batch
    bits_per_dim(oracle, schedule, data, key=jax.random.key(1), batch_size=2, progress=False)
    assert len(oracle.calls) == traced


@pytest.mark.parametrize("variance", ["fixedlarge", "fixedsmall"])
def test_one_kl_term_by_monte_carlo(variance):
    """L_t = E_{x_{t-1} ~ q(x_{t-1}|x_t,x_0)} [log q(x_{t-1}|x_t,x_0) - log p(x_{t-1}|x_t)], estimated in float64."""
    T, t = 20, 7
    schedule = make_schedule("linear", T)
    model = perturbed_unet()
    x0 = (load_digits("test")[0].astype(np.float32) - 127.5) / 127.5
    x_t = q_sample(schedule, jnp.asarray(x0), t, jax.random.normal(jax.random.key(3), x0.shape))
    value = float(
        eqx.filter_jit(vb_terms_bpd)(model, schedule, jnp.asarray(x0), x_t, jnp.asarray(t), variance=variance)
    )

    b, abar, bt = betas64(T)
    xt, x0 = np.asarray(x_t, np.float64), x0.astype(np.float64)
    eps = np.asarray(eqx.filter_jit(model)(x_t, jnp.asarray(t)), np.float64)
    x0_hat = np.clip((xt - np.sqrt(1 - abar[t]) * eps) / np.sqrt(abar[t]), -1, 1)  # clip_x0=True, as the official

    def post_mean(x_start):  # eq. 7
        return (np.sqrt(abar[t - 1]) * b[t] * x_start + np.sqrt(1 - b[t]) * (1 - abar[t - 1]) * xt) / (1 - abar[t])

    q_mean, q_var = post_mean(x0), bt[t]
    p_mean, p_var = post_mean(x0_hat), (b[t] if variance == "fixedlarge" else bt[t])
    rng = np.random.default_rng(0)
    x_prev = q_mean[None] + np.sqrt(q_var) * rng.standard_normal((20000,) + x0.shape)
    log_ratio = stats.norm.logpdf(x_prev, q_mean[None], np.sqrt(q_var)) - stats.norm.logpdf(
        x_prev, p_mean[None], np.sqrt(p_var)
    )
    per_sample = log_ratio.reshape(len(x_prev), -1).mean(1) / LOG2  # bits/dim of each draw
    mc, se = per_sample.mean(), per_sample.std() / np.sqrt(len(per_sample))
    assert value > 0.01
    assert abs(value - mc) < 5 * se + 1e-4 * value, (value, mc, se)


def test_rejects_bad_input():
    schedule = make_schedule("linear", 10)
    model = perturbed_unet()
    with pytest.raises(ValueError, match="uint8"):
        bits_per_dim(model, schedule, np.zeros((2, 8, 8, 1), np.float32), key=jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        bits_per_dim(
            model, schedule, np.zeros((2, 8, 8, 1), np.uint8), key=jax.random.key(0), batch_size=0, progress=False
        )
