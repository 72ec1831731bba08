"""The few channels-last layers the UNet needs, in Equinox's style.

Equinox's Conv2d and GroupNorm are channels-first ``(C, H, W)``. We keep images
channels-last ``(H, W, C)`` for one reason: on XLA:CPU a channels-first convolution
inside a ``lax.scan``/``fori_loop`` body runs ~10x slower than the same convolution
outside it (jax-ml/jax#12868), while a channels-last one runs as fast in the loop as
outside (DESIGN.md, Conventions). Each layer acts on ONE example.

Initialisation follows the official code: variance scaling (fan_avg, uniform),
zero biases, and ``init_scale=0`` for the layers that close a residual branch so
each block starts as the identity.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .config import CONV_IMPLS


def _variance_scaling(key, shape, scale):
    # fan_avg uniform over the last two axes (in, out); official code uses 1e-10 for "zero" init
    init = jax.nn.initializers.variance_scaling(max(scale, 1e-10), "fan_avg", "uniform", in_axis=-2, out_axis=-1)
    return init(key, shape, jnp.float32)


class Linear(eqx.Module):
    """A dense layer on the last axis; on an image this is a 1x1 convolution (the official code's ``nin``)."""

    weight: Float[Array, "cin cout"]
    bias: Float[Array, " cout"]

    def __init__(self, in_features: int, out_features: int, *, key: PRNGKeyArray, init_scale: float = 1.0):
        self.weight = _variance_scaling(key, (in_features, out_features), init_scale)
        self.bias = jnp.zeros((out_features,), jnp.float32)

    def __call__(self, x: Float[Array, "... cin"]) -> Float[Array, "... cout"]:
        bias = self.bias.astype(x.dtype).reshape((1,) * (x.ndim - 1) + (-1,))
        return x @ self.weight.astype(x.dtype) + bias


def conv2d_xla(x: Float[Array, "h w cin"], w: Float[Array, "kh kw cin cout"], stride: int):
    """XLA's native convolution ("SAME" padding, as TensorFlow's, also for stride 2)."""
    return jax.lax.conv_general_dilated(
        x[None], w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )[0]


def zero_pad_hw(x: Float[Array, "h w c"], top: int, bottom: int, left: int, right: int):
    """``x`` with rows of zeros above and below and columns of zeros left and right, built by concatenation.

    Not ``jnp.pad``: on jax 0.7.2 (Colab's) XLA:CPU's pad has been seen to leave some of the new entries
    uninitialised (NaN or garbage; jax-ml/jax#39120). Concatenating explicit zeros gives the same array
    on every version, and its gradient is a slice.
    """
    h, w, c = x.shape
    x = jnp.concatenate([jnp.zeros((top, w, c), x.dtype), x, jnp.zeros((bottom, w, c), x.dtype)], axis=0)
    rows = h + top + bottom
    return jnp.concatenate([jnp.zeros((rows, left, c), x.dtype), x, jnp.zeros((rows, right, c), x.dtype)], axis=1)


def conv2d_matmul(x: Float[Array, "h w cin"], w: Float[Array, "kh kw cin cout"], stride: int):
    """The same convolution as ONE matmul: gather the kh*kw shifted copies of x (im2col), then @ w.

    Why: on XLA:CPU the weight gradient of a native convolution inside a
    ``lax.scan``/``while`` body falls off the fast path (measured here: 1 GFLOP/s in
    the loop vs ~100 outside; jax-ml/jax#12868), while matmuls stay fast in loops
    (~150-250 GFLOP/s). Its gradients are matmuls, pads and slices too.
    """
    kh, kw, cin, cout = w.shape
    H, W, _ = x.shape
    Ho, Wo = -(-H // stride), -(-W // stride)  # "SAME": ceil(H / stride)
    ph, pw = max((Ho - 1) * stride + kh - H, 0), max((Wo - 1) * stride + kw - W, 0)
    xp = zero_pad_hw(x, ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)
    taps = [
        xp[i : i + (Ho - 1) * stride + 1 : stride, j : j + (Wo - 1) * stride + 1 : stride]
        for i in range(kh)
        for j in range(kw)
    ]  # kh*kw arrays (Ho, Wo, cin), in w's (i, j) order
    return jnp.concatenate(taps, axis=-1) @ w.reshape(kh * kw * cin, cout)


def resolve_conv_impl(impl: str) -> str:
    """ "auto" is the im2col matmul on CPU and XLA's convolution on GPU/TPU (where it is the fast path)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv_impl {impl!r}; choose one of {CONV_IMPLS}")
    if impl == "auto":
        return "matmul" if jax.default_backend() == "cpu" else "xla"
    return impl


class Conv2d(eqx.Module):
    """A channels-last 2-D convolution with "SAME" padding (as TensorFlow's, also for stride 2)."""

    weight: Float[Array, "kh kw cin cout"]  # HWIO
    bias: Float[Array, " cout"]
    stride: int = eqx.field(static=True)
    impl: str = eqx.field(static=True)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size=3, stride=1, *, key, init_scale=1.0, impl="auto"
    ):
        shape = (kernel_size, kernel_size, in_channels, out_channels)
        self.weight = _variance_scaling(key, shape, init_scale)
        self.bias = jnp.zeros((out_channels,), jnp.float32)
        self.stride = stride
        resolve_conv_impl(impl)  # validate early
        self.impl = impl

    def __call__(self, x: Float[Array, "h w cin"]) -> Float[Array, "h2 w2 cout"]:
        conv = conv2d_matmul if resolve_conv_impl(self.impl) == "matmul" else conv2d_xla
        y = conv(x, self.weight.astype(x.dtype), self.stride)
        return y + self.bias.astype(x.dtype)[None, None, :]


class GroupNorm(eqx.Module):
    """Group normalisation over (H, W, C/G) per group, with a per-channel scale and shift."""

    weight: Float[Array, " c"]
    bias: Float[Array, " c"]
    groups: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(self, groups: int, channels: int, eps: float = 1e-6):
        if channels % groups:
            raise ValueError(
                f"GroupNorm: {channels} channels do not split into {groups} groups; "
                "choose widths that are multiples of num_groups"
            )
        self.weight = jnp.ones((channels,), jnp.float32)
        self.bias = jnp.zeros((channels,), jnp.float32)
        self.groups = groups
        self.eps = eps

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, "h w c"]:
        h, w, c = x.shape
        # statistics in float32 even when activations are bfloat16
        g = x.astype(jnp.float32).reshape(h, w, self.groups, c // self.groups)
        mean = g.mean(axis=(0, 1, 3), keepdims=True)
        var = g.var(axis=(0, 1, 3), keepdims=True)
        g = (g - mean) * jax.lax.rsqrt(var + self.eps)
        return (g.reshape(h, w, c) * self.weight[None, None, :] + self.bias[None, None, :]).astype(x.dtype)
