"""Class-conditional sampling with classifier-free guidance (Ho & Salimans 2022, arXiv:2207.12598).

One network learns both eps(x_t, t, c) and eps(x_t, t) = eps(x_t, t, "no label"): training
replaces each label by "no label" with probability ``label_dropout`` (``train.drop_labels``). At
sampling time the two predictions are mixed with a guidance scale w >= 0:

    eps_w(x_t, t, c) = eps(x_t, t) + w * (eps(x_t, t, c) - eps(x_t, t))

Convention here: w = 0 is unconditional sampling, w = 1 plain conditional sampling, w > 1
pushes further along the direction that makes c more likely. Why: eps = -sqrt(1 - abar_t) *
grad log p(x_t), and by Bayes' rule grad log p(x_t | c) = grad log p(x_t) + grad log p(c | x_t),
so eps(x_t, t, c) - eps(x_t, t) = -sqrt(1 - abar_t) * grad log p(c | x_t): the difference is an
implicit classifier's gradient, and w scales it (sampling p(x_t) p(c | x_t)^w).
The paper writes (1 + w') eps(x_t, t, c) - w' eps(x_t, t): the same mix with w' = w - 1
(its w' = 0 is our w = 1).

``Guided`` wraps a conditional UNet with one example's label and the scale into a model with
the plain ``model(x_t, t)`` signature, and ``guided_eps`` (its one place that builds eps) runs
the conditional and unconditional branches as ONE batched forward pass. So every sampler of
``sample.py`` (DDPM, DDIM, and any other that calls ``model(x_t, t)``) samples with guidance
unchanged: ``sample_guided`` vmaps the sampler over the examples, each with its own label.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .sample import sampling_loop
from .unet import check_labels


def guided_eps(model, x_t: Float[Array, "h w c"], t, label, w) -> Float[Array, "h w c"]:
    """eps(x_t, t) + w (eps(x_t, t, c) - eps(x_t, t)) for ONE example: both branches in one batched pass.

    w = 0: the unconditional prediction; w = 1: the conditional one; w > 1: guided beyond it.
    """
    labels = jnp.stack([jnp.asarray(label, jnp.int32), jnp.asarray(model.null_label, jnp.int32)])
    both = jax.vmap(lambda x, c: model(x, t, c))(jnp.stack([x_t, x_t]), labels)  # (2, h, w, c)
    eps_c, eps_u = both[0], both[1]
    return eps_u + w * (eps_c - eps_u)


class Guided(eqx.Module):
    """A conditional UNet with one example's ``label`` and guidance scale ``w`` fixed: ``Guided(...)(x_t, t)``."""

    model: eqx.Module
    label: Array  # int32 scalar: the requested class
    w: Array  # float32 scalar: the guidance scale (an array, so a new w does not recompile)

    def __call__(self, x_t, t, *, key=None):
        return guided_eps(self.model, x_t, t, self.label, self.w)


def check_guidance(config, labels=None, w=None) -> None:
    """Refuse, with one line, a label or guidance scale that this config cannot use."""
    k = config.model.num_classes
    if k == 0 and (labels is not None or w is not None):
        raise ValueError(
            f"{config.name} is unconditional (num_classes = 0): it takes no label or guidance; train "
            "a class-conditional preset (e.g. digits_cond) to choose what it draws"
        )
    if labels is not None:
        check_labels(k, labels)
    if w is not None and not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
        raise ValueError(f"the guidance scale must be a number >= 0 (0: unconditional, 1: conditional), got {w!r}")


@eqx.filter_jit
def _guided_loops(loop, model, schedule, keys, labels, w, shape, loop_kwargs):
    def one(label, key):
        return loop(Guided(model, label, w), schedule, key, shape, **dict(loop_kwargs))[0]

    return jax.vmap(one)(labels, keys)


def sample_guided(
    config, model, key: PRNGKeyArray, labels, w: float = 1.0, *, schedule=None, **sampler
) -> Float[Array, "n h w c"]:
    """One image in [-1, 1] per entry of ``labels``, sampled with guidance scale ``w`` (see the module docstring).

    ``sampler`` takes ``sample.sample_images``'s options (``sampler="ddim", steps=50``, ...). Image i starts from
    noise of ``split(key, n)[i]``, whatever its label and w, so a grid over w shows the same starts.
    """
    check_guidance(config, labels, w)
    labels = jnp.asarray(np.asarray(labels), jnp.int32)
    loop, schedule, shape, kwargs = sampling_loop(config, 1, schedule=schedule, **sampler)
    keys = jax.random.split(key, len(labels))
    return _guided_loops(
        loop, eqx.nn.inference_mode(model), schedule, keys, labels, jnp.float32(w), shape, tuple(sorted(kwargs.items()))
    )
