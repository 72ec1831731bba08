"""Training: ONE jitted train step (L_simple, Adam, warmup, clipping, EMA),
K steps in one ``lax.scan``, and the ``fit`` driver (progress bar, logging, samples, checkpoints).

Every step draws its batch on device from the in-memory uint8 dataset, so Python
touches the host once per K steps. Algorithm 1 of the paper, per example:
    x_0 ~ data, t ~ Uniform{0..T-1}, eps ~ N(0, I);
    minimise ||eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1-abar_t) eps, t)||^2
A flow-matching config (objective "flow") swaps the path and the target only (``batch_loss``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray
from tqdm.auto import tqdm

from . import checkpoint
from .config import OBJECTIVES, Config
from .data import get_batch
from .diffusion import loss_simple, q_sample
from .flow import TIME_SCALE, flow_interpolate, flow_velocity
from .images import save_png
from .parallel import check_batch_size, make_mesh, put_dataset, replicate, shard_batch, to_host
from .sample import sample_images
from .schedule import Schedule, make_schedule
from .state import TrainState, init_state, learning_rate, make_optimizer
from .unet import UNet, check_labels


# --------------------------------------------------------------------------- the loss
def drop_labels(key: PRNGKeyArray, labels: Int[Array, " b"], p: float, null_label: int) -> Int[Array, " b"]:
    """Each label replaced by ``null_label`` ("no label") with probability ``p``, independently (classifier-free
    guidance's training, Ho & Salimans 2022: one network learns eps(x, t, c) and eps(x, t); see guidance.py)."""
    drop = jax.random.bernoulli(key, p, jnp.shape(labels))
    return jnp.where(drop, null_label, labels).astype(jnp.int32)


def has_bfloat16_units(device) -> bool:
    """Does ``device`` multiply bfloat16 natively? TPUs do, and NVIDIA GPUs of compute capability 8.0 or more
    (A100, L4, H100, ...); a T4 (7.5, Colab's free GPU), a V100 (7.0) and CPUs do not (XLA emulates it, slowly).
    An unknown capability (a ROCm GPU, say) counts as none: float32 is always correct."""
    major = str(getattr(device, "compute_capability", "")).split(".")[0]  # "major.minor" on CUDA devices
    return device.platform == "tpu" or (device.platform in ("gpu", "cuda") and major.isdigit() and int(major) >= 8)


def resolve_compute_dtype(name: str, device=None):
    """The activations' dtype: "auto" is bfloat16 where ``device`` (default: the first of ``jax.devices()``)
    has bfloat16 units (``has_bfloat16_units``), float32 elsewhere."""
    if name == "auto":
        return jnp.bfloat16 if has_bfloat16_units(device or jax.devices()[0]) else jnp.float32
    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]


def batch_loss(
    model: UNet,
    schedule: Schedule,
    x0: Float[Array, "b h w c"],
    key: PRNGKeyArray,
    compute_dtype=jnp.float32,
    labels=None,
    label_dropout: float = 0.0,
    objective: str = "eps",
):
    """L_simple averaged over a batch: random t and eps per example, dropout keys per example.

    ``objective`` "eps" (DDPM): t is a step 0 .. T-1, x_t = q_sample(x_0, t, eps) and the target is eps.
    "flow" (flow matching, ``flow.py``): t ~ U(0, 1), x_t = (1 - t) x_0 + t eps, the network sees
    t * TIME_SCALE and the target is the velocity eps - x_0. The rest is the same.

    A class-conditional model gets the batch's ``labels``, each replaced by "no label" with
    probability ``label_dropout`` (``drop_labels``); its key is drawn apart, so an
    unconditional batch sees exactly the same t, eps and dropout as without labels.

    Mixed precision: with ``compute_dtype=bfloat16`` the UNet sees a bfloat16 x_t, so its layers
    cast their float32 weights to bfloat16 as they use them (GroupNorm statistics and the
    attention softmax stay float32); the noise, the prediction's error and the mean are float32.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {OBJECTIVES}")
    B = x0.shape[0]
    k_t, k_eps, k_drop = jax.random.split(key, 3)
    noise = jax.random.normal(k_eps, x0.shape, x0.dtype)
    if objective == "flow":
        u = jax.random.uniform(k_t, (B,))
        x_t = flow_interpolate(x0, noise, u[:, None, None, None]).astype(compute_dtype)
        t, target = TIME_SCALE * u, flow_velocity(x0, noise)
    else:
        t = jax.random.randint(k_t, (B,), 0, schedule.num_timesteps)
        x_t = jax.vmap(q_sample, in_axes=(None, 0, 0, 0))(schedule, x0, t, noise).astype(compute_dtype)
        target = noise
    if labels is None:
        out = jax.vmap(lambda x, s, k: model(x, s, key=k))(x_t, t, jax.random.split(k_drop, B))
    else:
        c = drop_labels(jax.random.fold_in(key, 1), labels, label_dropout, model.null_label)
        out = jax.vmap(lambda x, s, ci, k: model(x, s, ci, key=k))(x_t, t, c, jax.random.split(k_drop, B))
    return jnp.mean(jax.vmap(loss_simple)(out.astype(jnp.float32), target))


def ema_update(ema: UNet, model: UNet, decay: float) -> UNet:
    """ema <- decay * ema + (1 - decay) * params, on the floating-point leaves only."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    ema_params = eqx.filter(ema, eqx.is_inexact_array)
    new = jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)
    return eqx.combine(new, static)


def _train_step(config: Config, schedule: Schedule, optimizer, mesh, data, state: TrainState):
    """One step of Algorithm 1 (pure; jitted by the makers below). With a ``mesh`` the batch is split over it."""
    tc = config.train
    key, k_batch, k_loss = jax.random.split(jax.random.wrap_key_data(state.key), 3)
    if isinstance(data, tuple):  # (images, labels): a class-conditional run
        x0, labels = get_batch(k_batch, data[0], tc.batch_size, tc.random_flip, labels=data[1])
        labels = shard_batch(labels, mesh)
    else:
        x0, labels = get_batch(k_batch, data, tc.batch_size, tc.random_flip), None
    x0 = shard_batch(x0, mesh)
    loss, grads = eqx.filter_value_and_grad(batch_loss)(
        state.model,
        schedule,
        x0,
        k_loss,
        resolve_compute_dtype(tc.compute_dtype),
        labels,
        tc.label_dropout,
        config.diffusion.objective,
    )
    params = eqx.filter(state.model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, state.opt_state, params)
    model = eqx.apply_updates(state.model, updates)
    ema = ema_update(state.ema, model, tc.ema_decay)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "lr": learning_rate(config, state.step)}
    return TrainState(model, ema, opt_state, state.step + 1, jax.random.key_data(key)), metrics


def make_train_step(config: Config, schedule: Schedule | None = None, mesh=None) -> Callable:
    """``step(data, state) -> (state, metrics)``: one jitted region; the state is donated.

    With a ``mesh`` (``parallel.make_mesh``) each batch is split over its devices; place
    the state and data first with ``parallel.replicate`` and ``parallel.put_dataset``.
    """
    schedule = schedule if schedule is not None else schedule_for(config)
    optimizer = make_optimizer(config)

    @eqx.filter_jit(donate="all-except-first")
    def train_step(data, state):
        return _train_step(config, schedule, optimizer, mesh, data, state)

    return train_step


def make_train_steps(config: Config, num_steps: int, schedule: Schedule | None = None, mesh=None) -> Callable:
    """``steps(data, state) -> (state, metrics)``: ``num_steps`` train steps in ONE jit, as a ``lax.scan``.

    Metrics come back stacked, one row per step. On XLA:CPU a loop body with a
    channels-first conv is ~10x slower (jax-ml/jax#12868); our channels-last UNet
    runs as fast here as step-by-step calls (bench/bench_train_loop.py measures it).
    """
    schedule = schedule if schedule is not None else schedule_for(config)
    optimizer = make_optimizer(config)

    @eqx.filter_jit(donate="all-except-first")
    def train_steps(data, state):
        params, static = eqx.partition(state, eqx.is_array)

        def body(carry, _):
            carry, metrics = _train_step(config, schedule, optimizer, mesh, data, eqx.combine(carry, static))
            return eqx.filter(carry, eqx.is_array), metrics

        params, metrics = jax.lax.scan(body, params, None, length=num_steps)
        return eqx.combine(params, static), metrics

    return train_steps


def schedule_for(config: Config) -> Schedule:
    return make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps)


# --------------------------------------------------------------------------- the driver
def check_data(config: Config, data) -> None:
    """A class-conditional config needs ``(images, labels)``, one label per image in 0 .. num_classes-1; others,
    the images alone."""
    k = config.model.num_classes
    if k == 0:
        if isinstance(data, tuple):
            raise ValueError(
                f"{config.name} is unconditional (num_classes = 0) but was given labels; pass the "
                "images alone, or use a class-conditional preset"
            )
        return
    if not (isinstance(data, tuple) and len(data) == 2):
        raise ValueError(
            f"{config.name} is class-conditional ({k} classes) and needs (images, labels); load them "
            "with data.load_dataset(..., return_labels=True)"
        )
    images, labels = data
    if np.shape(labels) != (len(images),):
        raise ValueError(
            f"{config.name} needs one label per image ({len(images)}), got labels of shape {np.shape(labels)}"
        )
    check_labels(k, labels)


GRID_DDIM_STEPS = 50  # the grids drawn during training; the DDIM paper's S = 50 is close to DDPM-1000's quality


class DivergenceError(FloatingPointError):
    """The loss or the gradient became NaN or infinite; nothing after the last good step was saved."""


def _check_finite(chunk: dict, first_step: int) -> None:
    bad = ~(np.isfinite(chunk["loss"]) & np.isfinite(chunk["grad_norm"]))
    if bad.any():
        at = first_step + int(np.argmax(bad)) + 1
        raise DivergenceError(
            f"training diverged at step {at}: the loss or gradient is not finite; the last "
            "checkpoint before it is kept. Resume from it with a lower learning rate or "
            "another --seed"
        )


def fit(
    config: Config,
    data: np.ndarray,
    *,
    state: TrainState | None = None,
    steps: int | None = None,
    run_dir: str | Path | None = None,
    tracker=None,
    progress: bool = True,
    ckpt_minutes: float | None = None,
    keep: int = 3,
    on_log: Callable[[int, dict], None] | None = None,
    devices: int | None = None,
) -> tuple[TrainState, list[dict]]:
    """Train until ``steps`` total steps (default ``config.train.steps``); returns (state, logged metrics).

    ``data`` is the uint8 images, or ``(images, labels)`` for a class-conditional model
    (``config.model.num_classes > 0``; ``data.load_dataset(..., return_labels=True)``).

    Runs ``steps_per_call`` steps per jitted call. Every ``log_every`` steps it logs the
    mean loss, grad norm, lr and images/s (to ``tracker`` if given); with a ``run_dir``
    it also writes a sample grid every ``sample_every`` steps and a checkpoint every
    ``ckpt_every`` steps, every ``ckpt_minutes`` minutes and at the end, keeping the
    newest ``keep``. Metrics are checked for NaN/inf before anything is saved, so a
    diverged run never overwrites good weights (it raises ``DivergenceError``).

    Data parallel over all devices (or the first ``devices``): the state and data are
    replicated, each batch is split over the devices (see ``parallel.py``). Every backend runs the
    same form: ``steps_per_call`` steps in one ``lax.scan`` (on CPU with im2col convolutions, layers.py).
    The grids drawn during training use DDIM with ``GRID_DDIM_STEPS`` steps (seconds, not minutes); a flow run's
    its Euler sampler.
    """
    tc = config.train
    total = tc.steps if steps is None else steps
    if total < 0:
        raise ValueError(f"steps must be >= 0, got {total}")
    check_data(config, data)
    mesh = make_mesh(devices)
    check_batch_size(tc.batch_size, mesh)
    schedule = schedule_for(config)
    state = replicate(state if state is not None else init_state(config), mesh)
    data = jax.tree_util.tree_map(lambda d: put_dataset(d, mesh), data)  # images, or (images, labels)
    K = max(1, min(tc.steps_per_call, tc.log_every))
    single = make_train_step(config, schedule, mesh)
    multi = make_train_steps(config, K, schedule, mesh)
    main_process = jax.process_index() == 0
    step = int(state.step)
    history, pending, pending_from = [], [], step
    t_last, n_last, t_ckpt = time.perf_counter(), step, time.monotonic()

    def crossed(every, before, after):
        return after // every > before // every

    bar = tqdm(
        total=total, initial=min(step, total), disable=not (progress and main_process), desc=config.name, unit="step"
    )
    try:
        while step < total:
            if total - step >= K:
                state, metrics = multi(data, state)
                n = K
            else:
                state, metrics = single(data, state)
                metrics = jax.tree_util.tree_map(lambda m: m[None], metrics)
                n = 1
            pending.append(metrics)
            before, step = step, step + n
            bar.update(n)
            end = step == total
            log_now = crossed(tc.log_every, before, step) or end
            sample_now = run_dir is not None and (crossed(tc.sample_every, before, step) or end)
            overdue = ckpt_minutes is not None and time.monotonic() - t_ckpt >= 60 * ckpt_minutes
            ckpt_now = run_dir is not None and (crossed(tc.ckpt_every, before, step) or end or overdue)
            if not (log_now or sample_now or ckpt_now):
                continue
            # one host sync: fetch this interval's metrics and check them before anything is saved
            chunk = jax.tree_util.tree_map(lambda *m: np.asarray(jnp.concatenate(m)), *pending)
            _check_finite(chunk, pending_from)
            if log_now:
                now = time.perf_counter()
                row = {
                    "step": step,
                    "loss": float(chunk["loss"].mean()),
                    "grad_norm": float(chunk["grad_norm"].mean()),
                    "lr": float(chunk["lr"][-1]),
                    "images_per_sec": (step - n_last) * tc.batch_size / (now - t_last),
                }
                history.append(row)
                pending, pending_from, t_last, n_last = [], step, now, step
                bar.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{row['images_per_sec']:.0f}")
                if tracker is not None:
                    tracker.log({k: v for k, v in row.items() if k != "step"}, step=step)
                if on_log is not None:
                    on_log(step, row)
            paused = time.perf_counter()
            if sample_now:
                grid = {"mesh": mesh}  # a flow run: its own default (Euler, 20 steps)
                if config.diffusion.objective == "eps":
                    grid.update(sampler="ddim", steps=min(GRID_DDIM_STEPS, schedule.num_timesteps))
                bar.set_description(f"{config.name}: sampling a grid ({grid.get('sampler', 'euler')})")
                images = to_host(sample_images(config, state.ema, jax.random.key(step), 64, schedule=schedule, **grid))
                bar.set_description(config.name)
                if main_process:
                    save_png(images, Path(run_dir) / "samples" / f"step_{step:08d}.png")
                if tracker is not None:
                    tracker.log_images("samples", images, step=step)
            if ckpt_now and main_process:
                bar.set_description(f"{config.name}: saving a checkpoint")
                checkpoint.save(run_dir, to_host(state), config, keep=keep)
                bar.set_description(config.name)
                t_ckpt = time.monotonic()
            t_last += time.perf_counter() - paused  # sampling and saving are not training time
    finally:
        bar.close()
    return state, history
