"""Flow matching on the straight path (Lipman, Chen, Ben-Hamu, Nickel & Le 2023; rectified flow: Liu, Gong & Liu
2023), as pure functions on ONE example and one jitted sampling ``lax.scan``.

Time runs the other way from the paper's t in DDPM's sense but the same way as its noise: t = 0 is data, t = 1 noise,

    x_t = (1 - t) x_0 + t eps,        eps ~ N(0, I),  t ~ U(0, 1)

The path's velocity for one pair (x_0, eps) is d x_t / dt = eps - x_0. A network v(x_t, t) trained to regress it,
E || v(x_t, t) - (eps - x_0) ||^2, learns its conditional mean E[eps - x_0 | x_t], the velocity of the
*marginal* flow that carries N(0, I) at t = 1 to the data at t = 0. Sampling integrates dx/dt = v(x, t) from
t = 1 to t = 0: Euler (one network call per step) or Heun (two: the mean of the slopes at both ends).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .diffusion import initial_noise
from .parallel import shard_batch

# The UNet's sinusoidal embedding sees t * TIME_SCALE, the range of DDPM's integer steps 0 .. 999.
TIME_SCALE = 1000.0
FLOW_METHODS = ("euler", "heun")


def flow_interpolate(x0, noise, t):
    """x_t = (1 - t) x_0 + t eps: the straight path from the data (t = 0) to the noise (t = 1)."""
    return (1.0 - t) * x0 + t * noise


def flow_velocity(x0, noise):
    """d x_t / dt = eps - x_0: the target the network regresses (the same at every t)."""
    return noise - x0


def velocity(model, x, t):
    """The model's velocity v(x, t) for ONE example at a time ``t`` in [0, 1]."""
    return model(x, TIME_SCALE * t)


def flow_times(num_steps: int) -> np.ndarray:
    """``num_steps + 1`` times from 1 (noise) down to 0 (data), evenly spaced."""
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"the number of steps must be an integer >= 1, got {num_steps!r}")
    return np.linspace(1.0, 0.0, int(num_steps) + 1)


@eqx.filter_jit
def flow_sample_loop(
    model,
    schedule,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    num_steps: int,
    method: str = "euler",
    clip_x0: bool = False,
    x_T=None,
    mesh=None,
):
    """Integrate dx/dt = v(x, t) from t = 1 to 0 over ``flow_times(num_steps)``: returns x_0 of ``shape``.

    ``method`` "euler": x <- x + (t' - t) v(x, t); "heun": the Euler step's end x' gives a second slope, and
    x <- x + (t' - t) (v(x, t) + v(x', t')) / 2. x_1 comes from ``key`` as in ``sample.p_sample_loop`` (every
    sampler starts from the same noise) unless ``x_T`` is given. ``schedule`` is unused (the straight path has
    none); it is there so that every sampling loop is called alike. With ``clip_x0`` the result is clipped to
    [-1, 1] at the end only (the path itself is left alone).
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {FLOW_METHODS}")
    ts = flow_times(num_steps)
    k_init, _ = jax.random.split(key)
    x = shard_batch(initial_noise(k_init, shape, x_T), mesh)
    v = jax.vmap(lambda xi, t: velocity(model, xi, t), in_axes=(0, None))

    def body(x, t_pair):
        t, t_next = t_pair
        slope = v(x, t)
        x_euler = x + (t_next - t) * slope
        if method == "euler":
            return x_euler, None
        return x + (t_next - t) * 0.5 * (slope + v(x_euler, t_next)), None

    x, _ = jax.lax.scan(body, x, (jnp.asarray(ts[:-1], jnp.float32), jnp.asarray(ts[1:], jnp.float32)))
    return jnp.clip(x, -1.0, 1.0) if clip_x0 else x
