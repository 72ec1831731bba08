"""The paper's UNet (Ho et al. 2020, appendix B; the official ``models/unet.py``), in Equinox.

It predicts the noise eps in x_t. Acts on ONE channels-last example ``x: (H, W, C)``
with an integer timestep ``t``; batch it with ``jax.vmap``. Layout of the network::

    conv_in -> [ResBlock (+Attn)] x num_res_blocks, Downsample   per level, widths ch * ch_mult
            -> mid: ResBlock, Attn, ResBlock
            -> [ResBlock(concat skip) (+Attn)] x (num_res_blocks + 1), Upsample   per level, reversed
            -> GroupNorm, swish, conv_out

Dropout acts only when a ``key`` is passed and the model is not in inference
mode (``eqx.nn.inference_mode(model)``).

Class-conditional (``ModelConfig.num_classes > 0``, Ho & Salimans 2022): a learned
embedding of the label, one row per class plus one for "no label" (index
num_classes), is added to the time embedding, so every ResBlock sees (t, c) the way
it sees t. ``model(x, t, label)``; without a label it predicts the unconditional eps.
With num_classes = 0 (every unconditional preset) there is no embedding at all: the
parameters, their initial values and the outputs are those of the plain UNet.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .config import Config, ModelConfig, get_preset
from .embedding import timestep_embedding
from .layers import Conv2d, GroupNorm, Linear


class TimeEmbedding(eqx.Module):
    """Sinusoidal embedding of t, then Dense(ch -> 4ch), swish, Dense(4ch -> 4ch)."""

    dense0: Linear
    dense1: Linear
    ch: int = eqx.field(static=True)

    def __init__(self, ch: int, *, key: PRNGKeyArray):
        k0, k1 = jax.random.split(key)
        self.dense0 = Linear(ch, 4 * ch, key=k0)
        self.dense1 = Linear(4 * ch, 4 * ch, key=k1)
        self.ch = ch

    def __call__(self, t: Int[Array, ""]) -> Float[Array, " 4ch"]:
        return self.dense1(jax.nn.swish(self.dense0(timestep_embedding(t, self.ch))))


class ResBlock(eqx.Module):
    """GroupNorm, swish, conv; + projected time embedding; GroupNorm, swish, dropout, conv; + skip."""

    norm1: GroupNorm
    conv1: Conv2d
    temb_proj: Linear
    norm2: GroupNorm
    dropout: eqx.nn.Dropout
    conv2: Conv2d
    nin_shortcut: Linear | None

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, dropout: float, groups: int, *, key, conv_impl="auto"):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = GroupNorm(groups, in_ch)
        self.conv1 = Conv2d(in_ch, out_ch, key=k1, impl=conv_impl)
        self.temb_proj = Linear(temb_dim, out_ch, key=k2)
        self.norm2 = GroupNorm(groups, out_ch)
        self.dropout = eqx.nn.Dropout(dropout)
        self.conv2 = Conv2d(out_ch, out_ch, key=k3, init_scale=0.0, impl=conv_impl)  # block starts as the identity
        self.nin_shortcut = Linear(in_ch, out_ch, key=k4) if in_ch != out_ch else None

    def __call__(self, x: Float[Array, "h w cin"], temb: Float[Array, " d"], *, key=None) -> Float[Array, "h w cout"]:
        h = self.conv1(jax.nn.swish(self.norm1(x)))
        h = h + self.temb_proj(jax.nn.swish(temb))[None, None, :]  # (h, w, cout) + (1, 1, cout)
        h = jax.nn.swish(self.norm2(h))
        if key is not None:
            h = self.dropout(h, key=key)
        h = self.conv2(h)
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(eqx.Module):
    """Single-head self-attention over all H*W positions, with a residual connection."""

    norm: GroupNorm
    q: Linear
    k: Linear
    v: Linear
    proj_out: Linear

    def __init__(self, ch: int, groups: int, *, key: PRNGKeyArray):
        kq, kk, kv, ko = jax.random.split(key, 4)
        self.norm = GroupNorm(groups, ch)
        self.q, self.k, self.v = Linear(ch, ch, key=kq), Linear(ch, ch, key=kk), Linear(ch, ch, key=kv)
        self.proj_out = Linear(ch, ch, key=ko, init_scale=0.0)

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, "h w c"]:
        H, W, C = x.shape
        h = self.norm(x).reshape(H * W, C)
        q, k, v = self.q(h), self.k(h), self.v(h)  # (HW, C) each
        w = jax.nn.softmax((q @ k.T).astype(jnp.float32) * C**-0.5, axis=-1).astype(x.dtype)  # (HW, HW)
        return x + self.proj_out(w @ v).reshape(H, W, C)


class Downsample(eqx.Module):
    """Halve H and W with a stride-2 3x3 convolution."""

    conv: Conv2d

    def __init__(self, ch: int, *, key: PRNGKeyArray, conv_impl: str = "auto"):
        self.conv = Conv2d(ch, ch, stride=2, key=key, impl=conv_impl)

    def __call__(self, x):
        return self.conv(x)


class Upsample(eqx.Module):
    """Double H and W by nearest-neighbour repetition, then a 3x3 convolution."""

    conv: Conv2d

    def __init__(self, ch: int, *, key: PRNGKeyArray, conv_impl: str = "auto"):
        self.conv = Conv2d(ch, ch, key=key, impl=conv_impl)

    def __call__(self, x):
        return self.conv(jnp.repeat(jnp.repeat(x, 2, axis=0), 2, axis=1))


class Level(eqx.Module):
    """The blocks of one resolution: ResBlocks, each optionally followed by attention, then a resampler."""

    blocks: list[ResBlock]
    attns: list[AttnBlock | None]
    resample: Downsample | Upsample | None


class UNet(eqx.Module):
    """eps_theta(x_t, t) (or eps_theta(x_t, t, c) when class-conditional): the noise-prediction network."""

    temb: TimeEmbedding
    label_emb: eqx.nn.Embedding | None
    conv_in: Conv2d
    down: list[Level]
    mid_block1: ResBlock
    mid_attn: AttnBlock
    mid_block2: ResBlock
    up: list[Level]
    norm_out: GroupNorm
    conv_out: Conv2d
    config: ModelConfig = eqx.field(static=True)

    def __init__(self, config: ModelConfig, *, key: PRNGKeyArray):
        c = config
        keys = iter(jax.random.split(key, 8 + 4 * len(c.ch_mult) * (c.num_res_blocks + 2)))
        temb_dim, g = 4 * c.ch, c.num_groups
        self.config = c
        self.temb = TimeEmbedding(c.ch, key=next(keys))
        # its own key (not one of `keys`), so an unconditional UNet draws exactly the weights it always drew
        self.label_emb = (
            eqx.nn.Embedding(c.num_classes + 1, temb_dim, key=jax.random.fold_in(key, 1)) if c.num_classes > 0 else None
        )
        self.conv_in = Conv2d(c.in_channels, c.ch, key=next(keys), impl=c.conv_impl)

        def res(cin, cout):
            return ResBlock(cin, cout, temb_dim, c.dropout, g, key=next(keys), conv_impl=c.conv_impl)

        def attn(ch, res_):
            return AttnBlock(ch, g, key=next(keys)) if res_ in c.attn_resolutions else None

        skip_chs = [c.ch]  # channels of each activation pushed onto the skip stack
        ch, self.down = c.ch, []
        for i, (mult, res_) in enumerate(zip(c.ch_mult, c.resolutions)):
            blocks, attns = [], []
            for _ in range(c.num_res_blocks):
                blocks.append(res(ch, c.ch * mult))
                ch = c.ch * mult
                attns.append(attn(ch, res_))
                skip_chs.append(ch)
            last = i == len(c.ch_mult) - 1
            resample = None if last else Downsample(ch, key=next(keys), conv_impl=c.conv_impl)
            if not last:
                skip_chs.append(ch)
            self.down.append(Level(blocks, attns, resample))

        self.mid_block1 = res(ch, ch)
        self.mid_attn = AttnBlock(ch, g, key=next(keys))
        self.mid_block2 = res(ch, ch)

        self.up = []
        for i in reversed(range(len(c.ch_mult))):
            blocks, attns = [], []
            for _ in range(c.num_res_blocks + 1):
                blocks.append(res(ch + skip_chs.pop(), c.ch * c.ch_mult[i]))
                ch = c.ch * c.ch_mult[i]
                attns.append(attn(ch, c.resolutions[i]))
            up = Upsample(ch, key=next(keys), conv_impl=c.conv_impl) if i != 0 else None
            self.up.append(Level(blocks, attns, up))
        assert not skip_chs

        self.norm_out = GroupNorm(g, ch)
        self.conv_out = Conv2d(ch, c.in_channels, key=next(keys), init_scale=0.0, impl=c.conv_impl)

    @property
    def num_res_blocks_total(self) -> int:
        return sum(len(level.blocks) for level in self.down + self.up) + 2

    @property
    def null_label(self) -> int:
        """The label index that means "no label" (= num_classes)."""
        return self.config.num_classes

    def __call__(
        self,
        x: Float[Array, "h w c"],
        t: Int[Array, ""],
        label: Int[Array, ""] | int | None = None,
        *,
        key: PRNGKeyArray | None = None,
    ):
        c = self.config
        expected = (c.image_size, c.image_size, c.in_channels)
        if x.shape != expected:
            raise ValueError(
                f"UNet expects ONE channels-last image of shape {expected} (H, W, C), got {x.shape}; "
                "batch with jax.vmap and put channels last"
            )
        if jnp.shape(t) != ():
            raise ValueError(f"t must be a scalar timestep for one example, got shape {jnp.shape(t)}")
        n = self.num_res_blocks_total
        keys = iter([None] * n if key is None else jax.random.split(key, n))
        temb = self.temb(t)
        if self.label_emb is not None:  # None means "no label": the extra row, index num_classes
            temb = temb + self.label_emb(jnp.asarray(self.null_label if label is None else label))
        elif label is not None:
            raise ValueError(
                "this UNet is unconditional (num_classes = 0) and takes no label; build it with "
                "ModelConfig(num_classes=...) to condition on classes"
            )
        temb = temb.astype(x.dtype)

        hs = [self.conv_in(x)]
        for level in self.down:
            for block, attn in zip(level.blocks, level.attns):
                h = block(hs[-1], temb, key=next(keys))
                hs.append(attn(h) if attn is not None else h)
            if level.resample is not None:
                hs.append(level.resample(hs[-1]))

        h = self.mid_block1(hs[-1], temb, key=next(keys))
        h = self.mid_attn(h)
        h = self.mid_block2(h, temb, key=next(keys))

        for level in self.up:
            for block, attn in zip(level.blocks, level.attns):
                h = block(jnp.concatenate([h, hs.pop()], axis=-1), temb, key=next(keys))
                h = attn(h) if attn is not None else h
            if level.resample is not None:
                h = level.resample(h)

        return self.conv_out(jax.nn.swish(self.norm_out(h)))


def make_model(preset: Config | ModelConfig | str, *, key: PRNGKeyArray) -> UNet:
    """Build the UNet of a preset (a ``Config``, its ``ModelConfig``, or a preset name)."""
    if isinstance(preset, str):
        preset = get_preset(preset)
    if isinstance(preset, Config):
        preset = preset.model
    return UNet(preset, key=key)


def check_labels(num_classes: int, labels) -> np.ndarray:
    """``labels`` as an integer array; refused in one line unless each is a class of the model, 0 .. num_classes-1."""
    arr = np.asarray(labels)
    if num_classes < 1:
        raise ValueError(
            "this model is unconditional (num_classes = 0) and takes no labels; train a "
            "class-conditional preset (e.g. digits_cond) to choose what it draws"
        )
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"labels must be a non-empty list of integers in 0 .. {num_classes - 1}, got {arr.dtype} "
            f"of shape {arr.shape}; pass one class index per image"
        )
    bad = sorted({int(v) for v in np.unique(arr) if not 0 <= v < num_classes})
    if bad:
        raise ValueError(
            f"label(s) {bad[:10]} outside this model's classes 0 .. {num_classes - 1}; use labels in "
            f"that range, or a model with num_classes = {max(bad) + 1}"
        )
    return arr


def count_params(model: eqx.Module) -> int:
    """The number of trainable scalars (floating-point arrays) in a model; works on ``eqx.filter_eval_shape`` too."""
    leaves = jax.tree_util.tree_leaves(model)
    return sum(int(np.prod(x.shape)) for x in leaves if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact))
