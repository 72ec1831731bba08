"""The Gaussian diffusion maths (Ho et al. 2020), as pure functions on ONE example.

Batch them with ``jax.vmap``. ``t`` is an integer scalar, 0-indexed (see schedule.py).
Names follow the official code: q is the forward process, p the learned reverse one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .config import VARIANCES
from .schedule import Schedule


# --------------------------------------------------------------------------- forward process q
def q_mean_variance(schedule: Schedule, x0: Float[Array, ...], t: Int[Array, ""]):
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I): returns (mean, variance, log_variance)."""
    mean = schedule.sqrt_alphas_cumprod[t] * x0
    return mean, 1.0 - schedule.alphas_cumprod[t], schedule.log_one_minus_alphas_cumprod[t]


def q_sample(schedule: Schedule, x0: Float[Array, ...], t: Int[Array, ""], noise: Float[Array, ...]):
    """Draw x_t ~ q(x_t | x_0) in one step (the paper's eq. 4): sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
    return schedule.sqrt_alphas_cumprod[t] * x0 + schedule.sqrt_one_minus_alphas_cumprod[t] * noise


def q_posterior_mean_variance(schedule: Schedule, x0, x_t, t):
    """q(x_{t-1} | x_t, x_0) (the paper's eqs. 6-7): returns (mean, variance, log_variance_clipped)."""
    mean = schedule.posterior_mean_coef1[t] * x0 + schedule.posterior_mean_coef2[t] * x_t
    return mean, schedule.posterior_variance[t], schedule.posterior_log_variance_clipped[t]


# --------------------------------------------------------------------------- reverse process p
def predict_x0_from_eps(schedule: Schedule, x_t, t, eps):
    """Invert q_sample: x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    return schedule.sqrt_recip_alphas_cumprod[t] * x_t - schedule.sqrt_recipm1_alphas_cumprod[t] * eps


def model_variance(schedule: Schedule, t, variance: str = "fixedlarge"):
    """The reverse process's fixed sigma_t^2 and its log (paper section 3.2).

    "fixedlarge": sigma^2 = beta_t, except at t = 0 where it is beta-tilde_1 (the
    posterior variance of the second step), as in the official code, so that the
    decoder's log-likelihood stays well defined.
    "fixedsmall": sigma^2 = beta-tilde_t, the posterior variance.
    """
    if variance == "fixedlarge":
        var = jnp.concatenate([schedule.posterior_variance[1:2], schedule.betas[1:]])
        return var[t], jnp.log(var)[t]
    if variance == "fixedsmall":
        return schedule.posterior_variance[t], schedule.posterior_log_variance_clipped[t]
    raise ValueError(f"unknown variance {variance!r}; choose one of {VARIANCES}")


def p_mean_variance(schedule: Schedule, eps, x_t, t, variance: str = "fixedlarge", clip_x0: bool = True):
    """p(x_{t-1} | x_t) given the model's noise prediction ``eps``: returns (mean, variance, log_variance).

    The mean is the posterior mean with x_0 replaced by its prediction from eps
    (equivalent to the paper's eq. 11 when ``clip_x0`` is False). Clipping x_0 to
    [-1, 1], as the official sampler does, keeps samples inside the data range.
    """
    var, log_var = model_variance(schedule, t, variance)
    x0 = predict_x0_from_eps(schedule, x_t, t, eps)
    if clip_x0:
        x0 = jnp.clip(x0, -1.0, 1.0)
    mean, _, _ = q_posterior_mean_variance(schedule, x0, x_t, t)
    return mean, var, log_var


# --------------------------------------------------------------------------- training objective
def loss_simple(eps_pred, noise):
    """L_simple (the paper's eq. 14): the mean squared error between true and predicted noise."""
    return jnp.mean((noise - eps_pred) ** 2)


# --------------------------------------------------------------------------- the variational bound's pieces
def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + jnp.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * jnp.exp(-logvar2))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """log p(x) of 8-bit data in [-1, 1] under N(means, exp(log_scales)^2) integrated over each pixel's bin.

    Bins have width 2/255; the two edge bins extend to -inf and +inf (the paper's
    eq. 13). Uses the exact normal CDF (the official code uses a tanh approximation).
    Elementwise, in nats.
    """
    centered = x - means
    inv_std = jnp.exp(-log_scales)
    upper = inv_std * (centered + 1.0 / 255.0)
    lower = inv_std * (centered - 1.0 / 255.0)
    log_cdf_upper = jax.scipy.stats.norm.logcdf(upper)
    log_sf_lower = jax.scipy.stats.norm.logcdf(-lower)  # log(1 - cdf(lower))
    # log(cdf(upper) - cdf(lower)), computed on the side of 0 where it does not cancel
    mid = jnp.where(
        lower > 0,
        log_sf_lower + jnp.log1p(-jnp.exp(jax.scipy.stats.norm.logcdf(-upper) - log_sf_lower)),
        log_cdf_upper + jnp.log1p(-jnp.exp(jax.scipy.stats.norm.logcdf(lower) - log_cdf_upper)),
    )
    mid = jnp.maximum(mid, np.log(1e-12))
    return jnp.where(x < -0.999, log_cdf_upper, jnp.where(x > 0.999, log_sf_lower, mid))


def initial_noise(key: PRNGKeyArray, shape: tuple[int, ...], x_T=None):
    """x_T ~ N(0, I), the prior p(x_T), drawn from ``key`` (as ``sample.p_sample_loop`` draws it), or ``x_T``."""
    if x_T is None:
        return jax.random.normal(key, shape)
    if tuple(x_T.shape) != tuple(shape):
        raise ValueError(f"x_T has shape {x_T.shape}, expected {tuple(shape)}")
    return x_T
