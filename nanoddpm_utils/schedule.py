"""Noise schedules: the betas and every quantity derived from them.

Convention (as in the official code): ``t`` is 0-indexed, so ``t == 0`` means
"diffused for one step" and the chain runs ``t = 0 .. T-1``. Index ``t`` of every
array below is the paper's step ``t + 1``.

Everything is computed in float64 with NumPy (cumulative products of 1000
numbers close to 1 lose digits in float32) and stored as float32 JAX arrays.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

SCHEDULES = ("linear", "cosine")


def linear_betas(num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """The paper's schedule: betas rise linearly from 1e-4 to 0.02 over T = 1000 steps."""
    return np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)


def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal (2021): alpha_bar(u) = cos^2((u + s) / (1 + s) * pi / 2), u = t / T.

    beta_t = 1 - alpha_bar(t + 1) / alpha_bar(t), clipped at ``max_beta`` so the
    last step (where alpha_bar reaches 0) stays finite.
    """
    def alpha_bar(u):
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    T = num_timesteps
    betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)]
    return np.asarray(betas, dtype=np.float64)


class Schedule(eqx.Module):
    """Every per-timestep constant of the diffusion, one array of length T each (names as the official code)."""

    betas: Float[Array, " T"]
    alphas_cumprod: Float[Array, " T"]
    alphas_cumprod_prev: Float[Array, " T"]
    sqrt_alphas_cumprod: Float[Array, " T"]
    sqrt_one_minus_alphas_cumprod: Float[Array, " T"]
    log_one_minus_alphas_cumprod: Float[Array, " T"]
    sqrt_recip_alphas_cumprod: Float[Array, " T"]
    sqrt_recipm1_alphas_cumprod: Float[Array, " T"]
    # q(x_{t-1} | x_t, x_0) = N(coef1 * x_0 + coef2 * x_t, posterior_variance)
    posterior_variance: Float[Array, " T"]
    # log of the posterior variance, with the t = 0 entry (which is 0) replaced by t = 1's
    posterior_log_variance_clipped: Float[Array, " T"]
    posterior_mean_coef1: Float[Array, " T"]
    posterior_mean_coef2: Float[Array, " T"]

    @property
    def num_timesteps(self) -> int:
        return self.betas.shape[0]


def schedule_from_betas(betas: np.ndarray) -> Schedule:
    """Derive every quantity from ``betas`` in float64, then store them as float32."""
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.size < 1:
        raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}")
    if not np.all((betas > 0) & (betas <= 1)):
        raise ValueError("every beta must lie in (0, 1]")
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.append(1.0, abar[:-1])
    post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
    # post_var[0] is 0 (x_0 is known exactly given x_1 and x_0); clip its log for stability.
    post_logvar = np.log(np.append(post_var[1], post_var[1:]) if len(betas) > 1 else betas)
    arrays = dict(
        betas=betas,
        alphas_cumprod=abar,
        alphas_cumprod_prev=abar_prev,
        sqrt_alphas_cumprod=np.sqrt(abar),
        sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - abar),
        log_one_minus_alphas_cumprod=np.log(1.0 - abar),
        sqrt_recip_alphas_cumprod=np.sqrt(1.0 / abar),
        sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / abar - 1.0),
        posterior_variance=post_var,
        posterior_log_variance_clipped=post_logvar,
        posterior_mean_coef1=betas * np.sqrt(abar_prev) / (1.0 - abar),
        posterior_mean_coef2=(1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
    )
    return Schedule(**{k: jnp.asarray(v, dtype=jnp.float32) for k, v in arrays.items()})


def make_schedule(name: str = "linear", num_timesteps: int = 1000, **kwargs) -> Schedule:
    """Build a named schedule. ``kwargs`` go to the beta function (e.g. ``beta_end`` or ``s``)."""
    if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, (int, np.integer)) or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be an integer >= 1, got {num_timesteps!r}")
    if name == "linear":
        betas = linear_betas(int(num_timesteps), **kwargs)
    elif name == "cosine":
        betas = cosine_betas(int(num_timesteps), **kwargs)
    else:
        raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")
    return schedule_from_betas(betas)
