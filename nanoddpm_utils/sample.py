"""Sampling: the paper's Algorithm 2 (ancestral sampling) as ONE jitted ``lax.scan`` over t = T-1 .. 0.

    x_T ~ N(0, I);  for t = T-1 .. 0:  x_{t-1} = mean_theta(x_t, t) + sigma_t z,  z ~ N(0, I), z = 0 at t = 0

The mean and sigma_t^2 come from ``diffusion.p_mean_variance`` (sigma^2 = beta or
beta-tilde, optional x_0 clipping). The whole loop compiles once per (model, shape,
options); it is not re-traced per step.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .config import Config
from .diffusion import p_mean_variance
from .schedule import Schedule, make_schedule


def p_sample(model, schedule: Schedule, x_t, t, key, *, variance="fixedlarge", clip_x0=True):
    """One reverse step for ONE example: draw x_{t-1} ~ p(x_{t-1} | x_t). No noise is added at t = 0."""
    eps = model(x_t, t)
    mean, _, log_var = p_mean_variance(schedule, eps, x_t, t, variance=variance, clip_x0=clip_x0)
    noise = jax.random.normal(key, x_t.shape, x_t.dtype)
    return mean + jnp.where(t > 0, jnp.exp(0.5 * log_var), 0.0) * noise


@eqx.filter_jit
def p_sample_loop(model, schedule: Schedule, key: PRNGKeyArray, shape: tuple[int, ...], *,
                  variance: str = "fixedlarge", clip_x0: bool = True,
                  trajectory_steps: tuple[int, ...] = ()):
    """Algorithm 2 for a batch: returns x_0 of ``shape`` (N, H, W, C), and, when ``trajectory_steps``
    is given, also the images x_t at those t (after the step that produced them; -1 is x_T itself),
    stacked in the order given: (len(trajectory_steps), N, H, W, C).
    """
    T = schedule.num_timesteps
    k_init, k_loop = jax.random.split(key)
    x = jax.random.normal(k_init, shape)
    # slot[t] = where x_{t-1} (the output of step t) is stored in the trajectory, or -1
    slots = np.full(T + 1, -1, np.int32)
    for i, s in enumerate(trajectory_steps):
        if not -1 <= s < T:
            raise ValueError(f"trajectory step {s} is outside -1 .. {T - 1}")
        slots[s + 1] = i  # index 0 is "x_T", index t+1 is "after the step at t"
    traj = jnp.zeros((len(trajectory_steps),) + tuple(shape), x.dtype)
    if trajectory_steps and -1 in trajectory_steps:
        traj = traj.at[slots[0]].set(x)
    slots = jnp.asarray(slots)
    step = jax.vmap(lambda xi, t, k: p_sample(model, schedule, xi, t, k, variance=variance, clip_x0=clip_x0),
                    in_axes=(0, None, 0))

    def body(carry, t):
        x, traj = carry
        x = step(x, t, jax.random.split(jax.random.fold_in(k_loop, t), shape[0]))
        if trajectory_steps:
            slot = slots[t + 1]
            idx = jnp.maximum(slot, 0)
            traj = traj.at[idx].set(jnp.where(slot >= 0, x, traj[idx]))
        return (x, traj), None

    (x, traj), _ = jax.lax.scan(body, (x, traj), jnp.arange(T - 1, -1, -1))
    return (x, traj) if trajectory_steps else x


def sample_images(config: Config, model, key: PRNGKeyArray, num: int, *, schedule: Schedule | None = None,
                  variance: str | None = None, clip_x0: bool | None = None) -> Float[Array, "n h w c"]:
    """Draw ``num`` images in [-1, 1] from a trained model (use the EMA weights), as configured."""
    if num < 1:
        raise ValueError(f"the number of samples must be >= 1, got {num}")
    d, m = config.diffusion, config.model
    schedule = schedule if schedule is not None else make_schedule(d.schedule, d.num_timesteps)
    model = eqx.nn.inference_mode(model)
    shape = (num, m.image_size, m.image_size, m.in_channels)
    return p_sample_loop(model, schedule, key, shape, variance=variance or d.variance,
                         clip_x0=d.clip_x0 if clip_x0 is None else clip_x0)
