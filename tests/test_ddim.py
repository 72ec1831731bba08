"""DDIM (Song et al. 2021): respaced timesteps, the oracle, determinism, DDPM as its eta = 1 limit, one compile."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracle import make_oracle

from nanoddpm_utils.config import get_preset
from nanoddpm_utils.sample import ddim_sample_loop, p_sample_loop, sample_images
from nanoddpm_utils.schedule import ddim_timesteps, make_schedule
from nanoddpm_utils.unet import make_model


class Shrink(eqx.Module):
    """A cheap imperfect model (eps = 0.8 x_t): the samples depend on every step's noise."""

    def __call__(self, x, t):
        return 0.8 * x


@pytest.fixture(scope="module")
def image():
    return jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (8, 8, 1)), jnp.float32)


@pytest.mark.parametrize("T, S", [(1000, 1), (1000, 2), (1000, 50), (1000, 1000), (100, 10), (100, 99), (7, 3)])
def test_timesteps_are_respaced(T, S):
    ts = ddim_timesteps(T, S)
    assert ts.shape == (S,) and ts.dtype == np.int32
    assert ts[0] == T - 1
    assert np.all(np.diff(ts) < 0)  # strictly decreasing
    assert ts[-1] == (0 if S >= 2 else T - 1)
    if S == T:
        np.testing.assert_array_equal(ts, np.arange(T - 1, -1, -1))


@pytest.mark.parametrize("S", [0, 11, 2.5, True])
def test_timesteps_reject_bad_counts(S):
    with pytest.raises(ValueError, match="1 .. T = 10"):
        ddim_timesteps(10, S)


def test_each_step_goes_to_the_next_listed_timestep():
    # a model that records the timesteps it is called at; with eps = 0 the result shows each step's t_prev
    T, S = 100, 7
    schedule = make_schedule("linear", T)
    ts = ddim_timesteps(T, S)
    seen = []

    class Recorder(eqx.Module):
        def __call__(self, x, t):
            jax.debug.callback(lambda t: seen.append(int(t)), t)
            return jnp.zeros_like(x)

    x_T = jnp.ones((1, 2, 2, 1))
    x = ddim_sample_loop(Recorder(), schedule, jax.random.key(0), (1, 2, 2, 1), num_steps=S, x_T=x_T, clip_x0=False)
    assert seen == list(ts)
    # with eps = 0 and eta = 0 each step rescales by sqrt(abar_prev / abar_t), so the product telescopes
    # to 1 / sqrt(abar_{T-1}) only if every step's t_prev is the next listed timestep
    abar = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
    np.testing.assert_allclose(x, 1 / np.sqrt(abar[-1]) * np.ones((1, 2, 2, 1)), rtol=1e-4)


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("T, S", [(100, 1), (100, 10), (100, 50), (1000, 10)])
def test_oracle_recovers_the_image(image, T, S, eta):
    schedule = make_schedule("linear", T)
    x = ddim_sample_loop(make_oracle(schedule, image), schedule, jax.random.key(0), (3, 8, 8, 1), num_steps=S, eta=eta)
    np.testing.assert_allclose(x, jnp.broadcast_to(image, x.shape), atol=1e-4)


def test_eta0_is_deterministic_given_x_T():
    schedule = make_schedule("linear", 50)
    shape = (4, 8, 8, 1)
    a = ddim_sample_loop(Shrink(), schedule, jax.random.key(0), shape, num_steps=10)
    np.testing.assert_array_equal(a, ddim_sample_loop(Shrink(), schedule, jax.random.key(0), shape, num_steps=10))
    # x_T is drawn from the key as DDPM draws it: the same key starts both samplers from the same noise
    _, traj = p_sample_loop(Shrink(), schedule, jax.random.key(0), shape, trajectory_steps=(-1,))
    b = ddim_sample_loop(Shrink(), schedule, jax.random.key(7), shape, num_steps=10, x_T=traj[0])
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)  # another key, same x_T: eta = 0 ignores the loop noise
    c = ddim_sample_loop(Shrink(), schedule, jax.random.key(0), shape, num_steps=10, eta=1.0)
    d = ddim_sample_loop(Shrink(), schedule, jax.random.key(7), shape, num_steps=10, eta=1.0, x_T=traj[0])
    assert not np.allclose(c, d)  # eta = 1 does use it
    assert not np.allclose(a, ddim_sample_loop(Shrink(), schedule, jax.random.key(1), shape, num_steps=10))


@pytest.mark.parametrize("clip_x0", [True, False])
def test_eta1_on_all_steps_is_ddpm_with_posterior_variance(clip_x0):
    # DDIM's eq. 16: eta = 1, S = T is the DDPM sampler with sigma_t^2 = beta-tilde_t, step for step
    schedule = make_schedule("linear", 40)
    key, shape = jax.random.key(5), (3, 8, 8, 1)
    ddim = ddim_sample_loop(Shrink(), schedule, key, shape, num_steps=40, eta=1.0, clip_x0=clip_x0)
    ddpm = p_sample_loop(Shrink(), schedule, key, shape, variance="fixedsmall", clip_x0=clip_x0)
    np.testing.assert_allclose(ddim, ddpm, rtol=1e-4, atol=1e-4)
    assert not np.allclose(
        ddim, ddim_sample_loop(Shrink(), schedule, key, shape, num_steps=40, eta=0.0, clip_x0=clip_x0)
    )


def test_compiles_once_per_shape(image):
    schedule = make_schedule("linear", 100)
    oracle = make_oracle(schedule, image)
    ddim_sample_loop(oracle, schedule, jax.random.key(0), (3, 8, 8, 1), num_steps=20)
    traced = len(oracle.calls)
    assert 1 <= traced < 20  # the scan body is traced once, not once per step
    ddim_sample_loop(oracle, schedule, jax.random.key(1), (3, 8, 8, 1), num_steps=20)
    assert len(oracle.calls) == traced  # same shape, another key: no new trace
    ddim_sample_loop(oracle, schedule, jax.random.key(1), (5, 8, 8, 1), num_steps=20)
    assert len(oracle.calls) > traced


def test_sample_images_with_ddim_and_errors():
    config = get_preset("smoke")
    model = make_model(config, key=jax.random.key(0))
    x = sample_images(config, model, jax.random.key(3), 4, sampler="ddim", steps=5)
    assert x.shape == (4, 8, 8, 1) and bool(jnp.all(jnp.isfinite(x)))
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0  # the last step returns the clipped x0 prediction
    with pytest.raises(ValueError, match="needs sampler='ddim'"):
        sample_images(config, model, jax.random.key(3), 2, steps=5)
    with pytest.raises(ValueError, match="needs sampler='ddim'"):
        sample_images(config, model, jax.random.key(3), 2, eta=0.5)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_images(config, model, jax.random.key(3), 2, sampler="plms")
    with pytest.raises(ValueError, match="eta must lie in"):
        sample_images(config, model, jax.random.key(3), 2, sampler="ddim", steps=5, eta=1.5)
    with pytest.raises(ValueError, match="1 .. T = 50"):
        sample_images(config, model, jax.random.key(3), 2, sampler="ddim", steps=51)
