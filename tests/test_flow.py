"""Flow matching on the straight path: the path's velocity against its derivative, the regression's minimiser and
the samplers against the exact answer on Gaussian data, Euler and Heun against Python loops, and a flow run
trained and sampled by the same ``train``, ``sample_images`` and command line as a DDPM one.

On data x_0 ~ N(MU, S^2) (each pixel apart), x_t = (1 - t) x_0 + t eps is Gaussian, jointly with eps - x_0, so
the best velocity is the regression of eps - x_0 on x_t:
    v*(x, t) = -MU + (t - (1 - t) S^2) / ((1 - t)^2 S^2 + t^2) (x - (1 - t) MU)
and its flow carries z at t = 1 along x_t = (1 - t) MU + sqrt((1 - t)^2 S^2 + t^2) z, to MU + S z at t = 0.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils.__main__ import main
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_dataset
from nanoddpm_utils.flow import TIME_SCALE, flow_interpolate, flow_sample_loop, flow_velocity
from nanoddpm_utils.sample import network_evaluations, sample_images
from nanoddpm_utils.schedule import make_schedule
from nanoddpm_utils.state import init_state
from nanoddpm_utils.train import batch_loss, fit

MU, S = 0.3, 0.5


def v_star(x, t):
    return -MU + (t - (1 - t) * S**2) / ((1 - t) ** 2 * S**2 + t**2) * (x - (1 - t) * MU)


class GaussianVelocity(eqx.Module):
    """The exact velocity for x_0 ~ N(MU, S^2), called as the UNet is: with t * TIME_SCALE."""

    scale: float = 1.0  # 1: v*; another value: a wrong field, to see the checks notice

    def __call__(self, x, t, *, key=None):
        return self.scale * v_star(x, t / TIME_SCALE)


def test_the_velocity_is_the_paths_derivative():
    x0, noise = jnp.asarray([0.2, -0.7]), jnp.asarray([1.1, 0.4])
    for t in (0.0, 0.3, 1.0):
        dxdt = jax.jacfwd(lambda s: flow_interpolate(x0, noise, s))(t)
        np.testing.assert_allclose(dxdt, flow_velocity(x0, noise), rtol=1e-6)
    np.testing.assert_allclose(flow_interpolate(x0, noise, 0.0), x0)  # t = 0 is the data, t = 1 the noise
    np.testing.assert_allclose(flow_interpolate(x0, noise, 1.0), noise)


def test_the_flow_loss_is_least_at_the_exact_velocity():
    """L = E || v(x_t, t) - (eps - x_0) ||^2 is a regression: its minimiser is E[eps - x_0 | x_t] = v*."""
    x0 = MU + S * jax.random.normal(jax.random.key(0), (20_000, 2, 2, 1))
    schedule = make_schedule("linear", 10)  # unused by the flow objective

    def loss(model):
        return float(batch_loss(model, schedule, x0, jax.random.key(1), objective="flow"))

    best = loss(GaussianVelocity())
    assert loss(GaussianVelocity(0.9)) > best and loss(GaussianVelocity(1.1)) > best
    assert loss(GaussianVelocity(-1.0)) > 2 * best  # a flipped sign is far from it
    with pytest.raises(ValueError, match="unknown objective"):
        batch_loss(GaussianVelocity(), schedule, x0[:2], jax.random.key(1), objective="score")


def reference(v, x, n, method):
    """Euler / Heun from t = 1 to 0 as a Python loop in float64."""
    ts = np.linspace(1.0, 0.0, n + 1)
    for t, t_next in zip(ts[:-1], ts[1:]):
        slope = v(x, t)
        x_e = x + (t_next - t) * slope
        x = x_e if method == "euler" else x + (t_next - t) * (slope + v(x_e, t_next)) / 2
    return x


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("n", [1, 3, 10])
def test_the_samplers_match_python_loops(method, n):
    def wobble(x, t, xp=np):
        return 0.8 * xp.tanh(x) - 0.5 * t

    class Wobble(eqx.Module):
        def __call__(self, x, t):
            return wobble(x, t / TIME_SCALE, jnp)

    z = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 3, 1)), jnp.float32)
    x = flow_sample_loop(Wobble(), None, jax.random.key(0), z.shape, num_steps=n, method=method, x_T=z)
    np.testing.assert_allclose(x, reference(wobble, np.asarray(z, np.float64), n, method), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method, order", [("euler", 1), ("heun", 2)])
def test_the_ode_lands_on_the_exact_answer_at_its_order(method, order):
    z = jnp.asarray(np.random.default_rng(1).normal(size=(64, 2, 2, 1)), jnp.float32)
    exact = MU + S * np.asarray(z)

    def error(n):
        x = flow_sample_loop(GaussianVelocity(), None, jax.random.key(0), z.shape, num_steps=n, method=method, x_T=z)
        return float(np.abs(np.asarray(x) - exact).max())

    e = [error(n) for n in (10, 20, 40)]
    ratios = [e[0] / e[1], e[1] / e[2]]
    assert all(2**order * 0.8 < r < 2**order * 1.25 for r in ratios), (e, ratios)  # halving h: error / 2^order
    assert e[2] < (0.1 if order == 1 else 0.002)


def test_a_flow_run_trains_and_samples_with_the_same_code():
    config = get_preset("smoke").replace(diffusion={"objective": "flow"})
    data = load_dataset("digits", split="train", image_size=8, channels=1)
    state, _ = fit(config, data, state=init_state(config, jax.random.key(0)), progress=False)
    for sampler, calls in ((None, 20), ("euler", 5), ("heun", 10)):
        steps = None if sampler is None else 5
        x = sample_images(config, state.ema, jax.random.key(0), 3, sampler=sampler, steps=steps)
        assert x.shape == (3, 8, 8, 1) and bool(jnp.all(jnp.isfinite(x)))
        assert network_evaluations(config, sampler, steps) == calls
    for sampler in ("ddpm", "ddim", "dpm++2m", "edm"):
        with pytest.raises(ValueError, match="velocity of a flow.*euler, heun"):
            sample_images(config, state.ema, jax.random.key(0), 2, sampler=sampler)
    eps_config = get_preset("smoke")
    with pytest.raises(ValueError, match=r"the noise \(eps\).*ddpm, ddim, dpm\+\+2m, edm"):
        sample_images(eps_config, state.ema, jax.random.key(0), 2, sampler="euler")


def test_the_command_line_trains_and_samples_a_flow(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--preset",
                "smoke",
                "--set",
                "diffusion.objective=flow",
                "--out",
                str(run),
                "--steps",
                "10",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "sample",
                "--run",
                str(run),
                "--num",
                "4",
                "--out",
                str(tmp_path / "h.npz"),
                "--sampler",
                "heun",
                "--steps",
                "4",
            ]
        )
        == 0
    )
    assert "with heun: 8 network evaluations each" in capsys.readouterr().out
    assert np.load(tmp_path / "h.npz")["samples"].shape == (4, 8, 8, 1)
    assert main(["sample", "--run", str(run), "--num", "2", "--out", str(tmp_path / "d.npz"), "--sampler", "ddim"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "velocity of a flow" in err and "euler, heun" in err, err
    assert not (tmp_path / "d.npz").exists()
    assert main(["sample", "--run", str(run), "--num", "2", "--out", str(tmp_path / "c.npz"), "--churn", "5"]) == 2
    assert "churn=5.0 needs sampler='edm'" in capsys.readouterr().err
