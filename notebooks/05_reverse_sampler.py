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
# # 05 — The reverse process: sampling with Algorithm 2
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/05_reverse_sampler.ipynb)
#
# Part 5 of **nanoJaxDDPM** (DDPM, Ho et al. 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# [Notebook 04](04_training_loop.ipynb) trained $\epsilon_\theta$ and sampled with `sample.sample_images` as a
# black box. Here we open the box: from pure noise $x_T$, the trained network walks the chain back to an image.
#
# **What you will learn**
# - the reverse step derived from the posterior (eqs. 6–7) and the $\epsilon$-parameterisation (eqs. 10–11), and
#   the two choices of its variance, $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$ (section 3.2);
# - Algorithm 2 inline, checked to draw *exactly* the package's samples (`sample.p_sample`, `sample.p_sample_loop`);
# - a test with a known answer: on Gaussian data the best denoiser and every marginal of the reverse chain are known
#   in closed form, and the sampler must hit them;
# - the chain as an animation, coarse shape first, details last; and clipping the predicted $x_0$.

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
from scipy.optimize import brentq

from nanoddpm_utils import pretrained, sample, train, viz
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.diffusion import predict_x0_from_eps, q_sample
from nanoddpm_utils.evaluate import digits_quality_table, format_table
from nanoddpm_utils.images import image_grid, to_model_range, to_uint8

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
BACKEND = jax.default_backend()
print(f"jax {jax.__version__} on {BACKEND} ({jax.devices()[0].device_kind}); smoke mode: {SMOKE}")

# %% [markdown]
# ## 0. A trained model
#
# We sample from the `digits` model that ships with the package: the EMA weights of notebook 04's preset, trained
# with this course's code (`TRAIN_FROM_SCRATCH = True` trains your own instead, as notebook 04 does), in inference mode
# (dropout off). In smoke mode (the test suite) a few steps of the tiny `smoke` preset ($T = 50$) stand in: every cell
# runs, but its samples are noise, so the checks that need a good model are skipped.

# %%
TRAIN_FROM_SCRATCH = False  # True: train the digits preset here instead of loading the shipped weights

if SMOKE:
    config = get_preset("smoke")
    model = train.fit(config, load_digits("train"), progress=False)[0].ema
elif TRAIN_FROM_SCRATCH:
    config, started = get_preset("digits"), time.perf_counter()
    model = train.fit(config, load_digits("train"))[0].ema  # the EMA weights, as the paper samples
    print(f"trained in {time.perf_counter() - started:.0f} s")
else:
    config, model = pretrained.load("digits")  # EMA weights
model = eqx.nn.inference_mode(model)
schedule = train.schedule_for(config)
T = schedule.num_timesteps
print(f"{config.name}: T = {T}, {config.diffusion.schedule} betas, sigma^2 {config.diffusion.variance!r}, "
      f"clip x0: {config.diffusion.clip_x0}")

# %% [markdown]
# ## 1. Deriving the reverse step
#
# The reverse process is a Markov chain of Gaussians (eq. 1),
# $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}\big(x_{t-1};\ \mu_\theta(x_t, t),\ \sigma_t^2 I\big)$, trained to match the
# forward posterior of notebook 01 (eqs. 6–7):
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\big(\tilde\mu_t(x_t, x_0), \tilde\beta_t I\big), \qquad
#   \tilde\mu_t = \underbrace{\frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}}_{c_1}\,x_0
#   + \underbrace{\frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}}_{c_2}\,x_t .$$
#
# The mean needs $x_0$, which the sampler does not have. But $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$
# (eq. 4) gives $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$. Substituting, the coefficient of $x_t$
# is $c_1/\sqrt{\bar\alpha_t} + c_2 = \frac{\beta_t + \alpha_t(1-\bar\alpha_{t-1})}{\sqrt{\alpha_t}(1-\bar\alpha_t)}
# = \frac{1}{\sqrt{\alpha_t}}$ (because $\beta_t + \alpha_t - \bar\alpha_t = 1 - \bar\alpha_t$), and the coefficient of
# $\epsilon$ is $-c_1\sqrt{1-\bar\alpha_t}/\sqrt{\bar\alpha_t} = -\frac{\beta_t}{\sqrt{\alpha_t}\sqrt{1-\bar\alpha_t}}$. So (eq. 10)
#
# $$\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon\Big),$$
#
# and the network, which sees $x_t$ but not $\epsilon$, predicts the noise (eq. 11):
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta(x_t, t)\Big).$$
#
# **The variance** is not learned. Section 3.2 tries $\sigma_t^2 = \beta_t$ (optimal if $x_0 \sim \mathcal{N}(0, I)$) and
# $\sigma_t^2 = \tilde\beta_t$ (optimal if $x_0$ is one fixed point): the two extremes, with "similar results". The
# package calls them `"fixedlarge"` and `"fixedsmall"`, as the official code does. **Algorithm 2** samples with it:
#
# > $x_T \sim \mathcal{N}(0, I)$; **for** $t = T, \dots, 1$: $z \sim \mathcal{N}(0, I)$ if $t > 1$, else $z = 0$;
# > $x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{1-\alpha_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta(x_t, t)\big) + \sigma_t z$;
# > **return** $x_0$
#
# First, the two coefficient identities above, in float64 for every $t$:

# %%
betas = np.asarray(schedule.betas, np.float64)  # the identities hold for any betas
alphas, abar = 1.0 - betas, np.cumprod(1.0 - betas)
abar_prev = np.append(1.0, abar[:-1])
c1 = np.sqrt(abar_prev) * betas / (1.0 - abar)
c2 = np.sqrt(alphas) * (1.0 - abar_prev) / (1.0 - abar)
coef_x = c1 / np.sqrt(abar) + c2  # should be 1 / sqrt(alpha_t)
coef_eps = c1 * np.sqrt(1.0 - abar) / np.sqrt(abar)  # should be beta_t / (sqrt(alpha_t) sqrt(1 - abar_t))

# %%
np.testing.assert_allclose(coef_x, 1.0 / np.sqrt(alphas), rtol=1e-12)
np.testing.assert_allclose(coef_eps, betas / np.sqrt(alphas * (1.0 - abar)), rtol=1e-12)
np.testing.assert_allclose(c1, schedule.posterior_mean_coef1, rtol=1e-5)  # the package's c_1, c_2
np.testing.assert_allclose(c2, schedule.posterior_mean_coef2, rtol=1e-5)

# %% [markdown]
# **Clipping.** The official sampler takes a detour with the same result: it computes the predicted
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta)/\sqrt{\bar\alpha_t}$, **clips it to $[-1, 1]$** (the data's
# range), and plugs it into $\tilde\mu_t(x_t, \hat x_0)$. Without the clip this is eq. 11 exactly; with it, a
# prediction that strays outside the data range is pulled back at every step. The package does the same
# (`diffusion.p_mean_variance(..., clip_x0=True)`).
#
# ## 2. One reverse step, inline
#
# One step for ONE image (vmap makes a batch). `t` is the 0-indexed step (the paper's $t+1$): at `t = 0` the step
# produces $x_0$ and adds no noise.

# %%
def p_sample_inline(model, x_t, t, key, variance="fixedlarge", clip_x0=True):
    """x_{t-1} ~ p(x_{t-1} | x_t) for one image (Algorithm 2, line 4)."""
    s = schedule
    eps = model(x_t, t)
    if clip_x0:  # the official code's route: predict x_0, clip it, take the posterior mean (eq. 7)
        x0_hat = jnp.clip((x_t - s.sqrt_one_minus_alphas_cumprod[t] * eps) / s.sqrt_alphas_cumprod[t], -1.0, 1.0)
        mean = s.posterior_mean_coef1[t] * x0_hat + s.posterior_mean_coef2[t] * x_t
    else:  # eq. 11
        mean = (x_t - s.betas[t] / s.sqrt_one_minus_alphas_cumprod[t] * eps) / jnp.sqrt(1.0 - s.betas[t])
    sigma2 = s.betas[t] if variance == "fixedlarge" else s.posterior_variance[t]  # beta_t or beta-tilde_t
    z = jax.random.normal(key, x_t.shape)
    return mean + jnp.where(t > 0, jnp.sqrt(sigma2), 0.0) * z  # no noise on the last step


OPTIONS = [("fixedlarge", True), ("fixedlarge", False), ("fixedsmall", True), ("fixedsmall", False)]
x0 = to_model_range(load_digits("test")[:8])  # 8 real digits, noised to three levels
step_checks = {}  # (t, variance, clip) -> (our step, the package's step), from the same x_t and keys
for t in (T - 1, T // 2, 0):
    x_t = q_sample(schedule, x0, t, jax.random.normal(jax.random.key(t), x0.shape))
    keys = jax.random.split(jax.random.key(100 + t), 8)
    for variance, clip in OPTIONS:
        step_checks[t, variance, clip] = (
            jax.vmap(lambda x, k: p_sample_inline(model, x, t, k, variance, clip))(x_t, keys),
            jax.vmap(lambda x, k: sample.p_sample(model, schedule, x, t, k, variance=variance, clip_x0=clip))(x_t, keys))

# %%
for option, (ours, pkg) in step_checks.items():
    np.testing.assert_allclose(ours, pkg, rtol=1e-4, atol=1e-5, err_msg=f"t, variance, clip = {option}")
# At t = 0 nothing random is added: the result is the mean, so both variances give the same x_0.
np.testing.assert_array_equal(step_checks[0, "fixedlarge", True][0], step_checks[0, "fixedsmall", True][0])

# %% [markdown]
# ## 3. The whole chain
#
# Algorithm 2 is the step above from $t = T$ down to $1$. To draw the same random numbers as the package, we split the
# key once into one for $x_T$ and one for the loop, and at step $t$ derive each image's key from `fold_in(loop_key, t)`.
# The jitted batch step compiles once (`t` is a traced argument); a Python loop calls it $T$ times, keeping the images
# at the steps in `record` (`record=(t,)` keeps the output of the step at 0-indexed `t`, the paper's $x_t$).
# `sample.p_sample_loop` is the same loop as one `jax.lax.scan` inside `jit` ([appendix A1](A1_jax_speed.ipynb) times both).

# %%
@eqx.filter_jit
def step_batch(model, x, t, keys, variance, clip_x0):
    return jax.vmap(lambda xi, k: p_sample_inline(model, xi, t, k, variance, clip_x0))(x, keys)


def p_sample_loop_inline(model, key, shape, variance="fixedlarge", clip_x0=True, record=()):
    k_init, k_loop = jax.random.split(key)
    x = jax.random.normal(k_init, shape)  # x_T ~ N(0, I)
    kept = {}
    for t in range(T - 1, -1, -1):  # the paper's t = T, ..., 1
        keys = jax.random.split(jax.random.fold_in(k_loop, t), shape[0])
        x = step_batch(model, x, jnp.asarray(t), keys, variance, clip_x0)
        if t in record:
            kept[t] = x
    return (x, kept) if record else x


shape = (64, 8, 8, 1)
ours = p_sample_loop_inline(model, jax.random.key(0), shape)
pkg = sample.p_sample_loop(model, schedule, jax.random.key(0), shape)
print(f"64 samples with T = {T}: largest difference to the package's {float(jnp.abs(ours - pkg).max()):.1e}")
viz.show_images(jnp.concatenate([ours[:12], pkg[:12]]), ncols=12, size=0.8,
                suptitle="top: Algorithm 2, inline Python loop; bottom: sample.p_sample_loop, same key")
plt.show()

# %%
# Same keys, same samples (on a GPU or TPU, reduced-precision float32 matmuls let tiny differences grow over T steps)
np.testing.assert_allclose(ours, pkg, atol=1e-4 if BACKEND == "cpu" else 2e-2)

# %% [markdown]
# ## 4. A test with a known answer: Gaussian data and the perfect denoiser
#
# Equal to the package is not the same as right. To test the sampler itself we need data for which we know the
# best possible $\epsilon_\theta$ *and* what the chain should produce. Gaussian data gives both.
#
# Let every pixel of $x_0$ be independent, $x_0 \sim \mathcal{N}(\mu, s^2)$. Then $x_t \sim \mathcal{N}(\sqrt{\bar\alpha_t}\,\mu,\ d_t)$
# with $d_t = \bar\alpha_t s^2 + 1 - \bar\alpha_t$, and $\epsilon$ and $x_t$ are jointly Gaussian with covariance
# $\sqrt{1-\bar\alpha_t}$. The minimiser of $L_\text{simple}$ is the conditional mean, here a straight line:
#
# $$\epsilon^\star(x_t, t) = \mathbb{E}[\epsilon \mid x_t] = \frac{\sqrt{1-\bar\alpha_t}}{d_t}\,\big(x_t - \sqrt{\bar\alpha_t}\,\mu\big).$$
#
# Put it into eq. 11 (without clipping, which is not linear): $\frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon^\star = \frac{\beta_t}{d_t}(x_t - \sqrt{\bar\alpha_t}\mu)$, so the
# reverse mean is linear too, $\mu^\star(x_t) = a_t x_t + b_t$ with
#
# $$a_t = \frac{1 - \beta_t / d_t}{\sqrt{\alpha_t}}, \qquad b_t = \frac{\beta_t\sqrt{\bar\alpha_t}\,\mu}{d_t\sqrt{\alpha_t}} .$$
#
# Each reverse step is this line plus independent noise $\sigma_t z$. So if the chain's $x_t$ is $\mathcal{N}(m_t, v_t)$, its
# $x_{t-1}$ is $\mathcal{N}(a_t m_t + b_t,\ a_t^2 v_t + \sigma_t^2)$: starting from $m_T = 0$, $v_T = 1$ (and no noise at the last
# step) this recursion gives **every marginal of the reverse chain** exactly. We compute it in float64 with NumPy,
# apart from the sampler, for both choices of $\sigma_t^2$.

# %%
MU, S_DATA = 0.5, 0.1  # the data: every pixel ~ N(0.5, 0.1^2)


class GaussianDenoiser(eqx.Module):
    """The minimiser of L_simple when every pixel of x_0 is N(mu, s^2): E[eps | x_t]."""

    mu: float
    s: float

    def __call__(self, x_t, t, *, key=None):
        abar_t = schedule.alphas_cumprod[t]
        return jnp.sqrt(1.0 - abar_t) * (x_t - jnp.sqrt(abar_t) * self.mu) / (abar_t * self.s**2 + 1.0 - abar_t)


def chain_marginals(mu, s, variance):
    """Mean and variance of the chain's x_t for t = 0 .. T (float64); variance: a name or T values of sigma_t^2."""
    if isinstance(variance, str):
        sigma2 = betas if variance == "fixedlarge" else betas * (1.0 - abar_prev) / (1.0 - abar)
    else:
        sigma2 = np.asarray(variance, np.float64)
    m, v = np.zeros(T + 1), np.ones(T + 1)  # m[T], v[T]: x_T ~ N(0, 1)
    for t in range(T - 1, -1, -1):  # the step at 0-indexed t makes the paper's x_t from x_{t+1}
        d = abar[t] * s**2 + 1.0 - abar[t]
        a = (1.0 - betas[t] / d) / np.sqrt(alphas[t])
        b = betas[t] * np.sqrt(abar[t]) * mu / (d * np.sqrt(alphas[t]))
        m[t] = a * m[t + 1] + b
        v[t] = a**2 * v[t + 1] + (sigma2[t] if t > 0 else 0.0)
    return m, v


oracle = GaussianDenoiser(MU, S_DATA)
T_MID = T // 2
RECORD = tuple(range(0, T, max(1, T // 40)))  # a few steps along the chain, for the plot
assert T_MID in RECORD
n_images = 4096  # x 64 pixels: 262,144 independent chains
gauss = {}
for variance in ("fixedlarge", "fixedsmall"):
    key = jax.random.key(2)
    final, kept = p_sample_loop_inline(oracle, key, (n_images, 8, 8, 1), variance, clip_x0=False, record=RECORD)
    final_pkg, (mid_pkg,) = sample.p_sample_loop(oracle, schedule, key, (n_images, 8, 8, 1), variance=variance,
                                                 clip_x0=False, trajectory_steps=(T_MID,))
    gauss[variance] = dict(kept=kept, pkg={T_MID: mid_pkg, 0: final_pkg}, exact=chain_marginals(MU, S_DATA, variance))

n_chains = n_images * 64
print(f"{n_chains:,} chains, (mean, variance) of x_t; the data: ({MU}, {S_DATA**2:.5f})")
for variance, (m, v), t in [(name, g["exact"], t) for name, g in gauss.items() for t in (T_MID, 0)]:
    x = np.asarray(gauss[variance]["kept"][t], np.float64)
    print(f"  {variance:10s} t = {t:4d}: sampled ({x.mean():.4f}, {x.var():.5f}), exact ({m[t]:.4f}, {v[t]:.5f})")

# %% [markdown]
# The check: at $t = T/2$ and $t = 0$, for both variances, our loop and the package's scan, the sampled mean and
# variance must match the recursion within **5 standard errors** ($\sqrt{v_t/n}$ for the mean of $n$ chains,
# $v_t\sqrt{2/(n-1)}$ for the variance: 1.4% of it). Even swapping $\beta_t$ for $\tilde\beta_t$ moves $v_0$ by many
# standard errors (printed below); exercise 1 tries worse mistakes.

# %%
def check_moments(x, m, v, what):
    x = np.asarray(x, np.float64).ravel()
    n = x.size
    z_mean = (x.mean() - m) / np.sqrt(v / n)
    z_var = (x.var(ddof=1) - v) / (v * np.sqrt(2.0 / (n - 1)))
    assert abs(z_mean) < 5 and abs(z_var) < 5, f"{what}: mean off by {z_mean:.1f} SE, variance by {z_var:.1f} SE"


for variance, g in gauss.items():
    m, v = g["exact"]
    for t in (T_MID, 0):
        check_moments(g["kept"][t], m[t], v[t], f"inline loop, {variance}, t = {t}")
        check_moments(g["pkg"][t], m[t], v[t], f"package, {variance}, t = {t}")
v_large, v_small = gauss["fixedlarge"]["exact"][1][0], gauss["fixedsmall"]["exact"][1][0]
print(f"all within 5 standard errors; the two variances' exact v_0 differ by {abs(v_large / v_small - 1):.1%}, "
      f"{abs(v_large - v_small) / (v_small * np.sqrt(2 / (n_chains - 1))):.0f} standard errors")

# %% [markdown]
# The whole chain, seen three ways: the final pixels against the recursion's Gaussian; the standard deviation along
# the chain against the recursion and the forward marginal $\sqrt{d_t}$; the final variance against the data's, for
# many widths $s$ of the data.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
grid, widths = np.linspace(MU - 5 * S_DATA, MU + 5 * S_DATA, 200), np.geomspace(0.02, 1.5, 30)
for variance, color in (("fixedlarge", "C0"), ("fixedsmall", "C1")):
    (m, v), kept = gauss[variance]["exact"], gauss[variance]["kept"]
    axes[0].hist(np.asarray(kept[0]).ravel(), bins=100, range=(grid[0], grid[-1]), density=True, alpha=0.4,
                 color=color, label=f"sampled, {variance}")
    axes[0].plot(grid, np.exp(-(grid - m[0]) ** 2 / (2 * v[0])) / np.sqrt(2 * np.pi * v[0]), color=color)
    axes[1].plot(sorted(kept), [np.asarray(kept[t]).std() for t in sorted(kept)], "o", ms=3, color=color,
                 label=f"sampled, {variance}")
    axes[1].plot(np.arange(T + 1), np.sqrt(v), color=color, lw=1)
    axes[2].plot(widths, [chain_marginals(MU, w, variance)[1][0] / w**2 for w in widths], color=color, label=variance)
axes[0].plot(grid, np.exp(-(grid - MU) ** 2 / (2 * S_DATA**2)) / np.sqrt(2 * np.pi) / S_DATA, "k--", label="the data")
axes[1].plot(np.arange(1, T + 1), np.sqrt(abar * S_DATA**2 + 1 - abar), "k--", lw=1, label="forward q(x_t)")
axes[2].axhline(1.0, color="k", ls="--", lw=1)
axes[2].axvline(S_DATA, color="grey", ls=":", lw=1)
axes[0].set(xlabel="pixel value", title="x_0: sampled, and the recursion's Gaussian (lines)")
axes[1].set(xlabel="t", ylabel="std of x_t", xscale="log", title="std along the chain (lines: the recursion)")
axes[2].set(xlabel="width s of the data", ylabel="var(x_0) / s^2", xscale="log", title="the chain's final variance / the data's")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# With the perfect $\epsilon$, the chain follows the forward marginals closely but not exactly: a fixed $\sigma_t^2$ is a
# guess at the true reverse variance, and neither guess reproduces the data's variance for every width $s$ (right panel;
# $\beta_t$ does at $s = 1$). So the test compares not with the data, which would need a tolerance for that gap, but
# with the chain's own exact marginals, which leave no slack for a bug.
#
# ## 5. Watching an image appear
#
# In [notebook 00](00_diffusion_in_2d.ipynb) you watched this chain carry 2-D points into the data; here each point is
# an image. `p_sample_loop(..., trajectory_steps=...)` also returns the intermediate $x_t$ (`-1` stands for $x_T$, `t`
# for the paper's $x_t$). Beside each $x_t$ we show the network's current guess of the final image,
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t))/\sqrt{\bar\alpha_t}$ (clipped). The animation loops from
# $t = T$ down to 0, its top row $x_t$, its bottom row $\hat x_0$, the frames denser at small $t$ where details appear.

# %%
n_traj = 8
every = tuple(range(T)) + (-1,)  # x_0, x_1, ..., x_{T-1}, then x_T: traj[s] is the paper's x_s
final, traj = sample.p_sample_loop(model, schedule, jax.random.key(7), (n_traj, 8, 8, 1), trajectory_steps=every)


@eqx.filter_jit
def predicted_x0(model, x_t, t):
    """The network's clipped guess of x_0 from the paper's x_t (made by the 0-indexed step t - 1)."""
    s = jnp.maximum(t - 1, 0)
    eps = jax.vmap(lambda x: model(x, s))(x_t)
    return jnp.clip(jax.vmap(lambda x, e: predict_x0_from_eps(schedule, x, s, e))(x_t, eps), -1.0, 1.0)


frame_ts = sorted({int(round(T * f**2)) for f in np.linspace(1.0, 0.0, 40)}, reverse=True)  # denser near t = 0
frames = np.stack([np.concatenate([np.asarray(traj[t]), np.asarray(predicted_x0(model, traj[t], jnp.asarray(t)))])
                   for t in frame_ts])  # (frames, 2 * n_traj, 8, 8, 1)
viz.animate_images(frames, [f"t = {t}" for t in frame_ts], ncols=n_traj, size=0.9)

# %% [markdown]
# The last step makes $x_0$ from $x_1$ with $\tilde\mu_1 = 1\cdot\hat x_0 + 0\cdot x_1$ (at $t = 1$, $c_1 = \beta_1 / (1 - \bar\alpha_1) = 1$
# and $c_2 = 0$): the final sample *is* the network's clipped guess from $x_1$, with no noise added. The guess function
# above must reproduce it exactly; a step index off by one or a wrong coefficient in it does not.

# %%
np.testing.assert_allclose(predicted_x0(model, traj[1], jnp.asarray(1)), final, atol=1e-5)

# %% [markdown]
# ## 6. $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$? Clip $\hat x_0$ or not?
#
# Four samplers, the same trained model, the same keys: only the variance and the clipping differ. The paper found
# both variances about as good (section 3.2), and the official sampler always clips. The two variances' ratio,
# $\tilde\beta_t / \beta_t = (1-\bar\alpha_{t-1}) / (1-\bar\alpha_t)$, is 0 at $t = 1$ and close to 1 as soon as
# $1-\bar\alpha_t \gg \beta_t$: they differ only in the last steps of sampling, where the noise added is tiny anyway.

# %%
ratio = np.asarray(schedule.posterior_variance, np.float64) / np.asarray(schedule.betas, np.float64)
print("ratio at", {t: round(float(ratio[t - 1]), 3) for t in sorted({1, 2, 10, T // 10, T})})
np.testing.assert_allclose(ratio, (1.0 - abar_prev) / (1.0 - abar), rtol=1e-5, atol=1e-7)  # the formula above

# %% [markdown]
# So the two variances should draw nearly the same images from the same random numbers, and clipping should change
# little beyond keeping pixels inside $[-1, 1]$. The judges of [notebook 07](07_evaluation.ipynb) score each set of 64
# samples; the last row scores 64 real digits they never saw: the floor, what perfect samples would score at this size.

# %%
variants = {(variance, clip): sample.p_sample_loop(model, schedule, jax.random.key(11), shape, variance=variance,
                                                   clip_x0=clip) for variance, clip in OPTIONS}
tables = {option: digits_quality_table(to_uint8(imgs)) for option, imgs in list(variants.items())[:1 if SMOKE else 4]}
quality = {option: table["samples"] for option, table in tables.items()}
print(format_table({f"{v[5:]}, clip {c}": row for (v, c), row in quality.items()}
                   | {"real (held out)": tables[OPTIONS[0]]["real (held out)"]}))  # the same floor in every table
base = variants["fixedlarge", True]
print(f"mean |difference| per pixel from (beta, clip): the other variance "
      f"{jnp.abs(base - variants['fixedsmall', True]).mean():.3f}, other keys (section 3) {jnp.abs(base - pkg).mean():.3f}")

fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
for ax, ((variance, clip), imgs) in zip(axes, variants.items()):
    ax.imshow(image_grid(imgs)[..., 0], cmap="gray", vmin=0, vmax=255)
    ax.set_title(f"{variance}, clip {clip}\n{100 * float(jnp.mean(jnp.abs(imgs) > 1.0)):.1f}% of pixels outside "
                 "[-1, 1]", fontsize=10)
    ax.axis("off")
fig.tight_layout()
plt.show()

# %%
assert float(jnp.abs(base).max()) <= 1.0  # a clipped guess keeps x_0 inside the data range ...
assert float(jnp.abs(variants["fixedlarge", False]).max()) > 1.0  # ... and without the clip some pixels overshoot
if not SMOKE:  # the trained model's default sampler draws recognisable digits of (nearly) every class
    assert quality["fixedlarge", True]["classes_present"] >= 8
    assert quality["fixedlarge", True]["confidence"] > 0.8

# %% [markdown]
# On the trained model the four sets are hard to tell apart: from the same noise, $\beta_t$ and $\tilde\beta_t$ draw
# almost the same digits, as the paper found on CIFAR-10. Without clipping, some pixels overshoot the data range (a
# digit's background is exactly $-1$), which 8-bit pixels clip anyway. Clipping matters more where the model is worse.
#
# Read the table against its last row. In the first judge's features the samples' Fréchet distance comes out *below*
# the real digits' (in the pixel judge's, level with it): not better than real. Real digits come from the reference's
# own distribution, so their distance is all estimation error (a covariance from 64 images in 64 features), and that
# error grows with a set's spread. KID, unbiased at any size, puts both at zero within its standard error; precision
# and recall read alike: at 64 images these judges cannot tell the samples from real digits. Only the first
# classifier is a little less sure of the samples' digits.
#
# ## Summary
#
# - The reverse step's mean is the forward posterior's mean with $x_0$ predicted from $\epsilon_\theta$ (eqs. 7, 10–11);
#   its variance is fixed, $\beta_t$ or $\tilde\beta_t$; Algorithm 2 applies it $T$ times from pure noise, with no noise
#   at the last step. Our inline chain draws exactly the package's samples, and on Gaussian data with the perfect
#   denoiser both hit the chain's exact marginals. The coarse shape of a sample is decided early, details last.
# - DDPM needs $T$ network calls per sample; DDIM and DPM-Solver++ need a few dozen ([notebook 08](08_fast_sampling.ipynb)).
#
# ## Exercises
#
# 1. **Break it on purpose.** In `p_sample_inline`, drop the square root on $\sigma_t$ (`jnp.sqrt(sigma2)` → `sigma2`),
#    or write `s.betas[t] / (1 - s.alphas_cumprod[t])` for the $\epsilon$ coefficient, and rerun sections 2 to 4. Which
#    check fails first? Skip that one: does section 4, which never looks at the package, catch the mistake too?
# 2. **A variance in between.** Improved DDPM (below) interpolates, $\sigma_t^2 = \exp\big(v \log\beta_t + (1 - v)\log\tilde\beta_t\big)$.
#    `chain_marginals` also takes an array of $\sigma_t^2$: find the $v$ for which the chain of section 4 ends with the
#    data's variance $s^2$ (within 1%). Put it here; the cell after the solutions checks it:

# %%
v_best = None  # exercise 2: your v, between 0 and 1

# %% [markdown]
# ## Solutions
#
# 1. Section 2's comparison with the package fails first, for both mistakes (the package is right). Section 4 catches
#    them on its own, by hundreds of standard errors: $\sigma_t = \beta_t$ adds far too little noise, so the chain's
#    variance falls short; the wrong $\epsilon$ coefficient removes too much predicted noise and pulls the mean off.
# 2. The end variance grows with $v$ (more noise per step), so a bracketing root finder (`scipy.optimize.brentq`) finds
#    it: $v \approx 0.84$ for $T = 1000$, nearer $\beta_t$. The cell below checks your $v$, or this one if you left `None`.

# %%
def end_variance(v):
    """The variance the chain of section 4 ends with, for sigma_t^2 = exp(v log beta_t + (1 - v) log beta-tilde_t)."""
    beta_tilde = np.maximum(betas * (1.0 - abar_prev) / (1.0 - abar), 1e-20)  # beta-tilde_1 = 0: no noise there anyway
    return chain_marginals(MU, S_DATA, np.exp(v * np.log(betas) + (1 - v) * np.log(beta_tilde)))[1][0]


v_best = v_best if v_best is not None else brentq(lambda v: end_variance(v) - S_DATA**2, 0.0, 1.0)
assert abs(end_variance(v_best) / S_DATA**2 - 1) < 0.01, f"v = {v_best} ends at {end_variance(v_best):.5f}"
print(f"v = {v_best:.3f}: the chain ends at {end_variance(v_best):.5f}, the data's variance is {S_DATA**2:.5f}")

# %% [markdown]
# ## Go further
#
# - The paper, section 3.2 (the two variances) and section 4.3 with Figure 6 (progressive generation).
# - Nichol & Dhariwal, [Improved DDPM](https://arxiv.org/abs/2102.09672) (2021): a learned $\sigma_t^2$ between $\beta_t$
#   and $\tilde\beta_t$; Bao et al., [Analytic-DPM](https://arxiv.org/abs/2201.06503) (2022): the optimal one in closed form.
#
# **Next:** [06 — Training on CIFAR-10](06_train_cifar10.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/06_train_cifar10.ipynb)
