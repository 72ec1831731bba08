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

from .config import SCHEDULES, SPACINGS


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


# --------------------------------------------------------------------------- the timesteps of few-step samplers


def ddim_timesteps(num_timesteps: int, num_steps: int, spacing: str = "uniform") -> np.ndarray:
    """The respaced timesteps tau_S > ... > tau_1 that a few-step sampler visits (0-indexed, strictly decreasing).

    Step i goes from tau_i to the next entry of the list; the last step goes to x_0. Every spacing starts at
    t = T-1, so the first step sees the pure noise x_T the model was trained to start from.

    - "uniform": ``np.linspace(T-1, 0, S)``, rounded: evenly spaced, ending at t = 0 when S >= 2. (The DDIM
      paper's stride ``range(0, T, T // S)`` starts at 0 and stops short of T-1: at 980 for T = 1000, S = 50.)
    - "quadratic": the DDIM paper's quadratic spacing, t ~ i^2, dense near t = 0 where the image's details are
      decided (the paper found it better for few steps on CIFAR-10); here it reaches T-1 instead of the paper's
      0.8 T, and where rounding would repeat a step (only for S close to T) the small t are spaced by 1.
    - "trailing" (Lin et al. 2023, "Common diffusion noise schedules and sample steps are flawed", Table 2):
      ``round(arange(T, 0, -T/S)) - 1``: every gap is T/S, from T-1 down to T/S - 1; the last gap goes to x_0.
    """
    T, S = int(num_timesteps), num_steps
    if isinstance(S, bool) or not isinstance(S, (int, np.integer)) or not 1 <= S <= T:
        raise ValueError(f"the number of sampling steps must be an integer in 1 .. T = {T}, got {S!r}")
    S = int(S)
    if spacing == "uniform":
        ts = np.round(np.linspace(T - 1, 0, S))  # spacing >= 1, so rounding keeps them distinct
    elif spacing == "quadratic":
        ts = np.maximum(np.round((T - 1) * np.linspace(1.0, 0.0, S) ** 2), np.arange(S - 1, -1, -1))
    elif spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / S))[:S] - 1
    else:
        raise ValueError(f"unknown spacing {spacing!r}; choose one of {SPACINGS}")
    return ts.astype(np.int32)
