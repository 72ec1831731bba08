"""DPM-Solver++(2M) (Lu, Zhou, Bao, Chen, Li & Zhu 2022, arXiv:2211.01095): a second-order multistep solver
of the diffusion ODE in the data prediction, as ONE jitted ``lax.scan``.

Write alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t) and the half log signal-to-noise ratio
lambda_t = log(alpha_t / sigma_t), which grows as t falls. The deterministic (DDIM, eta = 0) sampler is the
probability-flow ODE; in lambda it has the exact solution, from s to t < s,

    x_t = (sigma_t / sigma_s) x_s + sigma_t * integral_{lambda_s}^{lambda_t} e^lambda x0_theta(x_lambda) dlambda,

with x0_theta the model's prediction of x_0. Holding x0_theta constant over the step (its value at s) gives
DDIM's step, with h = lambda_t - lambda_s:

    x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) x0_s                                   (first order)

DPM-Solver++(2M) instead lets x0_theta vary linearly in lambda, its slope taken from the previous step's
prediction x0_{s'} (one model call per step, like DDIM): with r = (lambda_s - lambda_{s'}) / h,

    D   = (1 + 1/(2r)) x0_s - 1/(2r) x0_{s'}
    x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) D                                      (second order)

The first step has no previous prediction and is first order; so is the last, which goes to x_0
(alpha = 1, sigma = 0: lambda is infinite, and the step returns x0_s itself, as DDIM's last step does).
Writing alpha_t (e^{-h} - 1) = sigma_t alpha_s / sigma_s - alpha_t keeps that last step finite.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .diffusion import initial_noise, predict_x0_from_eps
from .parallel import shard_batch
from .schedule import Schedule, ddim_timesteps


def dpm_solver_coefficients(schedule: Schedule, ts: np.ndarray):
    """(a, b, w), one entry per step: step i maps x -> a_i x + b_i D_i with D_i = (1 + w_i) x0_i - w_i x0_{i-1}.

    Step i goes from ts[i] to ts[i + 1] (the last to x_0); a = sigma_next / sigma,
    b = alpha_next - sigma_next alpha / sigma (= -alpha_next (e^{-h} - 1)), w = 1 / (2r) = h_i / (2 h_{i-1})
    on the second-order steps and 0 on the first and the last.
    """
    abar = schedule.alphas_cumprod[jnp.asarray(ts)]
    alpha, sigma = jnp.sqrt(abar), jnp.sqrt(1.0 - abar)
    alpha_next = jnp.append(alpha[1:], 1.0)
    sigma_next = jnp.append(sigma[1:], 0.0)
    a = sigma_next / sigma
    b = alpha_next - sigma_next * alpha / sigma
    lam = jnp.log(alpha) - jnp.log(sigma)
    h = lam[1:] - lam[:-1]  # the finite steps: ts[i] -> ts[i + 1]
    w = jnp.concatenate([jnp.zeros(1), h[1:] / (2.0 * h[:-1]), jnp.zeros(1)]) if len(ts) >= 2 else jnp.zeros(1)
    return a, b, w


@eqx.filter_jit
def dpm_solver_sample_loop(
    model,
    schedule: Schedule,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    num_steps: int,
    clip_x0: bool = True,
    spacing: str = "uniform",
    x_T=None,
    mesh=None,
):
    """DPM-Solver++(2M) over ``ddim_timesteps(T, num_steps, spacing)``: ``num_steps`` model calls, deterministic.

    x_T comes from ``key`` as in ``p_sample_loop`` (so every sampler starts from the same noise) unless ``x_T`` is
    given. With ``clip_x0`` each data prediction is clipped to [-1, 1] (DPM-Solver++'s thresholding, in its
    static form). Compiles once per (model, shape, num_steps, clip_x0, spacing).
    """
    ts = ddim_timesteps(schedule.num_timesteps, num_steps, spacing)
    a, b, w = dpm_solver_coefficients(schedule, ts)
    k_init, _ = jax.random.split(key)
    x = shard_batch(initial_noise(k_init, shape, x_T), mesh)

    def x0_of(x, t):
        x0 = jax.vmap(lambda xi: predict_x0_from_eps(schedule, xi, t, model(xi, t)))(x)
        return jnp.clip(x0, -1.0, 1.0) if clip_x0 else x0

    def body(carry, step):
        x, x0_prev = carry
        t, a_i, b_i, w_i = step
        x0 = x0_of(x, t)
        d = (1.0 + w_i) * x0 - w_i * x0_prev
        return (a_i * x + b_i * d, x0), None

    (x, _), _ = jax.lax.scan(body, (x, jnp.zeros_like(x)), (jnp.asarray(ts), a, b, w))
    return x
