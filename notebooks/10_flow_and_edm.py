# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 — After DDPM: flow matching and EDM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/10_flow_and_edm.ipynb)
#
# Part 10 of **nanoJaxDDPM**. What a learner meets after DDPM, in current papers and code bases, is the continuous-time
# view: **flow matching** / rectified flow (Lipman et al. 2023, [arXiv:2210.02747](https://arxiv.org/abs/2210.02747);
# Liu et al. 2023, [arXiv:2209.03003](https://arxiv.org/abs/2209.03003)) and **EDM**'s preconditioning and Heun sampler
# (Karras et al. 2022, [arXiv:2206.00364](https://arxiv.org/abs/2206.00364)). **You will learn** that every method here is a
# noise path $x_t = a_t x_0 + b_t\epsilon$ plus a choice of what the network predicts, and how to convert one prediction into
# another; why regressing the straight path's velocity $\epsilon - x_0$ learns the flow from noise to data; EDM's
# preconditioning from two variance conditions, its $\rho = 7$ steps and Heun's second-order sampler, used on the DDPM model of
# [notebook 04](04_training_loop.ipynb); and how all of them compare on the digits at equal network evaluations, with the
# judges of [notebook 07](07_evaluation.ipynb) and the fidelity/diversity reading of [notebook 08](08_fast_sampling.ipynb).
#
# **Notation**: $x_0$ the data, $\epsilon \sim \mathcal N(0, I)$; DDPM's $\bar\alpha_t$ as in notebooks 01–08. In flow matching
# $t \in [0, 1]$ ($t = 0$ data, $t = 1$ noise); in EDM the time *is* the noise level $\sigma$.

# %%
# Colab only: fetch the course repository and install its package (does nothing anywhere else).
import sys

if "google.colab" in sys.modules:
    import importlib
    import os
    import subprocess

    REPO_DIR = os.environ.get("NANODDPM_CLONE_DIR", "/content/nanoJaxDDPM")  # a fork or a local copy: set these two
    REPO_URL = os.environ.get("NANODDPM_REPO_URL", "https://github.com/suvadityamuk/nanoJaxDDPM")
    if not os.path.isdir(REPO_DIR):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", "main", REPO_URL, REPO_DIR], check=True)
    else:
        subprocess.run(["git", "-C", REPO_DIR, "pull", "-q", "--ff-only"], check=False)
    subprocess.run(["bash", os.path.join(REPO_DIR, "colab_setup.sh")], check=True,
                   env={**os.environ, "PYTHON": sys.executable})  # install into this kernel's Python
    if REPO_DIR not in sys.path:
        sys.path.insert(0, REPO_DIR)  # importable now, without restarting the runtime
    importlib.invalidate_caches()

# %%
import os
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.scipy.stats import norm

from nanoddpm_utils import diffusion, edm, evaluate, flow, pretrained, sample, train
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.images import to_uint8
from nanoddpm_utils.schedule import make_schedule

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 0. Two trained models
#
# The shipped `digits` model (DDPM, predicts $\epsilon$) and `digits_fm`: the same UNet and training loop, with section 2's
# objective in its config (`diffusion.objective = "flow"`); `TRAIN_FROM_SCRATCH = True` trains it here with `train.fit`. In
# smoke mode (the tests) two tiny models train in seconds and the checks that need a *good* model skip.

# %%
TRAIN_FROM_SCRATCH = False  # True: train the flow-matching digits model here instead of loading the shipped weights
if SMOKE:
    tiny = get_preset("smoke").replace(train={"steps": 200, "batch_size": 64, "steps_per_call": 50, "log_every": 50})
    config, model = tiny, train.fit(tiny, load_digits("train"), progress=False)[0].ema
    config_fm = tiny.replace(name="smoke_fm", diffusion={"objective": "flow"})
    model_fm = train.fit(config_fm, load_digits("train"), progress=False)[0].ema
else:
    (config, model), (config_fm, model_fm) = pretrained.load("digits"), pretrained.load("digits_fm")  # EMA weights
    if TRAIN_FROM_SCRATCH:  # the digits_fm preset: the same UNet and train.fit, the flow objective
        config_fm = get_preset("digits_fm")
        model_fm = train.fit(config_fm, load_digits("train"))[0].ema
model, model_fm = eqx.nn.inference_mode(model), eqx.nn.inference_mode(model_fm)  # dropout off
schedule = make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps)
T, f64 = schedule.num_timesteps, lambda v: np.asarray(v, np.float64)
abar = f64(schedule.alphas_cumprod)
print(f"{config.name}: {config.diffusion.objective}, T = {T}; {config_fm.name}: {config_fm.diffusion.objective}")

# %% [markdown]
# ## 1. One family: a noise path and a prediction target
#
# | method | $a_t$ | $b_t$ | time |
# |---|---|---|---|
# | DDPM (eq. 4 of Ho et al.) | $\sqrt{\bar\alpha_t}$ | $\sqrt{1 - \bar\alpha_t}$ | $t = 0, \dots, T-1$ |
# | flow matching, straight path | $1 - t$ | $t$ | $t \in [0, 1]$ |
# | EDM | $1$ | $\sigma$ | $\sigma \in [0.002, 80]$ |
#
# Divide by $a_t$: $x_t / a_t = x_0 + (b_t/a_t)\,\epsilon$. Every path is the same picture, *data plus noise of std
# $\sigma = b_t/a_t$*, up to a scale: they differ only in how fast they move through $\sigma$ (and in the scale the network
# sees). Below, one digit on each path at the same five values of $\sigma$, each image shown on its own grey scale.

# %%
digits = load_digits("train").astype(np.float64) / 127.5 - 1.0  # (N, 8, 8, 1) in [-1, 1]
x0_demo, eps_demo = digits[7, :, :, 0], np.random.default_rng(0).standard_normal((8, 8))
SIGMAS_DEMO = [0.1, 0.5, 1.0, 2.0, 5.0]
sigma_ddpm = np.sqrt((1 - abar) / abar)  # DDPM's sigma_t = b_t / a_t, rising with t
paths = {  # for each path, (a, b) at the level where b / a = sigma
    "DDPM": lambda s: tuple(np.sqrt([abar, 1 - abar])[:, np.abs(np.log(sigma_ddpm / s)).argmin()]),
    "flow": lambda s: (1 - s / (1 + s), s / (1 + s)),  # t = sigma / (1 + sigma)
    "EDM": lambda s: (1.0, s),
}
fig = plt.figure(figsize=(13, 3.8), layout="constrained")
grid = fig.add_gridspec(3, 7, width_ratios=[4, 4, 1, 1, 1, 1, 1])  # two plots, then a 3 x 5 block of images
ax, tt = fig.add_subplot(grid[:, 0]), np.linspace(0, 1, 200)
ax.plot(np.arange(T) / T, np.sqrt([abar, 1 - abar]).T, "C0", tt, 1 - tt, "C1--", tt, tt, "C1--")
ax.set(xlabel="t (DDPM: t / T)", title=r"$a_t$ (falling) and $b_t$ (rising)")
ax.legend([ax.lines[0], ax.lines[2]], ["DDPM", "flow"], fontsize=7)
ax = fig.add_subplot(grid[:, 1])
ax.semilogy(np.arange(T) / T, sigma_ddpm, "C0", label="DDPM")
ax.semilogy(tt[1:-1], tt[1:-1] / (1 - tt[1:-1]), "C1", label="flow")
ax.axhspan(0.002, 80, color="C2", alpha=0.15, label=r"EDM: time is $\sigma$ itself")
ax.set(xlabel="t", ylabel=r"$\sigma = b_t / a_t$", title="the noise level they pass through")
ax.legend(fontsize=7)
for row, (name, path) in enumerate(paths.items()):
    for col, s in enumerate(SIGMAS_DEMO):
        a, b = path(s)
        sub = fig.add_subplot(grid[row, 2 + col])
        sub.imshow(a * x0_demo + b * eps_demo, cmap="gray")  # no vmin/vmax: each on its own scale
        sub.set(xticks=[], yticks=[], title=f"σ={s}" if row == 0 else None)
        sub.set_ylabel(name if col == 0 else None, fontsize=8)
plt.show()

# %% [markdown]
# The network can predict $\epsilon$ (DDPM), $x_0$, the velocity $\frac{dx_t}{dt} = \dot a_t x_0 + \dot b_t \epsilon$ (flow matching:
# $\epsilon - x_0$) or the **score** $\nabla_x \log p_t(x)$. Given $x_t$ on the path, any one of them gives the others:
#
# $$\hat x_0 = \frac{x_t - b_t\hat\epsilon}{a_t}, \qquad \hat\epsilon = \frac{x_t - a_t\hat x_0}{b_t}, \qquad
#   \hat v = \dot a_t\,\hat x_0 + \dot b_t\,\hat\epsilon, \qquad \nabla_x \log p_t(x_t) = -\frac{\mathbb E[\epsilon \mid x_t]}{b_t}.$$
#
# The last one (Tweedie, or notebook 00): $p_t$ is the data blurred by Gaussian noise of std $b_t$. Written once, checked
# against the package's DDPM quantities, the path's derivative by autodiff, and the score of a Gaussian by `jax.grad`.

# %%
def x0_from_eps(x, eps, a, b):
    return (x - b * eps) / a


def eps_from_x0(x, x0, a, b):
    return (x - a * x0) / b


def velocity_from(x0, eps, da, db):
    """dx_t/dt = a'(t) x_0 + b'(t) eps; flow matching's straight path has a' = -1, b' = 1."""
    return da * x0 + db * eps


rng = np.random.default_rng(1)
x0_b, eps_b, t_b = digits[:16], rng.standard_normal((16, 8, 8, 1)), 6 * T // 10
a_t, b_t = np.sqrt(abar[t_b]), np.sqrt(1 - abar[t_b])
x_t = f64(diffusion.q_sample(schedule, jnp.asarray(x0_b, jnp.float32), t_b, jnp.asarray(eps_b, jnp.float32)))
assert np.allclose(x_t, a_t * x0_b + b_t * eps_b, atol=1e-5), "q_sample is not a_t x_0 + b_t eps"
package_x0 = f64(diffusion.predict_x0_from_eps(schedule, jnp.asarray(x_t, jnp.float32), t_b, jnp.asarray(eps_b)))
assert np.allclose(x0_from_eps(x_t, eps_b, a_t, b_t), package_x0, atol=1e-4), "x0 from eps disagrees"
assert np.allclose(eps_from_x0(x_t, x0_b, a_t, b_t), eps_b, atol=1e-4), "eps from x0 is not the inverse"
path_dt = jax.jvp(lambda t: flow.flow_interpolate(x0_b, eps_b, t), (0.3,), (1.0,))[1]  # d x_t / dt by autodiff
for v in (velocity_from(x0_b, eps_b, -1.0, 1.0), f64(flow.flow_velocity(x0_b, eps_b))):
    assert np.allclose(v, path_dt, atol=1e-5), "the velocity is not d x_t / dt of the straight path (its sign?)"
MU, S = 0.3, 0.5  # 1-D Gaussian data x_0 ~ N(MU, S^2): then x_t ~ N(a MU, a^2 S^2 + b^2), all in closed form
a_g, b_g, x_g = 0.8, 0.6, jnp.linspace(-3.0, 3.0, 25)
exact_eps = b_g * (x_g - a_g * MU) / (a_g**2 * S**2 + b_g**2)  # E[eps | x_t], the best eps-prediction
log_p = lambda x: norm.logpdf(x, a_g * MU, jnp.sqrt(a_g**2 * S**2 + b_g**2))  # noqa: E731
assert np.allclose(jax.vmap(jax.grad(log_p))(x_g), -exact_eps / b_g, atol=1e-5), "the score is not -E[eps|x]/b"

# %% [markdown]
# ## 2. Flow matching: regress the straight path's velocity
#
# Draw $x_0$ and $\epsilon$, pick $t \sim U(0, 1)$, form $x_t = (1-t)x_0 + t\epsilon$ and regress its velocity:
# $\mathcal L(\theta) = \mathbb E\,\| v_\theta(x_t, t) - (\epsilon - x_0) \|^2$. Each pair $(x_0, \epsilon)$ moves on its own straight
# line, and many lines cross every $x_t$. **Why this learns the flow of the whole distribution**: for any random $u$ and any
# function $v$ of $x_t$, $\mathbb E\|v - u\|^2 = \mathbb E\|v - \mathbb E[u \mid x_t]\|^2 + \mathbb E\|u - \mathbb E[u \mid x_t]\|^2$, and the second term does
# not depend on $v$. So the minimiser is the average velocity of the lines through $x_t$,
# $v^*(x, t) = \mathbb E[\epsilon - x_0 \mid x_t = x]$: the marginal velocity, whose flow carries $\mathcal N(0, I)$ at $t = 1$ onto
# the data at $t = 0$ (Lipman et al., Theorems 1–2). Sampling integrates $dx/dt = v_\theta(x, t)$ from $t = 1$ down to $0$.
#
# On 1-D Gaussian data $x_0 \sim \mathcal N(\mu, s^2)$ everything is Gaussian: $x_t$ has mean $m_t = (1-t)\mu$ and variance
# $\varsigma_t^2 = (1-t)^2 s^2 + t^2$, $u = \epsilon - x_0$ has mean $-\mu$ and covariance $t - (1-t)s^2$ with $x_t$, so
# $v^*(x, t) = -\mu + \frac{t - (1-t)s^2}{\varsigma_t^2}(x - m_t)$. We fit $v_\theta$ by least squares on features
# $t^j$ and $x\,t^j$ (a tiny linear model) to noisy targets $\epsilon - x_0$, and compare it with $v^*$.

# %%
def v_star(x, t):
    """The exact marginal velocity for x_0 ~ N(MU, S^2) on the straight path."""
    return -MU + (t - (1 - t) * S**2) / ((1 - t) ** 2 * S**2 + t**2) * (x - (1 - t) * MU)


def features(x, t, degree=8):
    powers = t[:, None] ** np.arange(degree + 1)
    return np.concatenate([powers, x[:, None] * powers], axis=1)


n_fit = 20_000 if SMOKE else 400_000
x0_f, eps_f, t_f = MU + S * rng.standard_normal(n_fit), rng.standard_normal(n_fit), rng.uniform(0, 1, n_fit)
target = eps_f - x0_f  # each line's velocity, d x_t / dt: from the data (t = 0) towards the noise (t = 1)
theta = np.linalg.lstsq(features((1 - t_f) * x0_f + t_f * eps_f, t_f), target, rcond=None)[0]
xs, ts = np.meshgrid(np.linspace(-2, 2, 41), np.linspace(0.02, 0.98, 25))
fit_err = np.abs(features(xs.ravel(), ts.ravel()) @ theta - v_star(xs.ravel(), ts.ravel())).max()
print(f"largest |v_theta - v*| on the grid: {fit_err:.3f} (targets have std ~{np.std(target):.2f})")
assert fit_err < (0.3 if SMOKE else 0.1), "the regressed field is not the marginal velocity v*"

# %% [markdown]
# The flow map is known too: $x_1 = z \sim \mathcal N(0, 1)$ ends at $x_0 = \mu + s z$ (each $x_t = m_t + \varsigma_t z$). Euler takes
# one slope per step; **Heun** takes the Euler step, reads the slope at its end and steps again with the mean of both: two
# evaluations, second order. Inline, against `flow.flow_sample_loop` (fed $v^*$ as its "model", $t$ scaled by `TIME_SCALE`
# like the UNet's input), then the error as the steps double: halved for Euler, a quarter for Heun.

# %%
def flow_solve(v, x, num_steps, method="euler"):
    ts = np.linspace(1.0, 0.0, num_steps + 1)
    for t, t_next in zip(ts[:-1], ts[1:]):
        slope = v(x, t)
        x_euler = x + (t_next - t) * slope
        x = x_euler if method == "euler" else x + (t_next - t) * 0.5 * (slope + v(x_euler, t_next))
    return x


z_toy, exact_end = np.linspace(-2.5, 2.5, 11), MU + S * np.linspace(-2.5, 2.5, 11)  # x_1 = z ends at MU + S z
gauss_model = lambda x, t_scaled: v_star(x, t_scaled / flow.TIME_SCALE)  # noqa: E731
for method in ("euler", "heun"):
    package = f64(flow.flow_sample_loop(gauss_model, None, jax.random.key(0), (11, 1), num_steps=8, method=method,
                                        x_T=jnp.asarray(z_toy[:, None], jnp.float32)))[:, 0]
    assert np.allclose(flow_solve(v_star, z_toy, 8, method), package, atol=1e-4), f"{method} differs from flow.py"
STEPS = [5, 10, 20, 40, 80]
flow_err = {m: np.array([np.abs(flow_solve(v_star, z_toy, k, m) - exact_end).max() for k in STEPS])
            for m in ("euler", "heun")}
for m, e in flow_err.items():
    print(f"{m:5s} error {np.array2string(e, precision=6)}, ratio per doubling {np.round(e[:-1] / e[1:], 2)}")
assert np.all(np.abs(flow_err["euler"][-3:-1] / flow_err["euler"][-2:] - 2) < 0.3), "Euler is not first order"
assert np.all(np.abs(flow_err["heun"][-3:-1] / flow_err["heun"][-2:] - 4) < 0.6), "Heun is not second order"

# %% [markdown]
# Now the digits. The shipped `digits_fm` UNet is the same network as DDPM's, trained on $\epsilon - x_0$; `sample_images`
# integrates its ODE from the same noise as every other sampler. Twenty network evaluations both: Euler with 20 steps and Heun with 10.

# %%
N = 64 if SMOKE else 360  # digits per sampler (the judges below score every row on N)
drawn = {}  # name -> (network evaluations, seconds, images in [-1, 1])


def draw(name, cfg, mdl, **options):
    start = time.perf_counter()
    images = f64(jax.block_until_ready(sample.sample_images(cfg, mdl, jax.random.key(0), N, **options)))
    drawn[name] = (sample.network_evaluations(cfg, options.get("sampler"), options.get("steps")),
                   time.perf_counter() - start, np.clip(images, -1, 1))


def show_grids(names):
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6))
    for ax, name in zip(np.atleast_1d(axes), names):
        tiles = np.pad(drawn[name][2][:48, :, :, 0], ((0, 0), (0, 1), (0, 1)))  # a grey line between digits
        ax.imshow(tiles.reshape(6, 8, 9, 9).transpose(0, 2, 1, 3).reshape(54, 72), cmap="gray", vmin=-1, vmax=1)
        ax.set(title=f"{name} ({drawn[name][0]} evaluations)", xticks=[], yticks=[])
    plt.show()


draw("flow Euler-20", config_fm, model_fm, sampler="euler", steps=20)
draw("flow Heun-10", config_fm, model_fm, sampler="heun", steps=10)
show_grids(["flow Euler-20", "flow Heun-10"])

# %% [markdown]
# ## 3. EDM: $\sigma$ as time, a preconditioned denoiser, Heun's steps
#
# EDM takes the path $x = x_0 + \sigma n$ and a **denoiser** $D(x; \sigma) \approx \mathbb E[x_0 \mid x]$. The ODE is
# $dx/d\sigma = (x - D(x;\sigma))/\sigma$ (it is $\hat\epsilon$, by the conversions above with $a = 1$, $b = \sigma$). A raw network
# would see inputs of std $\sqrt{\sigma_{data}^2 + \sigma^2}$, anywhere from 0.5 to 80; so $D$ wraps a network $F$ (eq. 7):
#
# $$D(x;\sigma) = c_{skip}(\sigma)\,x + c_{out}(\sigma)\,F\big(c_{in}(\sigma)\,x;\ c_{noise}(\sigma)\big).$$
#
# With $\mathrm{Var}\,x_0 = \sigma_{data}^2$: **unit input**: $\mathrm{Var}(c_{in} x) = c_{in}^2(\sigma_{data}^2 + \sigma^2) = 1$, so
# $c_{in} = 1/\sqrt{\sigma^2 + \sigma_{data}^2}$. **Unit target**: training $D$ towards $x_0$ trains $F$ towards
# $(x_0 - c_{skip}x)/c_{out}$, of variance $\big((1 - c_{skip})^2\sigma_{data}^2 + c_{skip}^2\sigma^2\big)/c_{out}^2 = 1$. Of all such pairs
# take the $c_{skip}$ with the smallest $c_{out}$ (the network's errors are multiplied by $c_{out}$): setting the derivative of
# $(1 - c_{skip})^2\sigma_{data}^2 + c_{skip}^2\sigma^2$ to zero gives (and $c_{noise}$ is chosen by hand, to spread $\sigma$ over a short range)
# $$c_{skip} = \frac{\sigma_{data}^2}{\sigma^2 + \sigma_{data}^2}, \qquad c_{out} = \frac{\sigma\,\sigma_{data}}{\sqrt{\sigma^2 + \sigma_{data}^2}}, \qquad
#   c_{in} = \frac{1}{\sqrt{\sigma^2 + \sigma_{data}^2}}, \qquad c_{noise} = \tfrac14 \log\sigma \quad \text{(Table 1)},$$
#
# Checked by sampling, at five noise levels:

# %%
def preconditioning(sigma, sigma_data=edm.SIGMA_DATA):
    total = sigma**2 + sigma_data**2
    return sigma_data**2 / total, sigma * sigma_data / np.sqrt(total), 1 / np.sqrt(total), np.log(sigma) / 4


x0_p = edm.SIGMA_DATA * rng.standard_normal(200_000)  # any data of std sigma_data
for sigma in (0.002, 0.1, 0.5, 2.0, 80.0):
    c_skip, c_out, c_in, c_noise = preconditioning(sigma)
    x_p = x0_p + sigma * rng.standard_normal(x0_p.shape)
    var_in, var_target = np.var(c_in * x_p), np.var((x0_p - c_skip * x_p) / c_out)
    print(f"sigma {sigma:6}: Var(c_in x) = {var_in:.3f}, Var(F's target) = {var_target:.3f}")
    assert abs(var_in - 1) < 0.02 and abs(var_target - 1) < 0.02, "a coefficient does not give unit variance"
    assert np.allclose(preconditioning(sigma), f64(edm.edm_preconditioning(sigma)), rtol=1e-5), "differs from edm.py"

# %% [markdown]
# **The steps** (eq. 5): $N$ levels from $\sigma_{max}$ to $\sigma_{min}$, evenly spaced in $\sigma^{1/\rho}$, then $0$:
# $\sigma_i = \big(\sigma_{max}^{1/\rho} + \tfrac{i}{N-1}(\sigma_{min}^{1/\rho} - \sigma_{max}^{1/\rho})\big)^\rho$. $\rho = 1$ is even in $\sigma$;
# larger $\rho$ spends the steps where $\sigma$ is small and the fine detail is decided.
#
# **Heun** (Algorithm 1): $d = (x - D(x;\sigma_i))/\sigma_i$, an Euler step to $\sigma_{i+1}$, the slope $d'$ there, and the step
# again with $(d + d')/2$; the last step, onto $\sigma = 0$, stays Euler (nothing to evaluate there): $2N - 1$ evaluations.
# On Gaussian data $D^*(x;\sigma) = \mu + \frac{s^2}{s^2 + \sigma^2}(x - \mu)$ and $x(\sigma_{max}) = \mu + \sqrt{s^2 + \sigma_{max}^2}\,z$
# ends at $\mu + s z$: we measure the order as in notebook 08.

# %%
def rho_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    i = np.arange(n) / (n - 1)
    return np.append((sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho, 0.0)


def edm_heun(denoise, x, sigmas):
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - denoise(x, s)) / s
        x_next = x + (s_next - s) * d  # Euler; then Heun's correction, except on the last step (onto sigma = 0)
        x = x_next if s_next == 0 else x + (s_next - s) * 0.5 * (d + (x_next - denoise(x_next, s_next)) / s_next)
    return x


assert np.allclose(rho_sigmas(18), f64(edm.edm_sigmas(18, 0.002, 80.0, 7.0)), rtol=1e-4), "eq. 5 differs"
d_star = lambda x, s: MU + S**2 / (S**2 + s**2) * (x - MU)  # noqa: E731
x_start = MU + np.sqrt(S**2 + 80.0**2) * z_toy
edm_err = np.array([np.abs(edm_heun(d_star, x_start, rho_sigmas(k)) - exact_end).max() for k in STEPS])
print(f"EDM Heun error {np.array2string(edm_err, precision=6)}, ratios {np.round(edm_err[:-1] / edm_err[1:], 2)}")
assert np.all(np.abs(edm_err[-3:-1] / edm_err[-2:] - 4) < 0.8), "EDM's Heun is not second order"
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained")
for row, rho in enumerate((1, 3, 7)):
    axes[0].semilogx(rho_sigmas(18, rho=rho)[:-1], np.full(18, row), "|", ms=14, label=f"ρ = {rho}")
axes[0].set(yticks=[0, 1, 2], yticklabels=["ρ = 1", "ρ = 3", "ρ = 7"], xlabel="σ", title="18 steps of eq. 5")
axes[1].loglog(2 * np.array(STEPS) - 1, edm_err, "o-", label="EDM Heun (Gaussian data)")
axes[1].loglog(STEPS, flow_err["euler"], "s:", label="flow Euler (Gaussian data)")
axes[1].loglog(2 * np.array(STEPS), flow_err["heun"], "^:", label="flow Heun (Gaussian data)")
axes[1].set(xlabel="network evaluations", ylabel="largest |x_0 - exact|", title="distance from the exact end")
axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# **A DDPM model under EDM's sampler.** DDPM's $x_t = a_t x_0 + b_t\epsilon$ is $x_0 + \sigma_t\epsilon$ scaled by $a_t$, with
# $\sigma_t = b_t/a_t = \sqrt{(1 - \bar\alpha_t)/\bar\alpha_t}$, and $a_t = 1/\sqrt{1 + \sigma_t^2}$. So in EDM's terms our $\epsilon$-model is
# $D(x;\sigma_t) = x - \sigma_t\,\epsilon_\theta\big(x/\sqrt{1 + \sigma_t^2},\, t\big)$: $c_{skip} = 1$, $c_{out} = -\sigma$, $c_{in} = 1/\sqrt{1 + \sigma^2}$,
# $c_{noise} = t$ (Table 1's VP column). It only knows $T$ levels: EDM's steps span its range $\sigma_0 \dots \sigma_{T-1}$, each rounded to the nearest
# $\sigma_t$ (as the paper does for discrete models). Inline, against `edm.edm_sample_loop`, from the same noise:

# %%
eps_net = eqx.filter_jit(lambda m, x, t: jax.vmap(m, in_axes=(0, None))(x, t))
assert np.allclose(sigma_ddpm, f64(edm.ddpm_sigmas(schedule)), rtol=1e-4), "sigma_t differs from edm.ddpm_sigmas"
assert np.allclose(x_t / a_t, x0_b + sigma_ddpm[t_b] * eps_b, atol=1e-4), "x_t / a_t is not x_0 + sigma_t eps"


def ddpm_as_denoiser(x, sigma):
    t = int(np.abs(np.log(sigma_ddpm / sigma)).argmin())  # the model's nearest level
    eps = f64(eps_net(model, jnp.asarray(x / np.sqrt(1 + sigma_ddpm[t] ** 2), jnp.float32), jnp.int32(t)))
    return np.clip(x - sigma_ddpm[t] * eps, -1, 1)  # clipped like the package's samplers


def rounded(n):
    """EDM's n levels (eq. 5) over the model's own range sigma_0 .. sigma_{T-1}, each rounded to the nearest sigma_t."""
    wanted = rho_sigmas(n, sigma_ddpm[0], sigma_ddpm[-1])[:-1]
    return sigma_ddpm[np.abs(np.log(sigma_ddpm[None] / wanted[:, None])).argmin(1)]


z_img = np.random.default_rng(2).standard_normal((8, 8, 8, 1))
inline = edm_heun(ddpm_as_denoiser, z_img * np.sqrt(1 + rounded(6)[0] ** 2), np.append(rounded(6), 0.0))
package = f64(edm.edm_sample_loop(model, schedule, jax.random.key(0), z_img.shape, num_steps=6,
                                  x_T=jnp.asarray(z_img, jnp.float32)))
print(f"max |inline - edm_sample_loop| = {np.abs(inline - package).max():.1e}")
assert np.abs(inline - package).max() < 1e-2, "inline EDM differs from edm.py"  # float32, |x| ~ 150
fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
ax.semilogy(np.arange(T), sigma_ddpm, label=r"$\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$")
ax.semilogy(np.searchsorted(sigma_ddpm, rounded(18)), rounded(18), "r.", label="EDM's 18 steps (ρ = 7), rounded")
ax.set(xlabel="DDPM step t", ylabel="σ", title="a discrete-time model's noise levels")
ax.legend(fontsize=8)
plt.show()
draw("EDM Heun-18", config, model, sampler="edm", steps=18)
show_grids(["EDM Heun-18"])

# %% [markdown]
# ## 4. The comparison: quality against network evaluations
#
# All samplers start from the same noise key; $N$ digits each. Notebook 07's judges: the eight MLPs' **Fréchet distance**,
# **precision** (fidelity: the share of samples inside the real digits' manifold), **recall** (diversity: the share of real
# digits inside the samples'), **confidence**, and the pixel judge's Fréchet distance (PCA of the pixels). DDPM is the reference.

# %%
STEPS_OF = {"DPM++(2M)": ("dpm++2m", [5, 10, 20]), "EDM Heun": ("edm", [3, 5, 10, 18]),
            "flow Euler": ("euler", [5, 10, 20]), "flow Heun": ("heun", [3, 5, 10])}
STEPS_OF = {k: (s, steps[-1:]) for k, (s, steps) in STEPS_OF.items()} if SMOKE else STEPS_OF  # smoke: one each
for label, (sampler, steps_list) in STEPS_OF.items():
    cfg, mdl = (config_fm, model_fm) if label.startswith("flow") else (config, model)
    for k in [k for k in steps_list if f"{label}-{k}" not in drawn]:  # Heun-10, EDM-18: drawn already
        draw(f"{label}-{k}", cfg, mdl, sampler=sampler, steps=k)
CHURN = 20.0  # EDM's S_churn (Algorithm 2): fresh noise at each step, then Heun
draw("EDM churn-25", config, model, sampler="edm", steps=25, churn=CHURN)
draw(f"DDPM-{T}", config, model)  # Algorithm 2, every step
judges, pixel, pick = evaluate.digits_judges(), evaluate.pixel_judge(), np.random.default_rng(0)
refs = [j.reference_features[pick.permutation(len(j.reference_features))[:N]] for j in judges]


def judge(images_uint8, mlps=judges, mlp_refs=refs, pixel_images=None):
    """The MLP judges' mean Frechet distance, confidence, precision and recall; the pixel judge's Frechet distance."""
    feats = [j.features(images_uint8) for j in mlps]
    pr = np.mean([evaluate.precision_recall(r, f) for r, f in zip(mlp_refs, feats)], axis=0)
    pixel_feats = pixel.features(images_uint8 if pixel_images is None else pixel_images)
    return dict(frechet=np.mean([evaluate.frechet_distance(f, j.reference_features) for f, j in zip(feats, mlps)]),
                pixel_frechet=evaluate.frechet_distance(pixel_feats, pixel.reference_features),
                confidence=np.mean([j.probabilities(images_uint8).max(1).mean() for j in mlps]),
                precision=pr[0], recall=pr[1])


scores = {name: judge(np.asarray(to_uint8(jnp.asarray(im, jnp.float32)))) for name, (_, _, im) in drawn.items()}
unseen = lambda j: j.held_out[pick.permutation(len(j.held_out))[:N]]  # noqa: E731  (real digits a judge never saw)
real = [judge(unseen(j), [j], [r], unseen(pixel)) for j, r in zip(judges, refs)]  # each judge on its own unseen digits
real = {k: np.mean([r[k] for r in real]) for k in real[0]}
print(f"{'':16} {'evals':>5} {'seconds':>7} {'frechet':>8} {'pixel':>6} {'conf':>6} {'prec':>6} {'recall':>6}")
for name, row in [*scores.items(), ("real digits", real)]:
    cost = f"{drawn[name][0]:5d} {drawn[name][1]:7.1f}" if name in drawn else " " * 13
    print(f"{name:16} {cost}", *[f"{row[k]:{w}.3f}" for k, w in zip(row, (8, 6, 6, 6, 6))])  # the columns above

# %%
fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
for ax, key in zip(axes, ("frechet", "pixel_frechet", "precision", "recall")):
    for (label, (_, steps_list)), style in zip(STEPS_OF.items(), ("s-", "D-", "o-", "^-")):
        names = [f"{label}-{k}" for k in steps_list]
        ax.plot([drawn[n][0] for n in names], [scores[n][key] for n in names], style, label=label)
    ax.plot(drawn["EDM churn-25"][0], scores["EDM churn-25"][key], "k*", ms=11, label=f"EDM churn {CHURN:g}")
    ax.axhline(scores[f"DDPM-{T}"][key], color="red", ls="--", label=f"DDPM, {T} evaluations")
    ax.axhline(real[key], color="green", ls=":", label="real digits")
    ax.set(xscale="log", xlabel="network evaluations", title=key.replace("_", " "))
    if "frechet" in key:
        ax.set_yscale("log")
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()
if not SMOKE:  # a trained model: EDM's sampler at 35 evaluations is about as good as DDPM's 1000 on both judges
    for key in ("frechet", "pixel_frechet"):
        assert scores["EDM Heun-18"][key] < 1.5 * scores[f"DDPM-{T}"][key], (key, scores["EDM Heun-18"][key])

# %% [markdown]
# Read your own numbers (one seed, $N = 360$: a few hundredths are noise). The Fréchet curves fall steeply over the first
# tens of evaluations, faster for the second-order samplers (DPM-Solver++, both Heuns). As in notebook 08, a Fréchet distance
# close to DDPM's does not mean the same samples: look at precision and recall. **EDM's stochastic sampler** (Algorithm 2) adds
# fresh noise at each step, raising $\sigma$ by $1 + \gamma$, $\gamma = \min(S_{churn}/N, \sqrt2 - 1)$, before Heun's step: like DDPM's
# chain it can forget early errors. At 50 evaluations or fewer (churn 20 on 25 steps puts $\gamma$ at its cap):

# %%
FIDELITY_ROWS = [f"DDPM-{T}", "DPM++(2M)-20", "EDM Heun-18", "flow Euler-20", "flow Heun-10", "EDM churn-25"]
print(f"{'':16} {'evals':>5} {'precision':>9} {'recall':>7} {'confidence':>10}")
for name in FIDELITY_ROWS:
    r = scores[name]
    print(f"{name:16} {drawn[name][0]:5d} {r['precision']:9.3f} {r['recall']:7.3f} {r['confidence']:10.3f}")
if not SMOKE:  # fresh noise buys fidelity back
    assert scores["EDM churn-25"]["precision"] > scores["EDM Heun-18"]["precision"], "churn did not raise precision"

# %% [markdown]
# ## Exercises (solutions below)
#
# 1. **A flow model is a denoiser.** On the straight path, $x_t/(1 - t) = x_0 + \frac{t}{1-t}\epsilon$. Write $D(x;\sigma)$ from $v$
#    and check it on the Gaussian: $D^*(x/(1-t); \sigma)$ with $\sigma = t/(1-t)$ against your formula with $v^*$.
# 2. **Equal budgets.** On the Gaussian, which lands closest: flow Euler-10, flow Heun-5 or EDM Heun-5 (9 evaluations)?
# 3. **How much churn?** Draw EDM with 25 steps at churn 2 and 5 ($\gamma$ = 0.08, 0.2; churn 20 is at the cap): where do
#    precision and recall go?
#
# **Solutions.** **1.** $\hat x_0 = x_t - t\,\hat v$ (from $x_t = (1-t)x_0 + t\epsilon$ and $v = \epsilon - x_0$), so
# $D(x;\sigma) = x_t - t\,v(x_t, t)$ with $t = \sigma/(1+\sigma)$, $x_t = (1-t)x$. **2.** Flow Heun-5, by far: second order, on a
# path whose $v^*$ barely changes along each trajectory; EDM's 5 levels must cover $\sigma$ from 80 down to 0.002. **3.** Read your
# numbers beside churn 20's in the table above: any churn buys back much of the precision the deterministic Heun-18 lost, but
# on one seed of 360 digits the differences between churn 2, 5 and 20 are a few hundredths, the size of the noise.

# %%
t_ex, x_ex = np.linspace(0.05, 0.95, 7)[:, None], np.linspace(-2, 2, 9)[None]
assert np.allclose(x_ex - t_ex * v_star(x_ex, t_ex), d_star(x_ex / (1 - t_ex), t_ex / (1 - t_ex)), atol=1e-10)
print({"flow Euler-10": np.abs(flow_solve(v_star, z_toy, 10) - exact_end).max(),
       "flow Heun-5": np.abs(flow_solve(v_star, z_toy, 5, "heun") - exact_end).max(),
       "EDM Heun-5": np.abs(edm_heun(d_star, x_start, rho_sigmas(5)) - exact_end).max()})
for churn in [] if SMOKE else [2.0, 5.0]:  # churn 20: the table above
    draw(f"EDM churn {churn}", config, model, sampler="edm", steps=25, churn=churn)
    r = judge(np.asarray(to_uint8(jnp.asarray(drawn[f"EDM churn {churn}"][2], jnp.float32))))
    print(f"churn {churn:4}: precision {r['precision']:.3f}, recall {r['recall']:.3f}, conf. {r['confidence']:.3f}")

# %% [markdown]
# ## Go further
# - **Consistency models** ([arXiv:2303.01469](https://arxiv.org/abs/2303.01469)): any point of the ODE's path to its end in one step.
# - **Rectified-flow reflow** (Liu et al. 2023): retrain on the pairs (noise, the sample the flow made of it); the paths straighten.
# - **Latent diffusion** ([arXiv:2112.10752](https://arxiv.org/abs/2112.10752)): any of these in an autoencoder's latent space; Stable Diffusion 3 ([arXiv:2403.03206](https://arxiv.org/abs/2403.03206)) is a rectified flow there.
#
# **Next:** the appendix, [A1 — JAX speed](A1_jax_speed.ipynb) · [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/A1_jax_speed.ipynb) ·
# or back to the start: [00 — Diffusion in 2-D](00_diffusion_in_2d.ipynb)
