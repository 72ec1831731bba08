import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils.embedding import timestep_embedding


def test_shape_scalar_and_batch():
    assert timestep_embedding(jnp.array(3), 128).shape == (128,)
    assert timestep_embedding(jnp.arange(5), 128).shape == (5, 128)
    assert timestep_embedding(jnp.array(3), 7).shape == (7,)


def test_odd_dim_is_the_even_embedding_and_a_zero_column():
    t = jnp.array([0, 3, 999])
    odd, even = np.asarray(timestep_embedding(t, 9)), np.asarray(timestep_embedding(t, 8))
    np.testing.assert_array_equal(odd[:, :8], even)
    np.testing.assert_array_equal(odd[:, 8], 0.0)


def test_values_at_t0_are_sin0_then_cos0():
    e = np.asarray(timestep_embedding(jnp.array(0), 16))
    np.testing.assert_array_equal(e[:8], 0.0)
    np.testing.assert_array_equal(e[8:], 1.0)


def test_matches_formula_written_out():
    dim, t = 10, 37
    half = dim // 2
    expected = [math.sin(t * 10000 ** (-i / (half - 1))) for i in range(half)]
    expected += [math.cos(t * 10000 ** (-i / (half - 1))) for i in range(half)]
    np.testing.assert_allclose(timestep_embedding(jnp.array(t), dim), expected, rtol=1e-4, atol=1e-5)


def test_distinct_rows_for_distinct_t():
    e = np.asarray(timestep_embedding(jnp.arange(1000), 128))
    d = np.linalg.norm(e[:, None] - e[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert d.min() > 1e-2


def test_vmap_equals_batch():
    t = jnp.arange(7)
    np.testing.assert_allclose(jax.vmap(lambda s: timestep_embedding(s, 32))(t), timestep_embedding(t, 32))


def test_dim_too_small():
    with pytest.raises(ValueError, match="embedding dim must be >= 4"):
        timestep_embedding(jnp.array(1), 2)
