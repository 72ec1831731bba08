"""Few-step samplers: the spacings, DPM-Solver++(2M) against a plain Python loop written here from the paper,
and every sampler against the exact answer on Gaussian data.

On data x_0 ~ N(mu, s^2) (each pixel independently) the best noise predictor is known in closed form:
x_t = alpha x_0 + sigma eps is jointly Gaussian with eps, so
    E[eps | x_t] = Cov(eps, x_t) / Var(x_t) (x_t - alpha mu) = sigma (x_t - alpha mu) / (alpha^2 s^2 + sigma^2),
and a sampler that solves the reverse process well must end at mean mu and standard deviation s.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils.config import get_preset
from nanoddpm_utils.sample import ddim_sample_loop, p_sample_loop, sample_images
from nanoddpm_utils.schedule import ddim_timesteps, make_schedule
from nanoddpm_utils.solver import dpm_solver_sample_loop
from nanoddpm_utils.unet import make_model

MU, S = 0.3, 0.5


def linear_abar(T):
    return np.cumprod(1 - np.linspace(1e-4, 0.02, T))  # the paper's schedule, in float64, written out


class GaussianEps(eqx.Module):
    """The exact eps predictor for x_0 ~ N(MU, S^2)."""

    abar: jax.Array

    def __call__(self, x, t):
        a, sig2 = jnp.sqrt(self.abar[t]), 1.0 - self.abar[t]
        return jnp.sqrt(sig2) * (x - a * MU) / (a**2 * S**2 + sig2)


def gaussian_eps_np(x, abar_t):
    a, sig2 = math.sqrt(abar_t), 1.0 - abar_t
    return math.sqrt(sig2) * (x - a * MU) / (a**2 * S**2 + sig2)


class Wobble(eqx.Module):
    """An imperfect model that depends on x and t nonlinearly, to exercise every coefficient."""

    def __call__(self, x, t):
        return 0.8 * jnp.tanh(x) + 0.001 * t


def wobble_np(x, t):
    return 0.8 * np.tanh(x) + 0.001 * t


def dpm_solver_pp_2m_reference(eps_fn, abar, ts, x, clip):
    """DPM-Solver++(2M) as a Python loop in float64, from the paper's Algorithm 2 (multistep, data prediction):
    lambda = log(alpha / sigma); the first step first order; later ones use r = h_prev / h and
    D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}; the last step lands on x_0, where it returns the data prediction."""
    x0_prev, h_prev = None, None
    for i, t in enumerate(ts):
        alpha, sigma = math.sqrt(abar[t]), math.sqrt(1 - abar[t])
        x0 = (x - sigma * eps_fn(x, t)) / alpha
        if clip:
            x0 = np.clip(x0, -1, 1)
        if i == len(ts) - 1:
            return x0
        t_next = ts[i + 1]
        alpha_n, sigma_n = math.sqrt(abar[t_next]), math.sqrt(1 - abar[t_next])
        h = math.log(alpha_n / sigma_n) - math.log(alpha / sigma)
        if x0_prev is None:
            d = x0
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_prev
        x = sigma_n / sigma * x - alpha_n * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
    raise AssertionError("unreachable")


def ddim_reference(eps_fn, abar, ts, x):
    """DDIM eta = 0 (the DDIM paper's eq. 12) as a Python loop in float64, no clipping."""
    for i, t in enumerate(ts):
        ab_prev = abar[ts[i + 1]] if i + 1 < len(ts) else 1.0
        eps = eps_fn(x, t)
        x0 = (x - math.sqrt(1 - abar[t]) * eps) / math.sqrt(abar[t])
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
    return x


# --------------------------------------------------------------------------- spacings
@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "trailing"])
@pytest.mark.parametrize("T", [7, 100, 1000])
def test_every_spacing_starts_at_pure_noise_and_strictly_decreases(T, spacing):
    for S in range(1, T + 1):
        ts = ddim_timesteps(T, S, spacing)
        assert ts.shape == (S,) and ts.dtype == np.int32 and ts[0] == T - 1 and ts[-1] >= 0
        assert np.all(np.diff(ts) < 0)
    np.testing.assert_array_equal(ddim_timesteps(T, T, spacing), np.arange(T - 1, -1, -1))  # S = T: every step


def test_the_spacings_are_those_of_the_papers():
    # trailing (Lin et al. 2023, Table 2): T = 1000, S = 10 -> 999, 899, ..., 99
    np.testing.assert_array_equal(ddim_timesteps(1000, 10, "trailing"), np.arange(999, 0, -100))
    # quadratic: t_i = (T-1) u_i^2 for u evenly spaced from 1 to 0, so the gaps shrink towards t = 0
    ts = ddim_timesteps(1000, 10, "quadratic")
    np.testing.assert_array_equal(ts, np.round(999 * (np.arange(9, -1, -1) / 9) ** 2))
    assert np.all(np.diff(ts[::-1], 2) > 0)
    np.testing.assert_array_equal(ddim_timesteps(1000, 5, "uniform"), [999, 749, 500, 250, 0])
    with pytest.raises(ValueError, match="unknown spacing 'log'"):
        ddim_timesteps(1000, 10, "log")


@pytest.mark.parametrize("spacing", ["quadratic", "trailing"])
def test_ddim_follows_the_spacing(spacing):
    T, steps = 100, 7
    schedule, x_T = make_schedule("linear", T), jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 3, 1)))
    x = ddim_sample_loop(
        Wobble(), schedule, jax.random.key(0), x_T.shape, num_steps=steps, clip_x0=False, spacing=spacing, x_T=x_T
    )
    ref = ddim_reference(wobble_np, linear_abar(T), ddim_timesteps(T, steps, spacing), np.asarray(x_T, np.float64))
    np.testing.assert_allclose(x, ref, rtol=2e-4, atol=2e-4)


# --------------------------------------------------------------------------- DPM-Solver++(2M)
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize(
    "steps, spacing",
    [(1, "uniform"), (2, "uniform"), (3, "trailing"), (10, "uniform"), (10, "quadratic"), (25, "trailing")],
)
def test_dpm_solver_matches_a_python_loop_of_the_paper(steps, spacing, clip):
    T = 1000
    schedule = make_schedule("linear", T)
    x_T = jnp.asarray(np.random.default_rng(1).normal(size=(2, 4, 4, 1)), jnp.float32)
    x = dpm_solver_sample_loop(
        Wobble(), schedule, jax.random.key(0), x_T.shape, num_steps=steps, clip_x0=clip, spacing=spacing, x_T=x_T
    )
    ref = dpm_solver_pp_2m_reference(
        wobble_np, linear_abar(T), ddim_timesteps(T, steps, spacing), np.asarray(x_T, np.float64), clip
    )
    np.testing.assert_allclose(x, ref, rtol=1e-3, atol=1e-3)


def test_dpm_solver_is_second_order_not_ddim():
    # with one or two steps it has no history and is DDIM; from three on it is not
    schedule = make_schedule("linear", 1000)
    x_T = jnp.asarray(np.random.default_rng(2).normal(size=(1, 4, 4, 1)), jnp.float32)
    for steps, same in ((2, True), (10, False)):
        a = dpm_solver_sample_loop(
            Wobble(), schedule, jax.random.key(0), x_T.shape, num_steps=steps, clip_x0=False, x_T=x_T
        )
        b = ddim_sample_loop(Wobble(), schedule, jax.random.key(0), x_T.shape, num_steps=steps, clip_x0=False, x_T=x_T)
        assert np.allclose(a, b, atol=1e-4) == same


# --------------------------------------------------------------------------- the Gaussian toy: exact answers
def affine_map(loop, T, **kwargs):
    """A deterministic sampler with the linear Gaussian eps is x_0 = A x_T + B; so its samples are N(B, A^2)."""
    schedule = make_schedule("linear", T)
    model = GaussianEps(schedule.alphas_cumprod)
    zero, one = (
        loop(model, schedule, jax.random.key(0), (1, 1, 1, 1), clip_x0=False, x_T=jnp.full((1, 1, 1, 1), v), **kwargs)
        for v in (0.0, 1.0)
    )
    b = float(zero.ravel()[0])
    return float(one.ravel()[0]) - b, b


# The tolerance on the Gaussian toy (MU = 0.3, S = 0.5, T = 1000): at 100 steps every sampler's mean is within 0.01
# of MU and its standard deviation within 3% of S. The deterministic samplers are checked exactly (no Monte Carlo).
@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "trailing"])
@pytest.mark.parametrize("loop", [ddim_sample_loop, dpm_solver_sample_loop])
def test_few_step_samplers_reach_the_gaussian_data(loop, spacing):
    a, b = affine_map(loop, 1000, num_steps=100, spacing=spacing)
    assert b == pytest.approx(MU, abs=0.01) and abs(a) == pytest.approx(S, rel=0.03)


def test_ddim_is_first_order():
    # DDIM (Euler in lambda) shrinks the standard deviation; its error falls like 1 / steps: 2.5x more steps,
    # about 2.5x less error
    err = {steps: S - abs(affine_map(ddim_sample_loop, 1000, num_steps=steps)[0]) for steps in (20, 50)}
    assert err[20] > 0 and 1.8 < err[20] / err[50] < 3.2


@pytest.mark.parametrize("spacing", ["quadratic", "trailing"])
def test_dpm_solver_is_closer_than_ddim(spacing):
    # second order: at 50 steps within 0.5% of S (DDIM: about 5% short); at 20 steps less than half DDIM's error.
    # (On "uniform" spacing, whose last gap 111 -> 0 is wide in lambda, the extrapolation overshoots below 50 steps.)
    errors = {}
    for steps in (20, 50):
        for name, loop in (("ddim", ddim_sample_loop), ("dpm++2m", dpm_solver_sample_loop)):
            a, b = affine_map(loop, 1000, num_steps=steps, spacing=spacing)
            errors[name, steps] = abs(abs(a) - S) + abs(b - MU)
    assert errors["dpm++2m", 50] < 0.005 * S + 0.002 < errors["ddim", 50]
    assert errors["dpm++2m", 20] < 0.5 * errors["ddim", 20]


def test_ddpm_reaches_the_gaussian_data():
    # 40,000 draws: the mean within 3 standard errors (0.0075) of MU, the standard deviation within 3% of S (the
    # chain of 1000 steps is itself a discretisation: it ends 1.7% narrow with beta-tilde, 0.8% with beta), and
    # the larger variance beta (section 3.2 of the paper) draws the wider samples.
    schedule = make_schedule("linear", 1000)
    stds = {}
    for variance in ("fixedsmall", "fixedlarge"):
        x = p_sample_loop(
            GaussianEps(schedule.alphas_cumprod),
            schedule,
            jax.random.key(0),
            (10000, 2, 2, 1),
            variance=variance,
            clip_x0=False,
        )
        x = np.asarray(x, np.float64).ravel()
        assert abs(x.mean() - MU) < 3 * S / math.sqrt(len(x))
        stds[variance] = x.std()
        assert stds[variance] == pytest.approx(S, rel=0.03)
    assert stds["fixedsmall"] < stds["fixedlarge"], stds


# --------------------------------------------------------------------------- one compile, the public entry point
def test_dpm_solver_compiles_once_per_shape():
    traces = []

    class Counting(eqx.Module):
        def __call__(self, x, t):
            traces.append(1)  # runs only while tracing
            return 0.5 * x

    schedule = make_schedule("linear", 100)
    dpm_solver_sample_loop(Counting(), schedule, jax.random.key(0), (2, 4, 4, 1), num_steps=20)
    traced = len(traces)
    assert 1 <= traced < 20
    dpm_solver_sample_loop(Counting(), schedule, jax.random.key(1), (2, 4, 4, 1), num_steps=20)
    assert len(traces) == traced


def test_sample_images_with_dpm_solver_and_errors():
    config = get_preset("smoke")
    model = make_model(config, key=jax.random.key(0))
    for spacing in ("uniform", "trailing"):
        x = sample_images(config, model, jax.random.key(3), 2, sampler="dpm++2m", steps=4, spacing=spacing)
        assert x.shape == (2, 8, 8, 1) and bool(jnp.all(jnp.isfinite(x)))
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0  # the last step is the clipped x0 prediction
    with pytest.raises(ValueError, match="deterministic"):
        sample_images(config, model, jax.random.key(3), 2, sampler="dpm++2m", eta=0.5)
    with pytest.raises(ValueError, match="needs sampler='ddim' or 'dpm\\+\\+2m'"):
        sample_images(config, model, jax.random.key(3), 2, spacing="trailing")
    with pytest.raises(ValueError, match="unknown spacing"):
        sample_images(config, model, jax.random.key(3), 2, sampler="dpm++2m", spacing="cubic")
    with pytest.raises(ValueError, match="1 .. T = 50"):
        sample_images(config, model, jax.random.key(3), 2, sampler="dpm++2m", steps=51)


def test_the_command_line_samples_with_dpm_solver(tmp_path, capsys):
    from nanoddpm_utils import checkpoint
    from nanoddpm_utils.__main__ import main
    from nanoddpm_utils.state import init_state

    config = get_preset("smoke")
    checkpoint.save(tmp_path / "run", init_state(config, jax.random.key(0)), config)
    out = tmp_path / "s.npz"
    assert (
        main(
            [
                "sample",
                "--run",
                str(tmp_path / "run"),
                "--num",
                "2",
                "--out",
                str(out),
                "--sampler",
                "dpm++2m",
                "--steps",
                "4",
                "--spacing",
                "trailing",
            ]
        )
        == 0
    )
    samples = np.load(out)["samples"]
    assert samples.shape == (2, 8, 8, 1) and 0.0 <= samples.min() and samples.max() <= 1.0
    with pytest.raises(SystemExit) as e:
        main(["sample", "--run", str(tmp_path / "run"), "--out", str(out), "--spacing", "cubic"])
    assert e.value.code == 2 and "invalid choice: 'cubic'" in capsys.readouterr().err
