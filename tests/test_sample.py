import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracle import make_oracle

from nanoddpm_utils.config import get_preset
from nanoddpm_utils.diffusion import q_sample
from nanoddpm_utils.sample import p_sample_loop, sample_images
from nanoddpm_utils.schedule import make_schedule
from nanoddpm_utils.unet import make_model


@pytest.fixture(scope="module")
def image():
    return jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (8, 8, 1)), jnp.float32)


@pytest.mark.parametrize("variance", ["fixedlarge", "fixedsmall"])
@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_oracle_recovers_the_image(image, variance, name):
    schedule = make_schedule(name, 200)
    x = p_sample_loop(make_oracle(schedule, image), schedule, jax.random.key(0), (4, 8, 8, 1), variance=variance)
    assert x.shape == (4, 8, 8, 1)
    np.testing.assert_allclose(x, jnp.broadcast_to(image, x.shape), atol=1e-4)


def test_oracle_without_clipping_also_recovers(image):
    schedule = make_schedule("linear", 100)
    x = p_sample_loop(make_oracle(schedule, image), schedule, jax.random.key(1), (2, 8, 8, 1), clip_x0=False)
    np.testing.assert_allclose(x, jnp.broadcast_to(image, x.shape), atol=1e-3)


def test_compiles_once_per_shape(image):
    schedule = make_schedule("linear", 30)
    oracle = make_oracle(schedule, image)
    p_sample_loop(oracle, schedule, jax.random.key(0), (3, 8, 8, 1))
    traced = len(oracle.calls)
    assert traced >= 1  # traced once for the scan body, not once per step (30 steps)
    assert traced < 30
    p_sample_loop(oracle, schedule, jax.random.key(1), (3, 8, 8, 1))
    assert len(oracle.calls) == traced  # same shape: no new trace
    p_sample_loop(oracle, schedule, jax.random.key(1), (5, 8, 8, 1))
    assert len(oracle.calls) > traced  # new shape: one more


def test_trajectory(image):
    schedule = make_schedule("linear", 50)
    oracle = make_oracle(schedule, image)
    steps = (-1, 40, 10, 0)
    x, traj = p_sample_loop(oracle, schedule, jax.random.key(2), (6, 8, 8, 1), trajectory_steps=steps)
    assert traj.shape == (4, 6, 8, 8, 1)
    np.testing.assert_array_equal(traj[-1], x)  # after t = 0 is the sample
    assert 0.6 < float(traj[0].std()) < 1.4  # x_T is pure noise
    # the distance to the image shrinks along the trajectory
    dist = [float(jnp.abs(traj[i] - image[None]).mean()) for i in range(4)]
    assert dist[0] > dist[1] > dist[2] > dist[3]
    with pytest.raises(ValueError, match="outside -1 .. 49"):
        p_sample_loop(oracle, schedule, jax.random.key(2), (1, 8, 8, 1), trajectory_steps=(50,))


def test_no_noise_at_t0_and_noise_elsewhere(image):
    # one step from a known x_t: at t = 0 the draw is deterministic, at t > 0 it is not
    from nanoddpm_utils.sample import p_sample

    schedule = make_schedule("linear", 100)
    oracle = make_oracle(schedule, image)
    xt = q_sample(schedule, image, 0, jnp.ones_like(image))
    a = p_sample(oracle, schedule, xt, jnp.array(0), jax.random.key(0))
    b = p_sample(oracle, schedule, xt, jnp.array(0), jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    c = p_sample(oracle, schedule, xt, jnp.array(5), jax.random.key(0))
    d = p_sample(oracle, schedule, xt, jnp.array(5), jax.random.key(1))
    assert not np.allclose(c, d)


def test_sample_images_with_a_unet():
    config = get_preset("smoke")
    model = make_model(config, key=jax.random.key(0))
    x = sample_images(config, model, jax.random.key(3), 5)
    assert x.shape == (5, 8, 8, 1)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0  # the last step returns the clipped x0 prediction
    with pytest.raises(ValueError, match="number of samples must be >= 1"):
        sample_images(config, model, jax.random.key(3), 0)
