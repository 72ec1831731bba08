"""EDM (Karras, Aittala, Aila & Laine 2022, "Elucidating the Design Space of Diffusion-Based Generative Models"):
the noise level sigma as time, a denoiser D(x; sigma), its preconditioning, the rho-spaced steps and Heun's sampler.

EDM writes every diffusion as x = x_0 + sigma n, n ~ N(0, I), and the probability-flow ODE as
dx/dsigma = (x - D(x; sigma)) / sigma, with D the denoiser (its best estimate of x_0). A network F is wrapped as

    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))                  (eq. 7)

DDPM is one such wrapping. Its x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps is x = x_0 + sigma_t n scaled by
sqrt(abar_t), with sigma_t = sqrt((1 - abar_t) / abar_t); so c_in = 1 / sqrt(1 + sigma^2) (back to DDPM's
scale), F = eps_theta, c_skip = 1, c_out = -sigma, and c_noise = t, the step whose sigma_t it is (Table 1's VP
column, discrete). Here a DDPM model is sampled with EDM's sampler at its own T noise levels: each step's sigma
is rounded to the nearest sigma_t, as the paper does for its discrete-time models.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .diffusion import initial_noise
from .parallel import shard_batch
from .schedule import Schedule

RHO = 7.0  # the step schedule's exponent (eq. 5)
SIGMA_DATA = 0.5  # the data's standard deviation assumed by EDM's own preconditioning (images in [-1, 1])


def edm_preconditioning(sigma, sigma_data: float = SIGMA_DATA):
    """EDM's own (c_skip, c_out, c_in, c_noise) (Table 1): F's input and its training target have unit variance.

    c_in = 1 / sqrt(sigma^2 + sigma_data^2), c_skip = sigma_data^2 / (sigma^2 + sigma_data^2),
    c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2), c_noise = log(sigma) / 4.
    """
    total = sigma**2 + sigma_data**2
    return sigma_data**2 / total, sigma * sigma_data / jnp.sqrt(total), 1.0 / jnp.sqrt(total), jnp.log(sigma) / 4.0


def edm_sigmas(num_steps: int, sigma_min, sigma_max, rho: float = RHO):
    """The step schedule (eq. 5): ``num_steps`` noise levels from sigma_max down to sigma_min, evenly spaced in
    sigma^(1/rho), then 0. rho = 1 is even in sigma; larger rho packs the steps near sigma_min."""
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"the number of steps must be an integer >= 1, got {num_steps!r}")
    if isinstance(sigma_min, float) and isinstance(sigma_max, float) and not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
    i = jnp.arange(num_steps) / max(num_steps - 1, 1)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return jnp.append((hi + i * (lo - hi)) ** rho, 0.0)


def ddpm_sigmas(schedule: Schedule):
    """sigma_t = sqrt((1 - abar_t) / abar_t) for t = 0 .. T-1: the noise level of each of DDPM's steps, rising
    (the schedule's sqrt(1 / abar_t - 1), computed in float64 before it was stored)."""
    return schedule.sqrt_recipm1_alphas_cumprod


def nearest_steps(schedule: Schedule, sigmas):
    """The step t whose sigma_t is nearest each of ``sigmas`` (in log sigma)."""
    table = jnp.log(ddpm_sigmas(schedule))
    return jnp.abs(table[None, :] - jnp.log(jnp.asarray(sigmas))[:, None]).argmin(1).astype(jnp.int32)


def ddpm_denoiser(model, schedule: Schedule, x, t):
    """D(x; sigma_t) for ONE example from an eps-model: x - sigma_t eps_theta(x / sqrt(1 + sigma_t^2), t)."""
    sigma = schedule.sqrt_recipm1_alphas_cumprod[t]
    return x - sigma * model(x / jnp.sqrt(1.0 + sigma**2), t)


def edm_plan(schedule: Schedule, num_steps: int, rho: float = RHO, churn: float = 0.0, s_tmin=0.0, s_tmax=math.inf):
    """The steps of ``edm_sample_loop`` on a DDPM model: a dict of (t, sigma) at each step's start, the raised
    level (t_hat, sigma_hat) that churn adds noise to, and the level (t_next, sigma_next) it ends at (t_next = -1:
    sigma 0, the data). Every sigma is one of the model's sigma_t.

    Churn (Algorithm 2): a step whose sigma lies in [s_tmin, s_tmax] first raises it by gamma =
    min(churn / num_steps, sqrt(2) - 1), adding fresh noise of variance sigma_hat^2 - sigma^2; churn = 0 is the
    deterministic Algorithm 1.
    """
    if churn < 0:
        raise ValueError(f"churn must be >= 0 (0: deterministic), got {churn}")
    table = ddpm_sigmas(schedule)
    t = nearest_steps(schedule, edm_sigmas(num_steps, table[0], table[-1], rho)[:-1])
    sigma = table[t]
    gamma = jnp.where((sigma >= s_tmin) & (sigma <= s_tmax), min(churn / num_steps, math.sqrt(2.0) - 1.0), 0.0)
    t_hat = nearest_steps(schedule, sigma * (1.0 + gamma))
    return {
        "t": t,
        "sigma": sigma,
        "t_hat": t_hat,
        "sigma_hat": table[t_hat],
        "t_next": jnp.append(t[1:], -1).astype(jnp.int32),
        "sigma_next": jnp.append(sigma[1:], 0.0),
    }


@eqx.filter_jit
def edm_sample_loop(
    model,
    schedule: Schedule,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    num_steps: int,
    rho: float = RHO,
    churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    clip_x0: bool = True,
    x_T=None,
    mesh=None,
):
    """EDM's Heun sampler (Algorithms 1 and 2) for a DDPM eps-model: 2 ``num_steps`` - 1 network calls.

    x starts at x_T sqrt(1 + sigma_max^2), DDPM's x_T ~ N(0, I) in EDM's coordinates (x_T from ``key`` as in
    ``sample.p_sample_loop`` unless given). Each step: optional churn (see ``edm_plan``; its noise scaled by
    ``s_noise``), then d = (x - D(x; sigma)) / sigma, an Euler step to sigma_next, and, unless sigma_next = 0,
    Heun's correction with the slope there: x_next = x + (sigma_next - sigma) (d + d') / 2. With ``clip_x0`` every
    D is clipped to [-1, 1].
    """
    plan = edm_plan(schedule, num_steps, rho, churn, s_tmin, s_tmax)
    k_init, k_loop = jax.random.split(key)
    x = shard_batch(initial_noise(k_init, shape, x_T), mesh) * jnp.sqrt(1.0 + plan["sigma"][0] ** 2)

    def slope(x, t, sigma):
        d = jax.vmap(lambda xi: ddpm_denoiser(model, schedule, xi, t))(x)
        return (x - (jnp.clip(d, -1.0, 1.0) if clip_x0 else d)) / sigma

    def step(x, p, i, heun: bool):
        noise = jax.random.normal(jax.random.fold_in(k_loop, i), x.shape, x.dtype)
        x_hat = x + s_noise * jnp.sqrt(jnp.maximum(p["sigma_hat"] ** 2 - p["sigma"] ** 2, 0.0)) * noise
        d = slope(x_hat, p["t_hat"], p["sigma_hat"])
        x_next = x_hat + (p["sigma_next"] - p["sigma_hat"]) * d
        if not heun:
            return x_next
        d_next = slope(x_next, p["t_next"], p["sigma_next"])
        return x_hat + (p["sigma_next"] - p["sigma_hat"]) * 0.5 * (d + d_next)

    def body(x, p_i):
        p, i = p_i
        return step(x, p, i, heun=True), None

    first = {k: v[:-1] for k, v in plan.items()}
    x, _ = jax.lax.scan(body, x, (first, jnp.arange(num_steps - 1)))
    return step(x, {k: v[-1] for k, v in plan.items()}, num_steps - 1, heun=False)
