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

from .config import SAMPLERS, SAMPLERS_OF, Config
from .diffusion import initial_noise, p_mean_variance, predict_x0_from_eps
from .edm import edm_sample_loop
from .flow import flow_sample_loop
from .parallel import shard_batch
from .schedule import Schedule, ddim_timesteps, make_schedule
from .solver import dpm_solver_sample_loop


def p_sample(model, schedule: Schedule, x_t, t, key, *, variance="fixedlarge", clip_x0=True):
    """One reverse step for ONE example: draw x_{t-1} ~ p(x_{t-1} | x_t). No noise is added at t = 0."""
    eps = model(x_t, t)
    mean, _, log_var = p_mean_variance(schedule, eps, x_t, t, variance=variance, clip_x0=clip_x0)
    noise = jax.random.normal(key, x_t.shape, x_t.dtype)
    return mean + jnp.where(t > 0, jnp.exp(0.5 * log_var), 0.0) * noise


@eqx.filter_jit
def p_sample_loop(
    model,
    schedule: Schedule,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    variance: str = "fixedlarge",
    clip_x0: bool = True,
    trajectory_steps: tuple[int, ...] = (),
    mesh=None,
):
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
    step = jax.vmap(
        lambda xi, t, k: p_sample(model, schedule, xi, t, k, variance=variance, clip_x0=clip_x0), in_axes=(0, None, 0)
    )

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
DEFAULT_DDIM_STEPS = 50  # the DDIM paper's tables use S = 10 .. 1000; 50 is close to DDPM's quality at 1/20 of its cost
# steps when none are given: EDM's 18 Heun steps are its CIFAR-10 setting (35 network calls); 20 calls for a flow
DEFAULT_STEPS = {"edm": 18, "euler": 20, "heun": 10}


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
def ddim_sample_loop(
    model,
    schedule: Schedule,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    num_steps: int,
    eta: float = 0.0,
    clip_x0: bool = True,
    spacing: str = "uniform",
    x_T=None,
    mesh=None,
):
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
    step = jax.vmap(
        lambda xi, t, tp, k: ddim_step(model, schedule, xi, t, tp, k, eta=eta, clip_x0=clip_x0),
        in_axes=(0, None, None, 0),
    )

    def body(x, t_and_prev):
        t, t_prev = t_and_prev
        return step(x, t, t_prev, jax.random.split(jax.random.fold_in(k_loop, t), shape[0])), None

    x, _ = jax.lax.scan(body, x, (jnp.asarray(ts), jnp.asarray(prev)))
    return x


def default_sampler(config: Config) -> str:
    """The sampler a run gets when none is named: DDPM's Algorithm 2, or Euler for a flow-matching run."""
    return SAMPLERS_OF[config.diffusion.objective][0]


def network_evaluations(config: Config, sampler: str | None = None, steps: int | None = None) -> int:
    """How many times ``sample_images`` calls the network per image with these options."""
    sampler = sampler or default_sampler(config)
    T = config.diffusion.num_timesteps
    if sampler == "ddpm":
        return T
    steps = steps if steps is not None else DEFAULT_STEPS.get(sampler, min(DEFAULT_DDIM_STEPS, T))
    return {"edm": 2 * steps - 1, "heun": 2 * steps}.get(sampler, steps)


def sample_images(config: Config, model, key: PRNGKeyArray, num: int, **options) -> Float[Array, "n h w c"]:
    """Draw ``num`` images in [-1, 1] from a trained model (use the EMA weights), as configured; ``options`` are
    ``sampling_loop``'s (the sampler, its steps, eta, churn, spacing, variance, clip_x0, schedule, mesh)."""
    loop, schedule, shape, kwargs = sampling_loop(config, num, **options)
    return loop(eqx.nn.inference_mode(model), schedule, key, shape, **kwargs)


def sampling_loop(
    config: Config,
    num: int,
    *,
    schedule: Schedule | None = None,
    variance: str | None = None,
    clip_x0: bool | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    eta: float = 0.0,
    churn: float = 0.0,
    spacing: str = "uniform",
    mesh=None,
):
    """``(loop, schedule, shape, kwargs)``: the jitted loop ``sample_images`` runs, with the arguments it gives it.

    A noise-predicting run (objective "eps"):
    ``sampler="ddpm"`` (its default): Algorithm 2 over all T steps (``variance`` applies).
    ``sampler="ddim"``: DDIM on ``steps`` respaced steps (default min(50, T)) with noise scale ``eta``.
    ``sampler="dpm++2m"``: DPM-Solver++(2M) (``solver.py``) on ``steps`` respaced steps (default min(50, T)).
    ``sampler="edm"``: EDM's Heun sampler (``edm.py``) on ``steps`` rho-spaced steps (default 18: 35 network
    calls), stochastic with ``churn`` > 0.
    A flow-matching run (objective "flow"): ``sampler="euler"`` (its default; ``steps`` default 20) or
    ``"heun"`` (default 10 steps, two calls each) integrate its ODE (``flow.py``).
    ``spacing`` (DDIM and DPM-Solver++): how the steps are placed, one of SPACINGS (see ``ddim_timesteps``).
    With a ``mesh`` (``parallel.make_mesh``) the images are split over its devices when ``num``
    divides evenly, else every device draws them all.

    ``loop(inference_mode(model), schedule, key, shape, **kwargs)`` draws the images;
    ``loop.lower(...).compile()`` compiles them ahead of time (bench/sampler_curve.py times them apart).
    """
    if num < 1:
        raise ValueError(f"the number of samples must be >= 1, got {num}")
    d, m = config.diffusion, config.model
    sampler = default_sampler(config) if sampler is None else sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    if sampler not in SAMPLERS_OF[d.objective]:
        raise ValueError(
            f"sampler {sampler!r} cannot sample {config.name}: it was trained to predict "
            + ("the velocity of a flow" if d.objective == "flow" else "the noise (eps)")
            + f" and its samplers are {', '.join(SAMPLERS_OF[d.objective])}"
        )
    schedule = schedule if schedule is not None else make_schedule(d.schedule, d.num_timesteps)
    shape = (num, m.image_size, m.image_size, m.in_channels)
    clip_x0 = d.clip_x0 if clip_x0 is None else clip_x0
    T = schedule.num_timesteps
    mesh = mesh if mesh is not None and num % mesh.size == 0 else None
    if eta != 0.0 and sampler != "ddim":
        raise ValueError(f"eta={eta} needs sampler='ddim' (the others are deterministic, or take churn: sampler='edm')")
    if churn != 0.0 and sampler != "edm":
        raise ValueError(f"churn={churn} needs sampler='edm' (EDM's stochastic sampler)")
    if spacing != "uniform" and sampler not in ("ddim", "dpm++2m"):
        raise ValueError(f"spacing={spacing!r} needs sampler='ddim' or 'dpm++2m'")
    if sampler == "ddpm":
        if steps is not None and steps != T:
            raise ValueError(f"steps={steps} needs sampler='ddim', 'dpm++2m' or 'edm'; DDPM runs all T = {T} steps")
        return p_sample_loop, schedule, shape, {"variance": variance or d.variance, "clip_x0": clip_x0, "mesh": mesh}
    num_steps = DEFAULT_STEPS.get(sampler, min(DEFAULT_DDIM_STEPS, T)) if steps is None else steps
    if sampler in ("euler", "heun"):
        kwargs = {"num_steps": num_steps, "method": sampler, "clip_x0": clip_x0, "mesh": mesh}
        return flow_sample_loop, schedule, shape, kwargs
    if sampler == "edm":
        return (
            edm_sample_loop,
            schedule,
            shape,
            {"num_steps": num_steps, "churn": float(churn), "clip_x0": clip_x0, "mesh": mesh},
        )
    ddim_timesteps(T, num_steps, spacing)  # refuses a bad count or spacing with its message, before tracing
    kwargs = {"num_steps": num_steps, "clip_x0": clip_x0, "spacing": spacing, "mesh": mesh}
    if sampler == "ddim":
        return ddim_sample_loop, schedule, shape, {**kwargs, "eta": float(eta)}
    return dpm_solver_sample_loop, schedule, shape, kwargs
