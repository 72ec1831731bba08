"""The channels-last layers against independent references (XLA's conv, NumPy group norm)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils.layers import Conv2d, GroupNorm, Linear, conv2d_matmul, conv2d_xla, resolve_conv_impl


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size, cin, cout", [(8, 3, 5), (7, 4, 2), (16, 8, 8)])
def test_matmul_conv_equals_xla_conv_values_and_gradients(stride, size, cin, cout):
    kx, kw = jax.random.split(jax.random.key(size * stride))
    x = jax.random.normal(kx, (2, size, size, cin))
    w = jax.random.normal(kw, (3, 3, cin, cout))
    a = jax.vmap(conv2d_xla, (0, None, None))(x, w, stride)
    b = jax.vmap(conv2d_matmul, (0, None, None))(x, w, stride)
    assert a.shape == b.shape == (2, -(-size // stride), -(-size // stride), cout)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)

    def loss(conv):
        return lambda w, x: jnp.sum(jnp.sin(jax.vmap(conv, (0, None, None))(x, w, stride)))

    ga = jax.grad(loss(conv2d_xla), argnums=(0, 1))(w, x)
    gb = jax.grad(loss(conv2d_matmul), argnums=(0, 1))(w, x)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, rtol=1e-3, atol=1e-3)


def test_conv_against_numpy_loop():
    x = np.random.default_rng(0).normal(size=(5, 5, 2)).astype(np.float32)
    w = np.random.default_rng(1).normal(size=(3, 3, 2, 3)).astype(np.float32)
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    ref = np.zeros((5, 5, 3), np.float32)
    for i in range(5):
        for j in range(5):
            ref[i, j] = np.einsum("abc,abco->o", xp[i : i + 3, j : j + 3], w)
    for impl in ("xla", "matmul"):
        y = (conv2d_matmul if impl == "matmul" else conv2d_xla)(jnp.asarray(x), jnp.asarray(w), 1)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_conv_impl_choice():
    assert resolve_conv_impl("auto") == ("matmul" if jax.default_backend() == "cpu" else "xla")
    assert resolve_conv_impl("xla") == "xla"
    with pytest.raises(ValueError, match="unknown conv_impl 'cudnn'"):
        Conv2d(1, 1, key=jax.random.key(0), impl="cudnn")


def test_group_norm_against_numpy():
    x = np.random.default_rng(2).normal(size=(4, 4, 8)).astype(np.float32) * 3 + 1
    gn = GroupNorm(2, 8)
    g = x.reshape(4, 4, 2, 4)
    ref = (g - g.mean(axis=(0, 1, 3), keepdims=True)) / np.sqrt(g.var(axis=(0, 1, 3), keepdims=True) + 1e-6)
    np.testing.assert_allclose(gn(jnp.asarray(x)), ref.reshape(4, 4, 8), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="12 channels do not split into 8 groups"):
        GroupNorm(8, 12)


def test_linear_is_a_1x1_conv():
    lin = Linear(3, 4, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (5, 5, 3))
    y = conv2d_xla(x, lin.weight.reshape(1, 1, 3, 4), 1) + lin.bias[None, None, :]
    np.testing.assert_allclose(lin(x), y, rtol=1e-5, atol=1e-5)
