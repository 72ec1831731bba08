"""The sinusoidal timestep embedding (Transformer positional encoding, used by the official code)."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def timestep_embedding(t: Int[Array, ...], dim: int) -> Float[Array, "... dim"]:
    """Embed integer timesteps as ``[sin(t * f_0..f_{h-1}), cos(t * f_0..f_{h-1})]``.

    ``h = dim // 2`` frequencies ``f_i = exp(-log(10000) * i / (h - 1))`` run
    geometrically from 1 down to 1/10000: the sin half first, then the cos half,
    exactly as the official code. An odd ``dim`` gets one zero column at the end.
    ``t`` may be a scalar (one example) or any array of timesteps.
    """
    if dim < 4:
        raise ValueError(f"embedding dim must be >= 4 (two frequencies), got {dim}")
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / (half - 1))
    t = jnp.asarray(t, dtype=jnp.float32)
    args = t[..., None] * freqs.reshape((1,) * t.ndim + (half,))  # (..., half)
    emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
    if dim % 2:
        # a zero column by concatenation, not jnp.pad (see layers.zero_pad_hw: jax 0.7.2's eager pad on CPU)
        emb = jnp.concatenate([emb, jnp.zeros(emb.shape[:-1] + (1,), emb.dtype)], axis=-1)
    return emb
