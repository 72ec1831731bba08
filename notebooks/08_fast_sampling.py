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
# # 08 — Fast sampling: the same model, 20× to 50× fewer steps
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/08_fast_sampling.ipynb)
#
# Part 8 of **nanoJaxDDPM**. Algorithm 2 ([notebook 05](05_reverse_sampler.ipynb)) calls the network $T = 1000$ times per
# image. We keep the model of [notebook 04](04_training_loop.ipynb) as it is and sample in 20 to 50 calls: with **DDIM**
# (Song, Meng & Ermon 2021, [arXiv:2010.02502](https://arxiv.org/abs/2010.02502)), then with a second-order solver of the
# same equation, **DPM-Solver++** (Lu et al. 2022, [arXiv:2211.01095](https://arxiv.org/abs/2211.01095)). **You will learn**
# DDIM's step (inline, checked against the package), why $\eta = 0$ is deterministic and $\eta = 1$ on all $T$ steps is DDPM;
# DDIM and DPM-Solver++(2M) as first- and second-order solvers of one ODE, measured where the exact answer is known; quality
# and time against the number of steps; and, with the judges of [notebook 07](07_evaluation.ipynb), **fidelity against
# diversity**: what precision and recall see and one Fréchet number hides, with a slider over $\eta$.
#
# **Notation**, as in notebooks 01–05: $\beta_t$, $\alpha_t = 1 - \beta_t$, $\bar\alpha_t = \prod_{s \le t}\alpha_s$, $\tilde\beta_t$ the
# posterior variance. The noise path of eq. 4 is $x_t = a_t x_0 + b_t\,\epsilon$, $a_t = \sqrt{\bar\alpha_t}$, $b_t = \sqrt{1 - \bar\alpha_t}$;
# $\lambda_t = \log(a_t/b_t)$ is half the log signal-to-noise ratio. $\sigma_t$ is, as in notebook 05, the std of the fresh noise
# a reverse step adds; DDIM sets it with a knob, $\sigma_t(\eta)$. $\hat x_0$ predicts $x_0$. Timesteps are 0-indexed; $t = -1$ is the data.

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
import matplotlib.ticker as mticker
import numpy as np

from nanoddpm_utils import evaluate, pretrained, sample, solver, train, widgets
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.images import to_uint8
from nanoddpm_utils.schedule import ddim_timesteps, make_schedule

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 0. A trained model
#
# The `digits` model shipped with the package (EMA weights of notebook 04's preset), or one trained here with
# `TRAIN_FROM_SCRATCH = True`. In smoke mode (the tests) a tiny $T = 50$ model trains; checks needing a *good* model skip.

# %%
TRAIN_FROM_SCRATCH = False  # True: train the digits preset here instead of loading the shipped weights
if SMOKE:
    config = get_preset("smoke").replace(train={"steps": 200, "batch_size": 64, "steps_per_call": 50, "log_every": 50})
    model = train.fit(config, load_digits("train"), progress=False)[0].ema
elif TRAIN_FROM_SCRATCH:
    config = get_preset("digits")
    model = train.fit(config, load_digits("train"))[0].ema
else:
    config, model = pretrained.load("digits")  # EMA weights
model = eqx.nn.inference_mode(model)  # dropout off
schedule = make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps)
T = schedule.num_timesteps
f64 = lambda v: np.asarray(v, np.float64)  # noqa: E731
abar = f64(schedule.alphas_cumprod)
print(f"{config.name}: trained for {config.train.steps} steps, T = {T}")

# %% [markdown]
# ## 1. DDIM: big jumps with the same network
#
# The training loss only looks at the marginals $q(x_t \mid x_0) = \mathcal{N}(a_t x_0, b_t^2 I)$, never at the chain. Other
# processes have the same marginals, so the trained model serves them too, and some can be reversed in big jumps. From
# $t$ to any earlier $t' < t$ their reverse step (DDIM's eq. 12; its $\alpha$ is our $\bar\alpha$) predicts $x_0$, then re-noises
# it to the level of $t'$ along the *same* $\epsilon$:
#
# $$x_{t'} = a_{t'}\,\underbrace{\frac{x_t - b_t\,\epsilon_\theta(x_t, t)}{a_t}}_{\hat x_0}
#   + \underbrace{\sqrt{b_{t'}^2 - \sigma_t(\eta)^2}\;\epsilon_\theta(x_t, t)}_{\text{direction pointing to } x_t}
#   + \sigma_t(\eta)\,z, \qquad
#   \sigma_t(\eta) = \eta\,\frac{b_{t'}}{b_t}\sqrt{1 - \frac{a_t^2}{a_{t'}^2}} \quad \text{(eq. 16)}.$$
#
# On consecutive steps ($t' = t - 1$), $a_t^2/a_{t-1}^2 = \alpha_t$, so $\sigma_t(1)^2 = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t
# = \tilde\beta_t$: DDPM's step with $\sigma_t^2 = \tilde\beta_t$. With $\eta = 0$ no fresh noise is added. DDIM visits $S \ll T$
# timesteps spaced evenly from $T - 1$ to $0$ (`schedule.ddim_timesteps`), then jumps to the data ($a = 1$, $b = 0$).

# %%
def ab(abar, t):
    """(a_t, b_t) = (sqrt(abar_t), sqrt(1 - abar_t)) for a timestep or an array of them; t = -1 is the data, (1, 0)."""
    abar_t = np.where(np.asarray(t) >= 0, abar[np.maximum(t, 0)], 1.0)
    return np.sqrt(abar_t), np.sqrt(1.0 - abar_t)


def ddim_sigma(ab_t, ab_prev, eta):
    """Eq. 16: the std of the fresh noise of a step from t to t' (ab_t = (a_t, b_t), ab_prev = (a_t', b_t'))."""
    (a_t, b_t), (a_p, b_p) = ab_t, ab_prev
    return eta * (b_p / b_t) * np.sqrt(1.0 - a_t**2 / a_p**2)


def ddim_step_inline(x_t, eps, ab_t, ab_prev, eta, z):
    """DDIM's eq. 12 from t to t', in float64."""
    (a_t, b_t), (a_p, b_p), sigma = ab_t, ab_prev, ddim_sigma(ab_t, ab_prev, eta)
    x0_hat = (x_t - b_t * eps) / a_t
    return a_p * x0_hat + np.sqrt(b_p**2 - sigma**2) * eps + sigma * z


t_all = np.arange(1, T)  # eq. 16 on every consecutive pair: sigma_t(1)^2 is notebook 05's posterior variance
np.testing.assert_allclose(ddim_sigma(ab(abar, t_all), ab(abar, t_all - 1), 1.0) ** 2,
                           f64(schedule.posterior_variance)[1:], rtol=1e-3)  # the schedule is float32

# %% [markdown]
# Like the package's samplers we clip the predicted $x_0$ to $[-1, 1]$, the range of images, and re-derive $\epsilon$ from it
# (so $a_t\hat x_0 + b_t\epsilon = x_t$ still holds). One step, inline, against `sample.ddim_step`, for three pairs $(t, t')$
# (the last jump to the data included), with $\eta = 0$, $0.5$ and $1$ and the same noise $z$:

# %%
net = eqx.filter_jit(lambda m, x, t: jax.vmap(m, in_axes=(0, None))(x, t))  # eps for a batch at one t


def model_eps(x, t):
    """eps_theta(x, t) for a float64 batch at one timestep, with the predicted x_0 clipped to [-1, 1]."""
    (a_t, b_t), eps = ab(abar, t), f64(net(model, jnp.asarray(x, jnp.float32), jnp.int32(t)))
    x0_hat = np.clip((x - b_t * eps) / a_t, -1.0, 1.0)
    return (x - a_t * x0_hat) / b_t


ddim_step_batch = eqx.filter_jit(lambda m, x, t, t_prev, keys, eta: jax.vmap(
    lambda xi, k: sample.ddim_step(m, schedule, xi, t, t_prev, k, eta=eta))(x, keys))  # one compilation for all
S_DEMO, shape = 10, (8, 8, 8, 1)
taus = ddim_timesteps(T, S_DEMO)  # S_DEMO timesteps from T - 1 to 0
x_t = f64(jax.random.normal(jax.random.key(3), shape))
pairs = [(int(taus[0]), int(taus[1])), (int(taus[4]), int(taus[5])), (int(taus[-1]), -1)]
step_errors = []
for (t, t_prev), eta in [(pair, eta) for pair in pairs for eta in (0.0, 0.5, 1.0)]:
    keys = jax.random.split(jax.random.key(t), shape[0])
    z = f64(jax.vmap(lambda k: jax.random.normal(k, shape[1:]))(keys))  # the noise ddim_step draws from each key
    inline = ddim_step_inline(x_t, model_eps(x_t, t), ab(abar, t), ab(abar, t_prev), eta, z)
    package = f64(ddim_step_batch(model, jnp.asarray(x_t, jnp.float32), *map(jnp.int32, (t, t_prev)), keys,
                                  jnp.float32(eta)))
    step_errors.append(np.abs(inline - package).max())
    print(f"t = {t:4d} -> {t_prev:4d}, eta = {eta}: max |inline - package| = {step_errors[-1]:.1e}")
assert max(step_errors) < 1e-4, step_errors

# %% [markdown]
# ### The whole sampler, and why $\eta = 0$ is deterministic
#
# A Python loop of eq. 12; `sample.ddim_sample_loop` is the same loop as one jitted `lax.scan`, and from the same $x_T$ and
# noises both must draw the same images. With $\eta = 0$ the only randomness is $x_T$: two keys, the same images.

# %%
def ddim_sample_inline(eps_fn, x_T, ts, abar, eta=0.0, noise=None):
    """DDIM over the timesteps ts, then onto the data: a Python loop of eq. 12 in float64; noise(t) is step t's z."""
    x = f64(x_T)
    for t, t_prev in zip(ts, [*ts[1:], -1]):
        z = noise(t) if eta > 0 else 0.0
        x = ddim_step_inline(x, eps_fn(x, t), ab(abar, t), ab(abar, t_prev), eta, z)
    return x


x_T, k_loop = jax.random.normal(jax.random.key(4), shape), jax.random.split(jax.random.key(1))[1]
package_z = lambda t: f64(jax.vmap(lambda k: jax.random.normal(k, shape[1:]))(  # noqa: E731
    jax.random.split(jax.random.fold_in(k_loop, t), shape[0])))  # the z the package draws at step t from key 1
loop = lambda key, eta: f64(sample.ddim_sample_loop(  # noqa: E731
    model, schedule, key, shape, num_steps=S_DEMO, eta=eta, x_T=x_T))
for eta in (0.0, 1.0):
    err = np.abs(ddim_sample_inline(model_eps, x_T, taus, abar, eta, package_z) - loop(jax.random.key(1), eta)).max()
    print(f"eta = {eta}: max |inline - ddim_sample_loop| = {err:.1e}")
    assert err < 1e-4
np.testing.assert_array_equal(loop(jax.random.key(1), 0.0), loop(jax.random.key(2), 0.0))  # eta = 0: deterministic

# %% [markdown]
# ### $\eta = 1$ on all $T$ steps *is* DDPM
#
# With $S = T$ and $\eta = 1$, eq. 12 is DDPM's step with $\sigma_t^2 = \tilde\beta_t$ ("fixedsmall"). The package's DDIM draws
# $x_T$ and each step's noise exactly as `p_sample_loop` does, so from the same key the two must draw the same images.

# %%
ddim_full = sample.ddim_sample_loop(model, schedule, jax.random.key(5), (4, 8, 8, 1), num_steps=T, eta=1.0)
ddpm_small = sample.p_sample_loop(model, schedule, jax.random.key(5), (4, 8, 8, 1), variance="fixedsmall")
print(f"max |DDIM(eta = 1, S = T) - DDPM(fixedsmall)| = {float(jnp.abs(ddim_full - ddpm_small).max()):.1e}")
np.testing.assert_allclose(ddim_full, ddpm_small, atol=5e-4)

# %% [markdown]
# ## 2. DDIM solves an ODE; DPM-Solver++ solves it better
#
# With $\eta = 0$ nothing random happens after $x_T$, and as the steps shrink DDIM's path becomes the solution of the
# *probability-flow ODE* (Song et al. 2021, [arXiv:2011.13456](https://arxiv.org/abs/2011.13456)). DDIM is one numerical
# method for it; there are better ones. Measure time by $\lambda_t = \log(a_t/b_t)$, which grows as $t$ falls ($+\infty$ on the
# data). The sampler visits $t_0 = T-1 > t_1 > \dots$; write $x_i, a_i, b_i, \lambda_i$ at $t_i$, $h_i = \lambda_i - \lambda_{i-1} > 0$
# for the length of step $i$. **DDIM in $\lambda$**: put $\epsilon_\theta = (x_{i-1} - a_{i-1}\hat x_0)/b_{i-1}$ into eq. 12 with
# $\eta = 0$ and use $b_i a_{i-1}/b_{i-1} = a_i e^{-h_i}$:
#
# $$x_i = a_i\hat x_0 + b_i\,\frac{x_{i-1} - a_{i-1}\hat x_0}{b_{i-1}}
#   = \frac{b_i}{b_{i-1}}\,x_{i-1} - a_i\big(e^{-h_i} - 1\big)\,\hat x_0(x_{i-1}). \qquad \text{(A)}$$
#
# **The ODE.** Divide (A) by $b_i$: $x_i/b_i - x_{i-1}/b_{i-1} = e^{\lambda_i}(1 - e^{-h_i})\,\hat x_0 \approx e^{\lambda}h_i\,\hat x_0$
# for a short step. So $\frac{d}{d\lambda}\frac{x}{b} = e^{\lambda}\,\hat x_0(x_\lambda)$, solved exactly over one step by
# $x_i = \frac{b_i}{b_{i-1}}x_{i-1} + b_i\int_{\lambda_{i-1}}^{\lambda_i} e^{\lambda}\,\hat x_0(x_\lambda)\,d\lambda$. Only $\hat x_0$ along the path is
# unknown. DDIM holds it at its value at the start of the step, which integrates to (A): an error of order $h^2$ per step,
# $h$ over the path, a **first-order** solver. Double the steps, halve the error.
#
# **DPM-Solver++(2M)** lets $\hat x_0$ vary linearly in $\lambda$, the slope read off the previous step's prediction (still one
# network call per step). The linear term integrates to $a_i(h_i - 1 + e^{-h_i})$ times the slope; the paper replaces
# $h - 1 + e^{-h}$ by $h(1 - e^{-h})/2$ (both $h^2/2 + O(h^3)$), which keeps (A) with $\hat x_0(x_{i-1})$ replaced by
#
# $$D_i = \Big(1 + \frac{1}{2r_i}\Big)\,\hat x_0(x_{i-1}) - \frac{1}{2r_i}\,\hat x_0(x_{i-2}), \qquad r_i = \frac{h_{i-1}}{h_i}.$$
#
# Error $h^3$ per step, $h^2$ over the path: **second order**, a quarter of the error when the steps double. The first step
# has no previous prediction and is DDIM's; so is the last, onto the data ($b = 0$, $h = \infty$: it returns $\hat x_0$).
# Our solver must match the package's `solver.dpm_solver_sample_loop` from the same $x_T$, here on $S = 5$ steps with
# "trailing" spacing ($S$ equal gaps of $T/S$ from $T - 1$, Lin et al. 2023; why, below).

# %%
def lam(ab_t):
    a_t, b_t = ab_t
    return np.inf if b_t == 0 else np.log(a_t / b_t)


def step_in_lambda(x, x0_hat, ab_from, ab_to):
    """(A): x_i = (b_i / b_{i-1}) x_{i-1} - a_i (e^{-h_i} - 1) x0_hat."""
    h = lam(ab_to) - lam(ab_from)
    return (ab_to[1] / ab_from[1]) * x - ab_to[0] * np.expm1(-h) * x0_hat


def dpm_solver_inline(eps_fn, x_T, ts, abar):
    """DPM-Solver++(2M) over the timesteps ts, then onto the data: a Python loop in float64."""
    tt = [*ts, -1]  # t_0, t_1, ..., and -1 for the data
    lams = [lam(ab(abar, t)) for t in tt]
    x, x0_prev = f64(x_T), None
    for i in range(len(ts)):  # step i + 1 of the maths: from t_i to t_{i+1}
        a_i, b_i = ab(abar, tt[i])
        x0_hat = (x - b_i * eps_fn(x, tt[i])) / a_i
        if i == 0 or i == len(ts) - 1:  # no previous prediction yet / onto the data: DDIM's step
            d = x0_hat
        else:
            r = (lams[i] - lams[i - 1]) / (lams[i + 1] - lams[i])  # h_{i-1} / h_i
            d = (1 + 1 / (2 * r)) * x0_hat - 1 / (2 * r) * x0_prev
        x, x0_prev = step_in_lambda(x, d, (a_i, b_i), ab(abar, tt[i + 1])), x0_hat
    return x


ts_dpm = ddim_timesteps(T, 5, "trailing")
dpm_inline = dpm_solver_inline(model_eps, x_T, ts_dpm, abar)
dpm_package = f64(solver.dpm_solver_sample_loop(model, schedule, jax.random.key(0), shape, num_steps=5,
                                                spacing="trailing", x_T=x_T))
print(f"S = 5, timesteps {ts_dpm.tolist()}: max |inline - package| = {np.abs(dpm_inline - dpm_package).max():.1e}")
np.testing.assert_allclose(dpm_package, dpm_inline, atol=1e-4)

# %% [markdown]
# ### The order, where the answer is known
#
# "First order" and "second order" are claims we can test where the exact path is known. Let every pixel of the data be
# $x_0 \sim \mathcal{N}(\mu, s^2)$: then $x_t$ and $\epsilon$ are jointly Gaussian and the best noise predictor is a regression,
# $\epsilon^\star(x_t, t) = \mathbb{E}[\epsilon \mid x_t] = b_t(x_t - a_t\mu)/(a_t^2 s^2 + b_t^2)$. It is linear in $x_t$, so the ODE
# moves points by the one affine, order-keeping map that carries each marginal $\mathcal{N}(a_t\mu, a_t^2 s^2 + b_t^2)$ to the
# next: from $x_T$ (at $t = T-1$) to $x_0 = \mu + s\,(x_T - a_{T-1}\mu)/\sqrt{a_{T-1}^2 s^2 + b_{T-1}^2}$. We run **our** samplers
# with $\epsilon^\star$ in place of a network ($T = 1000$, linear schedule) and see how far they land from it as the steps double.

# %%
abar_toy, MU, STD = f64(make_schedule("linear", 1000).alphas_cumprod), 0.3, 0.5


def gaussian_eps(x, t):
    a_t, b_t = ab(abar_toy, t)
    return b_t * (x - a_t * MU) / (a_t**2 * STD**2 + b_t**2)


x_T_toy, (a_T, b_T) = np.linspace(-3.0, 3.0, 13), ab(abar_toy, 999)  # a few starting points (the map is affine)
exact_end = MU + STD * (x_T_toy - a_T * MU) / np.sqrt(a_T**2 * STD**2 + b_T**2)
ORDER_STEPS = [20, 40, 80, 160]
toy_errors = {f"{name}, {sp}": np.array([np.abs(fn(gaussian_eps, x_T_toy, ddim_timesteps(1000, K, sp), abar_toy)
                                                - exact_end).max() for K in ORDER_STEPS])
              for name, fn, sp in [("DDIM", ddim_sample_inline, "uniform"), ("DPM-Solver++(2M)", dpm_solver_inline,
                                   "uniform"), ("DPM-Solver++(2M)", dpm_solver_inline, "trailing")]}
fig, ax = plt.subplots(figsize=(5.5, 3.4))
for (name, err), style in zip(toy_errors.items(), ("o-", "s-", "^:")):
    ax.loglog(ORDER_STEPS, err, style, label=name)
    print(f"{name:27s} error at {ORDER_STEPS} steps: {np.array2string(err, precision=5)}; "
          f"ratio per doubling: {np.round(err[:-1] / err[1:], 2).tolist()}")
K = np.array(ORDER_STEPS, float)
ax.loglog(K, 4 / K, "k--", K, 200 / K**2, "k-.", lw=0.8)
ax.set_xticks(ORDER_STEPS, [str(k) for k in ORDER_STEPS])
ax.xaxis.set_minor_locator(mticker.NullLocator())
ax.set(xlabel="steps S", ylabel=r"largest $|x_0 - $exact$|$", title="Gaussian data: distance from the exact end")
ax.legend([*toy_errors, r"$\propto 1/S$", r"$\propto 1/S^2$"], fontsize=8)
plt.show()
ddim_ratios = toy_errors["DDIM, uniform"][:-1] / toy_errors["DDIM, uniform"][1:]
dpm_ratios = toy_errors["DPM-Solver++(2M), uniform"][:-1] / toy_errors["DPM-Solver++(2M), uniform"][1:]
assert np.all((1.7 < ddim_ratios) & (ddim_ratios < 2.3)), ddim_ratios  # first order: twice the steps, half the error
assert np.all((3.5 < dpm_ratios[1:]) & (dpm_ratios[1:] < 4.5)), dpm_ratios  # second order: a quarter

# %% [markdown]
# The slopes: DDIM's error halves with each doubling, DPM-Solver++'s falls fourfold once the steps are small. The first
# points: with few **uniform** steps DPM-Solver++ is *worse* than DDIM. $\lambda$ rises steeply near $t = 0$, so the uniform step
# onto $t = 0$ is much longer in $\lambda$ than the one before, $r_i$ is small, and the extrapolation, weighted by $1/(2r_i)$,
# overshoots. Trailing spacing has no such step, and with it DPM-Solver++ is the closest at few steps: its spacing below.
#
# ## 3. Quality and time against the number of steps
#
# The few-step samplers start from the same $N$ noises $x_T$ and our loops share one compiled network, so each one's time
# is that of its $S$ network calls, measured now on your machine; DDPM with all $T$ steps (the package's `lax.scan`,
# compiled first) is the reference. Notebook 07's MLP judges score each set: the Fréchet distance to the training digits,
# and, in their features, **precision** and **recall** (notebook 07, section 4; Kynkäänniemi et al. 2019). Precision, the
# share of samples inside the real digits' manifold (a ball around each real digit out to its 3rd nearest real neighbour),
# is **fidelity**; recall, the share of real digits inside the samples' manifold, is **diversity**.

# %%
N = 48 if SMOKE else 200  # samples per sampler: every row, real digits included, is judged on N images
CURVE_STEPS = [5, 10, 20] if SMOKE else [5, 10, 20, 50]
judges, rng, rows = evaluate.digits_judges(), np.random.default_rng(0), {}
pr_refs = [j.reference_features[rng.permutation(len(j.reference_features))[:N]] for j in judges]


def judge(images_uint8):
    """The MLP judges' mean Fréchet distance, precision and recall for N uint8 images."""
    feats = [j.features(images_uint8) for j in judges]
    frechet = np.mean([evaluate.frechet_distance(f, j.reference_features) for f, j in zip(feats, judges)])
    precision, recall = np.mean([evaluate.precision_recall(ref, f) for ref, f in zip(pr_refs, feats)], axis=0)
    return dict(frechet=frechet, precision=precision, recall=recall)


def add_row(name, steps, draw):
    """Time draw() (N images in [-1, 1]) and judge what it drew."""
    start = time.perf_counter()
    images = np.clip(draw(), -1.0, 1.0)
    rows[name] = dict(steps=steps, seconds=time.perf_counter() - start, images=images,
                      **judge(np.asarray(to_uint8(jnp.asarray(images, jnp.float32)))))


real = [judge(j.held_out[rng.permutation(len(j.held_out))[:N]]) for j in judges]  # each judge's own unseen digits
real = {k: np.mean([r[k] for r in real]) for k in real[0]}
x_T_eval = f64(jax.random.normal(jax.random.key(100), (N, 8, 8, 1)))  # the same x_T for every few-step sampler
model_eps(x_T_eval, T - 1)  # compile the network for this batch size, once for every loop below
ddpm_loop, _, ddpm_shape, ddpm_kwargs = sample.sampling_loop(config, N)  # Algorithm 2 as one lax.scan
ddpm_run = ddpm_loop.lower(model, schedule, jax.random.key(100), ddpm_shape, **ddpm_kwargs).compile()
add_row(f"DDPM {T}", T, lambda: f64(ddpm_run(model, schedule, jax.random.key(100), ddpm_shape, **ddpm_kwargs)))
for S in CURVE_STEPS:
    add_row(f"DDIM {S}", S, lambda: ddim_sample_inline(model_eps, x_T_eval, ddim_timesteps(T, S), abar))
    add_row(f"DPM++ {S}", S, lambda: dpm_solver_inline(model_eps, x_T_eval, ddim_timesteps(T, S, "trailing"),
                                                       abar))
print(f"{'':12} {'steps':>5} {'seconds':>8} {'frechet':>8} {'precision':>9} {'recall':>7}")
for name, row in [*rows.items(), ("real digits", dict(real, steps=None))]:
    timing = f"{row['steps']:5d} {row['seconds']:8.2f}" if row["steps"] else f"{'':5} {'':8}"
    print(f"{name:12} {timing} {row['frechet']:8.3f} {row['precision']:9.3f} {row['recall']:7.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for name, marker in (("DDIM", "o-"), ("DPM++", "s-")):
    for ax, k in zip(axes, ("frechet", "seconds")):
        ax.plot(CURVE_STEPS, [rows[f"{name} {S}"][k] for S in CURVE_STEPS], marker, label=name)
axes[0].axhline(rows[f"DDPM {T}"]["frechet"], color="red", ls="--", label=f"DDPM, {T} steps")
axes[0].axhline(real["frechet"], color="green", ls=":", label="real digits")
axes[1].plot([T], [rows[f"DDPM {T}"]["seconds"]], "r*", ms=11, label=f"DDPM, {T} steps")
titles = ("Fréchet distance (lower is better)", f"seconds for {N} samples, on this machine")
for ax, title, yscale in zip(axes, titles, ("linear", "log")):
    ax.set(xscale="log", yscale=yscale, xlabel="steps S (network calls)", title=title)
    ax.set_xticks(CURVE_STEPS + [T], [str(v) for v in CURVE_STEPS + [T]])
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    ax.legend(fontsize=8)
plt.show()
if not SMOKE:  # a trained model: few steps cost quality, and the second-order solver needs fewer of them
    fr = {name: row["frechet"] for name, row in rows.items()}
    assert fr["DPM++ 10"] < fr["DDIM 10"] < fr["DDIM 5"], fr

# %% [markdown]
# Time grows in proportion to $S$ (one network call per step): 50 steps cost about a twentieth of DDPM's 1000. The Fréchet
# distance falls steeply over the first steps, then flattens; the second-order solver gets there in fewer steps.
#
# ## 4. Fidelity against diversity: the $\eta$ knob
#
# Look at the table again: with tens of steps the Fréchet distance can come out *below* DDPM's, even below the real
# digits'. Is the fast sampler better than DDPM? Precision and recall say it is *different*: higher recall, lower
# precision (down the DDIM rows, as $S$ grows, recall rises and precision falls). One Fréchet number, a distance between
# two Gaussians fitted to the features, mixes the two. $\eta$ goes from the ODE ($\eta = 0$) to DDPM's amount of fresh noise
# ($\eta = 1$): draw DDIM on 50 steps at a few $\eta$, from the same $x_T$ and noises $z$, then move $\eta$ and watch 32 of them;
# on the right each sampler is a point in the (recall, precision) plane, best at the top right.

# %%
ETA_STEPS, ETAS = min(50, T), [0.0, 0.25, 0.5, 0.75, 1.0]
ts_eta = ddim_timesteps(T, ETA_STEPS)
fresh_z = lambda t: np.random.default_rng(t).standard_normal((N, 8, 8, 1))  # noqa: E731  (the same z for every eta)
for eta in ETAS:
    if eta == 0 and f"DDIM {ETA_STEPS}" in rows:  # eta = 0 is the ODE: already drawn from the same x_T
        rows["eta 0.0"] = rows[f"DDIM {ETA_STEPS}"]
    else:
        add_row(f"eta {eta}", ETA_STEPS, lambda: ddim_sample_inline(model_eps, x_T_eval, ts_eta, abar, eta, fresh_z))
    print(f"DDIM {ETA_STEPS}, eta = {eta:4}: frechet {rows[f'eta {eta}']['frechet']:.3f}, "
          f"precision {rows[f'eta {eta}']['precision']:.3f}, recall {rows[f'eta {eta}']['recall']:.3f}")
if not SMOKE:  # a trained model: injected noise buys fidelity back
    assert rows["eta 1.0"]["precision"] > rows["eta 0.0"]["precision"], [rows[f"eta {e}"]["precision"] for e in ETAS]

# %%
def show_eta(eta, grids=None):
    grids, point = grids or [eta], lambda row: (row["recall"], row["precision"])  # noqa: E731
    fig, axes = plt.subplots(1, len(grids) + 1, figsize=(4.2 * (len(grids) + 1), 3.8))
    for ax, e in zip(axes, grids):
        tiles = np.pad(rows[f"eta {e}"]["images"][:32, :, :, 0], ((0, 0), (0, 1), (0, 1)))  # a grey line between digits
        ax.imshow(tiles.reshape(4, 8, 9, 9).transpose(0, 2, 1, 3).reshape(36, 72), cmap="gray", vmin=-1, vmax=1)
        ax.set(title=f"DDIM {ETA_STEPS}, eta = {e}", xticks=[], yticks=[])
        axes[-1].annotate(f"eta = {e}", point(rows[f"eta {e}"]), xytext=(8, -12), textcoords="offset points")
    axes[-1].plot(*zip(*[point(rows[f"eta {e}"]) for e in ETAS]), "o-", label=rf"DDIM {ETA_STEPS}, $\eta$ = 0 ... 1")
    for name, style in ((f"DDPM {T}", "r*"), ("DPM++ 20", "s"), ("real digits", "gD")):
        axes[-1].plot(*point(rows.get(name, real)), style, ms=10, label=name)
    axes[-1].set(xlabel="recall (diversity)", ylabel="precision (fidelity)", title="higher is better, on both")
    axes[-1].margins(0.2)
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


widgets.interactive_figure(show_eta, eta=(ETAS, 0.0), static=lambda: show_eta(0.0, grids=[0.0, 1.0]))

# %% [markdown]
# Read your own numbers (with $N = 200$, a few hundredths are noise): the deterministic samplers sit right of DDPM and
# below it, more diverse and less faithful; fresh noise moves DDIM up and left, into DDPM's corner. An independent
# measurement on this model, 500 samples per set (quoted in the course's issue 21), found precision / recall 0.93 / 0.84 for DDPM-1000,
# 0.84 / 0.91 for DDIM-50 at $\eta = 0$, 0.89 / 0.92 at $\eta = 0.5$, 0.91 / 0.86 at $\eta = 1$, 0.78 / 0.96 for
# DPM-Solver++(2M)-20, 0.94 / 0.90 for real digits. One way to read it: the ODE maps each $x_T$ smoothly to one image, so it
# keeps the whole spread of the noise, the regions between digits included, where a slightly wrong $\hat x_0$ is carried to
# the end; fresh noise lets a chain forget early errors and the late, accurate steps pull it onto a well-formed digit, at
# the cost of some spread. Which to prefer depends on what you need; one number cannot choose for you.
#
# ## Summary
#
# DDIM (eq. 12) reuses the network on $S \ll T$ steps at a cost proportional to $S$: deterministic given $x_T$ at $\eta = 0$, DDPM
# at $\eta = 1$ on all $T$ steps. In $\lambda$, DDIM ($\eta = 0$) is a first-order solver of the probability-flow ODE, DPM-Solver++(2M)
# a second-order one. Deterministic samplers trade fidelity (precision) for diversity (recall), injected noise buys fidelity
# back, and one Fréchet number hides the trade.
#
# ## Exercises (solutions at the end)
#
# 1. **Order or spacing?** On the Gaussian data with $S = 10$, which of (`"ddim"` or `"dpm"`) with (`"uniform"`, `"trailing"`
#    or `"quadratic"`, dense near $t = 0$) lands closest to the exact end? Guess, then run.
# 2. **The trade at 10 steps.** Does noise still buy fidelity with 10 steps? Draw DDIM 10 at $\eta = 1$ with `add_row`.
# 3. **A real square root.** Show that $\sigma_t(\eta)^2 \le b_{t'}^2$ for every $\eta \in [0, 1]$ and $t' < t$, so the square root
#    in eq. 12 is real. What can go wrong with $\eta > 1$? The cell checks the claim on every pair of our schedule.

# %%
answer = None  # exercise 1: ("ddim" or "dpm", "uniform" or "trailing" or "quadratic")
errors_10 = {(name, sp): abs(exact_end - fn(gaussian_eps, x_T_toy, ddim_timesteps(1000, 10, sp), abar_toy)).max()
             for name, fn in (("ddim", ddim_sample_inline), ("dpm", dpm_solver_inline))
             for sp in ("uniform", "trailing", "quadratic")}
if answer is not None:
    print({k: round(v, 3) for k, v in errors_10.items()})
    assert answer == min(errors_10, key=errors_10.get), "not this one: look at the errors above"

t_from, t_to = np.tril_indices(T + 1, -1) - np.ones((2, 1), int)  # exercise 3: every pair t' < t (t' = -1: data)
assert np.all(ddim_sigma(ab(abar, t_from), ab(abar, t_to), 1.0) ** 2 <= ab(abar, t_to)[1] ** 2 + 1e-12)

# %% [markdown]
# ## Go further
#
# [DDIM](https://arxiv.org/abs/2010.02502), sections 4–5: consistency (the same $x_T$, the same digit whatever $S$) and
# interpolation in $x_T$. [DPM-Solver](https://arxiv.org/abs/2206.00927) and [DPM-Solver++](https://arxiv.org/abs/2211.01095):
# higher orders. Lin et al., [arXiv:2305.08891](https://arxiv.org/abs/2305.08891): trailing spacing. [EDM](https://arxiv.org/abs/2206.00364):
# Heun's method, noise injection as its own knob. The package's `sample.py`, `solver.py`, [docs/sampling.md](../docs/sampling.md).
#
# ## Solutions
#
# **1.** `answer = ("dpm", "quadratic")`. At 10 steps spacing matters as much as order: DPM-Solver++ on uniform steps is the
# *worst* of the six (it overshoots on the long last step in $\lambda$), on quadratic steps, dense where $\lambda$ changes fastest,
# the best. **2.** The cell below; compare the change in precision with its noise (a few hundredths with $N = 200$).
# **3.** With $\eta = 1$, $\sigma_t^2 = b_{t'}^2 (1 - a_t^2/a_{t'}^2)/b_t^2$, and $a_{t'} \le 1$ gives $1 - a_t^2/a_{t'}^2 \le 1 - a_t^2 = b_t^2$,
# so $\sigma_t(1)^2 \le b_{t'}^2$; $\sigma_t(\eta)^2 = \eta^2\sigma_t(1)^2$ is smaller still. With $\eta > 1$, on long steps from high
# noise, $b_{t'}^2 - \sigma_t^2 < 0$: the "direction pointing to $x_t$" has no real length.

# %%
ts_10 = ddim_timesteps(T, 10)
add_row("DDIM 10, eta 1", 10, lambda: ddim_sample_inline(model_eps, x_T_eval, ts_10, abar, 1.0, fresh_z))
for name in ("DDIM 10", "DDIM 10, eta 1"):
    print(f"{name:15s} precision {rows[name]['precision']:.3f}, recall {rows[name]['recall']:.3f}")

# %% [markdown]
# **Next:** [09 — Draw me a 7: class-conditional diffusion and classifier-free guidance](09_guidance.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/09_guidance.ipynb):
# how to tell the model *what* to draw.
