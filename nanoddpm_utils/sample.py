"""Sampling: the paper's Algorithm 2 (ancestral sampling) as ONE jitted ``lax.scan`` over t = T-1 .. 0.

    x_T ~ N(0, I);  for t = T-1 .. 0:  x_{t-1} = mean_theta(x_t, t) + sigma_t z,  z ~ N(0, I), z = 0 at t = 0

The mean and sigma_t^2 come from ``diffusion.p_mean_variance`` (sigma^2 = beta or
beta-tilde, optional x_0 clipping). The whole loop compiles once per (model, shape,
options); it is not re-traced per step.

DDIM (Song, Meng & Ermon 2021) is below: the same trained model, sampled on a
subsequence of S << T timesteps (spaced evenly, quadratically or "trailing"),
deterministically when eta = 0. DPM-Solver++(2M), a second-order solver on the
same timesteps, is in ``solver.py``; ``sample_images`` picks any of them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .config import Config
from .diffusion import p_mean_variance, predict_x0_from_eps
from .parallel import shard_batch
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
                  trajectory_steps: tuple[int, ...] = (), mesh=None):
    """Algorithm 2 for a batch: returns x_0 of ``shape`` (N, H, W, C), and, when ``trajectory_steps``
    is given, also the images x_t at those t (after the step that produced them; -1 is x_T itself),
    stacked in the order given: (len(trajectory_steps), N, H, W, C). With a ``mesh`` the batch is
    split over its devices (``parallel.py``).
    """
    T = schedule.num_timesteps
    k_init, k_loop = jax.random.split(key)
    x = shard_batch(jax.random.normal(k_init, shape), mesh)
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


# --------------------------------------------------------------------------- DDIM (Song, Meng & Ermon 2021)
SAMPLERS = ("ddpm", "ddim", "dpm++2m")
SPACINGS = ("uniform", "quadratic", "trailing")
DEFAULT_DDIM_STEPS = 50  # the DDIM paper's tables use S = 10 .. 1000; 50 is close to DDPM's quality at 1/20 of its cost


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


def ddim_step(model, schedule: Schedule, x_t, t, t_prev, key, *, eta=0.0, clip_x0=True):
    """One DDIM update for ONE example, from step t to t_prev < t (t_prev = -1: to x_0, with abar_prev = 1).

    The DDIM paper's eq. 12, with its alpha_t written abar_t here:
        x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)                     "predicted x_0"
        x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z   z ~ N(0, I)
        sigma  = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)  (eq. 16)
    eta = 0 is deterministic; eta = 1 with t_prev = t - 1 is DDPM's step with sigma^2 = beta-tilde_t.
    With ``clip_x0`` x0_hat is clipped to [-1, 1] and eps re-derived from it, so the two stay
    consistent with x_t (as improved-diffusion's ``ddim_sample``; the DDIM code does not clip).
    """
    eps = model(x_t, t)
    abar = schedule.alphas_cumprod[t]
    abar_prev = jnp.where(t_prev >= 0, schedule.alphas_cumprod[jnp.maximum(t_prev, 0)], 1.0)
    x0 = predict_x0_from_eps(schedule, x_t, t, eps)
    if clip_x0:
        x0 = jnp.clip(x0, -1.0, 1.0)
        eps = (x_t - schedule.sqrt_alphas_cumprod[t] * x0) / schedule.sqrt_one_minus_alphas_cumprod[t]
    sigma = eta * jnp.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
    direction = jnp.sqrt(jnp.maximum(1.0 - abar_prev - sigma**2, 0.0))  # "direction pointing to x_t"
    noise = jax.random.normal(key, x_t.shape, x_t.dtype)
    return jnp.sqrt(abar_prev) * x0 + direction * eps + sigma * noise


@eqx.filter_jit
def ddim_sample_loop(model, schedule: Schedule, key: PRNGKeyArray, shape: tuple[int, ...], *, num_steps: int,
                     eta: float = 0.0, clip_x0: bool = True, spacing: str = "uniform", x_T=None, mesh=None):
    """DDIM sampling for a batch as ONE jitted ``lax.scan`` over ``ddim_timesteps(T, num_steps, spacing)``.

    x_T comes from ``key`` exactly as in ``p_sample_loop`` (so both samplers start from the
    same noise), unless ``x_T`` is given. Step t draws its noise from ``fold_in(key', t)`` as
    DDPM does, so ``num_steps = T, eta = 1`` reproduces ``p_sample_loop(variance="fixedsmall")``.
    Compiles once per (model, shape, num_steps, eta, clip_x0, spacing). With a ``mesh`` the batch is split over it.
    """
    if isinstance(eta, (int, float)) and not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise), got {eta}")
    ts = ddim_timesteps(schedule.num_timesteps, num_steps, spacing)
    prev = np.append(ts[1:], -1).astype(np.int32)  # the step each update goes to; -1 is x_0
    k_init, k_loop = jax.random.split(key)
    x = shard_batch(initial_noise(k_init, shape, x_T), mesh)
    step = jax.vmap(lambda xi, t, tp, k: ddim_step(model, schedule, xi, t, tp, k, eta=eta, clip_x0=clip_x0),
                    in_axes=(0, None, None, 0))

    def body(x, t_and_prev):
        t, t_prev = t_and_prev
        return step(x, t, t_prev, jax.random.split(jax.random.fold_in(k_loop, t), shape[0])), None

    x, _ = jax.lax.scan(body, x, (jnp.asarray(ts), jnp.asarray(prev)))
    return x


def initial_noise(key: PRNGKeyArray, shape: tuple[int, ...], x_T=None):
    """x_T ~ N(0, I) drawn from ``key`` (as ``p_sample_loop`` draws it from its first split), or the given ``x_T``."""
    if x_T is None:
        return jax.random.normal(key, shape)
    if tuple(x_T.shape) != tuple(shape):
        raise ValueError(f"x_T has shape {x_T.shape}, expected {tuple(shape)}")
    return x_T


def sample_images(config: Config, model, key: PRNGKeyArray, num: int, *, schedule: Schedule | None = None,
                  variance: str | None = None, clip_x0: bool | None = None, sampler: str = "ddpm",
                  steps: int | None = None, eta: float = 0.0, spacing: str = "uniform",
                  mesh=None) -> Float[Array, "n h w c"]:
    """Draw ``num`` images in [-1, 1] from a trained model (use the EMA weights), as configured.

    ``sampler="ddpm"`` (default): Algorithm 2 over all T steps (``variance`` applies).
    ``sampler="ddim"``: DDIM on ``steps`` respaced steps (default min(50, T)) with noise scale ``eta``.
    ``sampler="dpm++2m"``: DPM-Solver++(2M) (``solver.py``) on ``steps`` respaced steps (default min(50, T)).
    ``spacing`` (DDIM and DPM-Solver++): how the steps are placed, one of SPACINGS (see ``ddim_timesteps``).
    With a ``mesh`` (``parallel.make_mesh``) the images are split over its devices when ``num``
    divides evenly, else every device draws them all.
    """
    loop, schedule, shape, kwargs = sampling_loop(config, num, schedule=schedule, variance=variance,
                                                  clip_x0=clip_x0, sampler=sampler, steps=steps, eta=eta,
                                                  spacing=spacing, mesh=mesh)
    return loop(eqx.nn.inference_mode(model), schedule, key, shape, **kwargs)


def sampling_loop(config: Config, num: int, *, schedule: Schedule | None = None, variance: str | None = None,
                  clip_x0: bool | None = None, sampler: str = "ddpm", steps: int | None = None, eta: float = 0.0,
                  spacing: str = "uniform", mesh=None):
    """``(loop, schedule, shape, kwargs)``: the jitted loop ``sample_images`` runs, with the arguments it gives it.

    ``loop(inference_mode(model), schedule, key, shape, **kwargs)`` draws the images;
    ``loop.lower(...).compile()`` compiles them ahead of time (bench/sampler_curve.py times them apart).
    """
    if num < 1:
        raise ValueError(f"the number of samples must be >= 1, got {num}")
    d, m = config.diffusion, config.model
    schedule = schedule if schedule is not None else make_schedule(d.schedule, d.num_timesteps)
    shape = (num, m.image_size, m.image_size, m.in_channels)
    clip_x0 = d.clip_x0 if clip_x0 is None else clip_x0
    T = schedule.num_timesteps
    mesh = mesh if mesh is not None and num % mesh.size == 0 else None
    if sampler == "ddpm":
        if steps is not None and steps != T:
            raise ValueError(f"steps={steps} needs sampler='ddim' or 'dpm++2m'; the DDPM sampler runs all "
                             f"T = {T} steps")
        if eta != 0.0:
            raise ValueError(f"eta={eta} needs sampler='ddim'; DDPM's noise is set by the variance ({d.variance})")
        if spacing != "uniform":
            raise ValueError(f"spacing={spacing!r} needs sampler='ddim' or 'dpm++2m'; DDPM visits every step")
        return p_sample_loop, schedule, shape, {"variance": variance or d.variance, "clip_x0": clip_x0, "mesh": mesh}
    num_steps = min(DEFAULT_DDIM_STEPS, T) if steps is None else steps
    if sampler in ("ddim", "dpm++2m"):
        ddim_timesteps(T, num_steps, spacing)  # refuses a bad count or spacing with its message, before tracing
    if sampler == "ddim":
        return ddim_sample_loop, schedule, shape, {"num_steps": num_steps, "eta": float(eta), "clip_x0": clip_x0,
                                                   "spacing": spacing, "mesh": mesh}
    if sampler == "dpm++2m":
        from .solver import dpm_solver_sample_loop  # solver.py builds on this module

        if eta != 0.0:
            raise ValueError(f"eta={eta} needs sampler='ddim'; DPM-Solver++(2M) is deterministic")
        return dpm_solver_sample_loop, schedule, shape, {"num_steps": num_steps, "clip_x0": clip_x0,
                                                         "spacing": spacing, "mesh": mesh}
    raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
