"""What a run is: the ``TrainState`` (weights, their EMA, Adam's moments, the step, the PRNG key), the optimizer
that updates it, and ``init_state``, a fresh run. ``checkpoint.py`` writes and reads it; ``train.py`` steps it.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

from .config import Config
from .unet import UNet, make_model


class TrainState(eqx.Module):
    """Everything a run needs to continue: weights, their EMA, Adam's moments, the step and the PRNG key."""

    model: UNet
    ema: UNet
    opt_state: PyTree
    step: Array  # int32 scalar, on device
    key: Array  # raw uint32 key data (serialisable); wrap with jax.random.wrap_key_data


def learning_rate(config: Config, step):
    """The learning rate at ``step``: a linear warmup from 0 to ``lr`` (as the official code), then constant."""
    tc = config.train
    warm = jnp.minimum(step / tc.warmup_steps, 1.0) if tc.warmup_steps > 0 else 1.0
    return tc.lr * warm * jnp.ones((), jnp.float32)


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Clip the global gradient norm, then Adam with ``learning_rate``'s schedule."""
    return optax.chain(
        optax.clip_by_global_norm(config.train.grad_clip), optax.adam(lambda step: learning_rate(config, step))
    )


def init_state(config: Config, key: PRNGKeyArray | int | None = None) -> TrainState:
    """A fresh run: the UNet, an EMA that starts as a copy of it, Adam's zero moments, step 0."""
    key = config.train.seed if key is None else key
    if isinstance(key, int):
        key = jax.random.key(key)
    k_model, k_run = jax.random.split(key)
    model = make_model(config, key=k_model)
    ema = jax.tree_util.tree_map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, model)
    opt_state = make_optimizer(config).init(eqx.filter(model, eqx.is_inexact_array))
    return TrainState(model, ema, opt_state, jnp.zeros((), jnp.int32), jax.random.key_data(k_run))
