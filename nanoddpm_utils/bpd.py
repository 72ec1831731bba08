"""The variational bound on the negative log-likelihood, in bits per dimension (the paper's Table 1 "NLL").

For one 8-bit image x_0 in [-1, 1] the bound (the paper's eq. 5) is a sum of T + 1 terms,

    L = L_T + sum_{t=1}^{T-1} L_t + L_0                                  (the paper's indices)
    L_T = KL(q(x_T | x_0) || N(0, I))                                      the prior term: no parameters
    L_t = E_q KL(q(x_t | x_{t+1}, x_0) || p_theta(x_t | x_{t+1}))          two Gaussians (eqs. 6-7 vs eq. 11)
    L_0 = E_q -log p_theta(x_0 | x_1)                                      the discrete decoder (eq. 13)

each measured in bits per dimension (mean over the H*W*C values, divided by log 2).
The code's 0-indexed step t (schedule.py) looks at the code's x_t, the paper's x_{t+1},
so the term computed at step t is exactly the paper's L_t: ``terms[0]`` is the decoder.
As the official ``calc_bpd_loop`` does, every L_t is a one-sample Monte Carlo
estimate: ONE x_t ~ q(x_t | x_0) (eq. 4) per example and per t, drawn afresh for
each t. The bound is an average over a data set, so this noise averages out.

Choices that follow the official code (hojonathanho/diffusion, ``calc_bpd_loop``):
- ``clip_x0=True`` (its ``clip_denoised=True``): the model's mean uses the x_0
  prediction clipped to [-1, 1]. For data in [-1, 1] this can only move the
  prediction closer to the truth, and the bound stays a valid bound for any mean.
- "fixedlarge" uses sigma_0^2 = beta-tilde_1 for the decoder, not beta_0 (see
  ``diffusion.model_variance``).
- the KL uses the posterior's *clipped* log-variance (at t = 0 it is only used for
  the decoder, so the clipping never enters the bound).
One difference: the decoder integrates the exact normal CDF (``jax.scipy.stats.norm``),
not the official tanh approximation of it (off by up to 1.8e-4 in the CDF).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray
from tqdm.auto import tqdm

from .diffusion import (
    discretized_gaussian_log_likelihood,
    normal_kl,
    p_mean_variance,
    q_mean_variance,
    q_posterior_mean_variance,
    q_sample,
)
from .images import to_model_range
from .schedule import Schedule

LOG2 = math.log(2.0)


# --------------------------------------------------------------------------- the terms, for ONE example
def prior_bpd(schedule: Schedule, x0: Float[Array, "h w c"]) -> Float[Array, ""]:
    """L_T = KL(q(x_T | x_0) || N(0, I)) in bits/dim. Tiny for a good schedule (the paper: ~1e-5 on CIFAR-10)."""
    mean, _, log_var = q_mean_variance(schedule, x0, schedule.num_timesteps - 1)
    return jnp.mean(normal_kl(mean, log_var, 0.0, 0.0)) / LOG2


def vb_terms_bpd(
    model,
    schedule: Schedule,
    x0: Float[Array, "h w c"],
    x_t: Float[Array, "h w c"],
    t: Int[Array, ""],
    *,
    variance: str = "fixedlarge",
    clip_x0: bool = True,
) -> Float[Array, ""]:
    """The bound's term at 0-indexed step t given x_t (the official ``_vb_terms_bpd``), in bits/dim:
    at t == 0 the decoder -log p(x_0 | x_t) (discretized, eq. 13), else the KL between the
    posterior q(x_{t-1} | x_t, x_0) (eqs. 6-7) and the model's p(x_{t-1} | x_t) (eq. 11), in code indices.
    """
    eps = model(x_t, t)
    true_mean, _, true_log_var = q_posterior_mean_variance(schedule, x0, x_t, t)
    mean, _, log_var = p_mean_variance(schedule, eps, x_t, t, variance=variance, clip_x0=clip_x0)
    kl = jnp.mean(normal_kl(true_mean, true_log_var, mean, log_var)) / LOG2
    decoder_nll = -jnp.mean(discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var)) / LOG2
    return jnp.where(t == 0, decoder_nll, kl)


# --------------------------------------------------------------------------- a batch: vmap over examples, scan over t
@eqx.filter_jit
def bpd_batch(
    model,
    schedule: Schedule,
    x0: Float[Array, "b h w c"],
    key: PRNGKeyArray,
    *,
    variance: str = "fixedlarge",
    clip_x0: bool = True,
):
    """Every term of the bound for a batch: returns (prior (B,), terms (B, T)), in bits/dim.

    ONE ``lax.scan`` over t = 0 .. T-1 (one compile per batch shape); inside it the
    model runs on the whole batch (``vmap``). x_t ~ q(x_t | x_0) is drawn afresh per
    example and per t from ``fold_in(key, t)``.
    """
    T = schedule.num_timesteps
    prior = jax.vmap(prior_bpd, in_axes=(None, 0))(schedule, x0)
    term = jax.vmap(
        lambda a, b, t: vb_terms_bpd(model, schedule, a, b, t, variance=variance, clip_x0=clip_x0), in_axes=(0, 0, None)
    )

    def body(_, t):
        noise = jax.random.normal(jax.random.fold_in(key, t), x0.shape, x0.dtype)
        x_t = jax.vmap(q_sample, in_axes=(None, 0, None, 0))(schedule, x0, t, noise)
        return None, term(x0, x_t, t)  # (B,)

    _, terms = jax.lax.scan(body, None, jnp.arange(T))  # (T, B)
    return prior, terms.T


def bits_per_dim(
    model,
    schedule: Schedule,
    images_uint8: np.ndarray,
    *,
    key: PRNGKeyArray,
    batch_size: int = 128,
    variance: str = "fixedlarge",
    clip_x0: bool = True,
    progress: bool = True,
) -> dict:
    """The negative log-likelihood bound of a data set in bits/dim, as in the paper's Table 1.

    ``images_uint8``: (N, H, W, C) uint8. Runs ``bpd_batch`` on batches of ``batch_size``
    (the last one padded, so every batch has one shape and compiles once) with a
    progress bar. Returns the set averages:

    - "total": L_T + sum_t L_t + L_0, the bound (paper's Table 1: <= 3.75 on CIFAR-10 test, 3.72 train, L_simple);
    - "prior": L_T;  "decoder": L_0;  "kl": sum_{t=1}^{T-1} L_t;
    - "terms": (T,) NumPy array: terms[t] is the paper's L_t (terms[0] = L_0, the decoder);
    - "total_sem": the standard error of "total" over the examples;  "num_examples": N.
    """
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty uint8 array (N, H, W, C), got {images.dtype} {images.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = eqx.nn.inference_mode(model)
    n = len(images)
    bs = min(batch_size, n)
    priors, terms = [], []
    for i, start in enumerate(tqdm(range(0, n, bs), disable=not progress, desc="bits/dim", unit="batch")):
        chunk = images[start : start + bs]
        pad = bs - len(chunk)
        if pad:  # repeat the first image; its rows are dropped below
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
        x0 = jnp.asarray(to_model_range(chunk))
        p, tb = bpd_batch(model, schedule, x0, jax.random.fold_in(key, i), variance=variance, clip_x0=clip_x0)
        priors.append(np.asarray(p, np.float64)[: bs - pad])
        terms.append(np.asarray(tb, np.float64)[: bs - pad])
    prior, terms = np.concatenate(priors), np.concatenate(terms)  # (N,), (N, T)
    total = prior + terms.sum(1)
    return {
        "total": float(total.mean()),
        "total_sem": float(total.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
        "prior": float(prior.mean()),
        "decoder": float(terms[:, 0].mean()),
        "kl": float(terms[:, 1:].sum(1).mean()),
        "terms": terms.mean(0),
        "num_examples": n,
    }
