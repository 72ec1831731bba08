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
# # 01 — The forward process: turning images into noise
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/01_forward_process.ipynb)
#
# Part 1 of **nanoJaxDDPM**, a course that rebuilds *Denoising Diffusion Probabilistic Models* (Ho, Jain & Abbeel
# 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)) from scratch in JAX. A diffusion model learns to undo a
# fixed process that slowly destroys data with Gaussian noise; first we need that process: the **forward process** $q$.
#
# **What you will learn**
# - the forward chain $q(x_t \mid x_{t-1})$ (the paper's eq. 2) and why it keeps the variance at 1;
# - the noise schedule $\beta_t$ and what derives from it ($\alpha_t$, $\bar\alpha_t$, the signal-to-noise ratio), for
#   the paper's linear schedule and the cosine schedule of Nichol & Dhariwal (2021);
# - the closed form $q(x_t \mid x_0)$ (eq. 4), which jumps to any step at once, checked against 1000 chained steps;
# - the posterior $q(x_{t-1} \mid x_t, x_0)$ (eqs. 6–7), by completing the square: what the reverse process imitates.

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

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from scipy import stats
from sklearn.datasets import load_digits, load_sample_image

from nanoddpm_utils import pretrained, viz
from nanoddpm_utils.diffusion import q_posterior_mean_variance, q_sample
from nanoddpm_utils.sample import ddim_step, p_sample_loop
from nanoddpm_utils.schedule import make_schedule

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 0. The whole process in one picture
#
# Top row: a handwritten digit (8×8 pixels, from scikit-learn) under the forward process $q$: a little Gaussian noise
# at each of $T = 1000$ steps, until nothing of the digit is left. Below: the reverse process $p_\theta$ of a small
# trained model that ships with the course, started from pure noise $x_{1000}$; read those rows **from right to left**.
# This notebook builds the top row; notebooks 02–05 build and train the network that makes the others.
# ([Notebook 00](00_diffusion_in_2d.ipynb) showed both directions on 2-D points; here each point is a 64-pixel image.)

# %%
config, model = pretrained.load("digits")  # the course's trained 8x8-digits model (notebook 04 trains it)
model = eqx.nn.inference_mode(model)
schedule = make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps)
T = schedule.num_timesteps
K = [0, 50, 100, 200, 300, 500, 700, T]  # the paper's steps shown; x_0 is the data
digit0 = jnp.asarray(load_digits().images[0] / 8.0 - 1.0, jnp.float32)[..., None]  # (8, 8, 1) in [-1, 1]
eps0 = jax.random.normal(jax.random.key(10), digit0.shape)
forward_row = jnp.stack([digit0] + [q_sample(schedule, digit0, jnp.array(k - 1), eps0) for k in K[1:]])

shape = (16, config.model.image_size, config.model.image_size, config.model.in_channels)
if SMOKE:  # a cheap stand-in for the figure: 7 deterministic DDIM jumps between the columns (notebook 08)
    jump = jax.jit(jax.vmap(lambda x, t, t_prev: ddim_step(model, schedule, x, t, t_prev, jax.random.key(0)),
                            in_axes=(0, None, None)))
    x = jax.random.normal(jax.random.key(11), shape)
    chain = {T: x}
    for k, k_prev in zip(K[:0:-1], K[-2::-1]):  # paper step k -> k_prev; code's t is k - 1
        x = jump(x, jnp.array(k - 1), jnp.array(k_prev - 1))
        chain[k_prev] = x
    reverse = jnp.stack([chain[k] for k in K])  # (len(K), n, 8, 8, 1)
else:  # the real thing: Algorithm 2 over all 1000 steps (notebook 05), keeping x_t at the shown steps
    _, reverse = p_sample_loop(model, schedule, jax.random.key(11), shape,
                               trajectory_steps=tuple(-1 if k == T else k for k in K))

rows = [forward_row] + [reverse[:, i] for i in range(3)]
fig = viz.show_images(jnp.concatenate(rows), [f"$x_{{{k}}}$" for k in K] + [""] * 3 * len(K), ncols=len(K), size=1.1)
labels = ["$q$: a digit, noised\nread left to right →"] + ["$p_\\theta$: a sample\n← read right to left"] * 3
for r, label in enumerate(labels):
    fig.axes[r * len(K)].text(-0.15, 0.5, label, transform=fig.axes[r * len(K)].transAxes, ha="right", va="center")
plt.show()

# %%
# The model's x_0 looks like the data. A simple test: digits are drawn in the middle of the frame, so the average
# of 16 samples must have the average digit's layout (the correlation of 16 real digits' average with it is above
# 0.9; of 16 random images', about 0).
data = load_digits().images / 8.0 - 1.0  # (1797, 8, 8)
layout_corr = float(np.corrcoef(np.asarray(reverse[0]).mean(axis=0).ravel(), data.mean(axis=0).ravel())[0, 1])
print(f"correlation of the samples' average with the data's average: {layout_corr:.2f}")
assert layout_corr > 0.7

# %% [markdown]
# ## 1. One step of noise
#
# The forward process is a Markov chain that adds a little Gaussian noise at each of $T$ steps (eq. 2 of the paper):
#
# $$q(x_{1:T} \mid x_0) = \prod_{t=1}^{T} q(x_t \mid x_{t-1}), \qquad
#   q(x_t \mid x_{t-1}) = \mathcal{N}\!\left(x_t;\ \sqrt{1-\beta_t}\, x_{t-1},\ \beta_t I\right).$$
#
# With $\epsilon \sim \mathcal{N}(0, I)$ one step reads $x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon$.
# Why shrink $x_{t-1}$ by $\sqrt{1-\beta_t}$ rather than just adding noise? Because then the variance stays put: if
# $\operatorname{Var}[x_{t-1}] = 1$, then $\operatorname{Var}[x_t] = (1-\beta_t) \cdot 1 + \beta_t = 1$. Data scaled to
# $[-1, 1]$ never blows up, and after enough steps $x_T$ is (almost exactly) a standard Gaussian.

# %%
def forward_step(x_prev, beta, noise):
    """One step of the chain (eq. 2): x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps."""
    return jnp.sqrt(1.0 - beta) * x_prev + jnp.sqrt(beta) * noise


k1, k2 = jax.random.split(jax.random.key(0))
x_prev = jax.random.normal(k1, (100_000,))  # unit variance "data"
x_next = forward_step(x_prev, 0.3, jax.random.normal(k2, (100_000,)))
print(f"variance before {x_prev.var():.3f}, after one step with beta = 0.3: {x_next.var():.3f}")

# %%
# A step preserves unit variance, and it shrinks the correlation with the past by sqrt(1 - beta).
assert abs(float(x_next.var()) - 1.0) < 0.02
corr = float(jnp.corrcoef(x_prev, x_next)[0, 1])
assert abs(corr - np.sqrt(1 - 0.3)) < 0.01, corr

# %% [markdown]
# ## 2. The noise schedule
#
# The paper uses $T = 1000$ steps with $\beta_t$ rising **linearly** from $\beta_1 = 10^{-4}$ to $\beta_T = 0.02$
# (section 4): tiny steps, so that each reverse step is nearly Gaussian too. Everything else derives from the $\beta_t$:
#
# $$\alpha_t = 1 - \beta_t, \qquad \bar\alpha_t = \prod_{s=1}^{t} \alpha_s .$$
#
# $\bar\alpha_t$ is how much of the signal's variance survives after $t$ steps. `nanoddpm_utils.schedule` precomputes
# every such array in float64 (a product of 1000 numbers near 1 loses digits in float32) and stores it as float32.
#
# **Index convention.** As in the official code, arrays are 0-indexed: index `t` (0 … T−1) holds the paper's step
# $t+1$. So `schedule.betas[0]` is $\beta_1$, and `t = 0` in code means "noised for one step".

# %%
T = 1000
betas = np.linspace(1e-4, 0.02, T)  # float64
alphas_cumprod = np.cumprod(1.0 - betas)  # abar_t
linear, cosine = make_schedule("linear", T), make_schedule("cosine", T)
print(f"abar after 1 step: {alphas_cumprod[0]:.6f}, after 500: {alphas_cumprod[499]:.4f}, "
      f"after 1000: {alphas_cumprod[-1]:.2e}")

# %%
np.testing.assert_allclose(linear.betas, betas, rtol=1e-6)
np.testing.assert_allclose(linear.alphas_cumprod, alphas_cumprod, rtol=1e-5)
assert float(linear.alphas_cumprod[-1]) < 1e-4  # x_T keeps < 0.01% of the signal's variance

# %% [markdown]
# ## 3. Jumping to any step: the closed form $q(x_t \mid x_0)$
#
# Training needs $x_t$ at a random $t$ for every image; running the chain $t$ times would be wasteful. Because a sum
# of independent Gaussians is Gaussian, the chain collapses to one step (eq. 4):
#
# $$q(x_t \mid x_0) = \mathcal{N}\!\left(x_t;\ \sqrt{\bar\alpha_t}\, x_0,\ (1-\bar\alpha_t) I\right)
#   \quad\Longleftrightarrow\quad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon .$$
#
# *Proof by induction.* Suppose $x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\epsilon'$. Then
# $x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{1-\alpha_t}\,\epsilon$ has mean $\sqrt{\alpha_t \bar\alpha_{t-1}}\,x_0 = \sqrt{\bar\alpha_t}\,x_0$
# and variance $\alpha_t(1-\bar\alpha_{t-1}) + (1-\alpha_t) = 1 - \bar\alpha_t$. $\square$
#
# The **signal-to-noise ratio** of $x_t$ is $\mathrm{SNR}(t) = \bar\alpha_t / (1-\bar\alpha_t)$. Here is eq. 4 written
# inline; the package's `q_sample` is the same line.

# %%
def q_sample_inline(abar, x0, t, noise):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4); t is the 0-indexed step."""
    return jnp.sqrt(abar[t]) * x0 + jnp.sqrt(1.0 - abar[t]) * noise


x0 = jnp.linspace(-1.0, 1.0, 7)
eps = jax.random.normal(jax.random.key(1), x0.shape)
print("x_251 of seven values from -1 to 1:", q_sample_inline(linear.alphas_cumprod, x0, 250, eps))

# %%
for t in (0, 250, 999):
    np.testing.assert_allclose(q_sample_inline(linear.alphas_cumprod, x0, t, eps),
                               q_sample(linear, x0, jnp.array(t), eps), rtol=1e-6, atol=1e-6)

# %% [markdown]
# ## 4. Linear versus cosine schedules
#
# The same picture in three curves. With the linear schedule $\bar\alpha_t$ falls fast: the last few hundred steps
# are almost pure noise and teach the model little. The cosine schedule of Nichol & Dhariwal (2021),
# $\bar\alpha_t = f(t)/f(0)$ with $f(t) = \cos^2\!\big(\tfrac{t/T + s}{1+s}\tfrac{\pi}{2}\big)$ and $s = 0.008$, destroys
# information at a steadier pace (its $\log \mathrm{SNR}$ falls almost linearly in the middle; its last $\beta_t$ are
# clipped at 0.999, hence the jump at the very end). The paper uses the linear one; the package offers both.

# %%
def snr(schedule):
    abar = np.asarray(schedule.alphas_cumprod, dtype=np.float64)
    return abar / (1.0 - abar)


steps = np.arange(1, T + 1)  # the paper's t
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
for name, s in (("linear", linear), ("cosine", cosine)):
    for ax, curve in zip(axes, (s.betas, s.alphas_cumprod, np.log10(snr(s)))):
        ax.plot(steps, curve, label=name)
for ax, title in zip(axes, (r"$\beta_t$", r"$\bar\alpha_t$ (signal variance kept)", r"$\log_{10}\,\mathrm{SNR}(t)$")):
    ax.set(title=title, xlabel="t")
    ax.legend()
axes[0].set_yscale("log")
fig.tight_layout()
plt.show()

# %%
# Halfway, the cosine schedule keeps about half the signal; the linear one keeps under 10%.
assert float(cosine.alphas_cumprod[T // 2]) > 0.45 and float(linear.alphas_cumprod[T // 2]) < 0.1

# %% [markdown]
# ## 5. A real image, noised
#
# Two images that ship with scikit-learn (no downloads): an 8×8 handwritten digit (values 0…16) and
# the "china" photograph, cropped and resized to 64×64. Inside the model images live in $[-1, 1]$.

# %%
digits = load_digits().images  # (1797, 8, 8), values 0..16
digit = jnp.asarray(digits[0] / 8.0 - 1.0, dtype=jnp.float32)[..., None]  # (8, 8, 1) in [-1, 1]

photo = load_sample_image("china.jpg")  # (427, 640, 3) uint8: crop the centre square, resize
left = (photo.shape[1] - photo.shape[0]) // 2
photo = np.asarray(Image.fromarray(photo[:, left:left + photo.shape[0]]).resize((64, 64), Image.BICUBIC))
china = jnp.asarray(photo / 127.5 - 1.0, dtype=jnp.float32)  # (64, 64, 3) in [-1, 1]
print(digit.shape, china.shape, f"pixel range {float(china.min()):.2f} .. {float(china.max()):.2f}")

# %% [markdown]
# Noise them at a few steps with **one** draw of $\epsilon$, so each row shows the same noise growing.
# The photo is recognisable long after the digit is not: at 8×8 every pixel matters, while a 64×64
# photo's large shapes average the noise away. The cosine schedule keeps the image for longer.

# %%
show_t = [0, 50, 100, 200, 300, 500, 700, 999]  # 0-indexed
eps_china = jax.random.normal(jax.random.key(2), china.shape)
eps_digit = jax.random.normal(jax.random.key(3), digit.shape)


def noised(schedule, x0, noise):
    return jax.vmap(lambda t: q_sample(schedule, x0, t, noise))(jnp.array(show_t))  # (len(show_t), H, W, C)


titles = [f"t={t + 1}" for t in show_t]
viz.show_images(noised(linear, digit, eps_digit), titles, suptitle="digit, linear schedule")
viz.show_images(noised(linear, china, eps_china), titles, suptitle="photo, linear schedule")
viz.show_images(noised(cosine, china, eps_china), titles, suptitle="photo, cosine schedule")
plt.show()

# %% [markdown]
# How much of the photo is left? Across its pixels, $x_t$'s correlation with $x_0$ is what eq. 4 predicts: with $s$
# the photo's pixel standard deviation and noise independent of the photo,
# $\operatorname{corr}(x_t, x_0) = \sqrt{\bar\alpha_t}\,s / \sqrt{\bar\alpha_t s^2 + 1 - \bar\alpha_t}$.

# %%
abar_shown, s_photo = np.asarray(linear.alphas_cumprod, np.float64)[show_t], float(china.std())
predicted = np.sqrt(abar_shown) * s_photo / np.sqrt(abar_shown * s_photo**2 + 1 - abar_shown)
corrs = [float(jnp.corrcoef(x.ravel(), china.ravel())[0, 1]) for x in noised(linear, china, eps_china)]
print("measured: ", np.round(corrs, 3), "\npredicted:", np.round(predicted, 3))
np.testing.assert_allclose(corrs, predicted, atol=0.03)  # 12,288 pixels: sampling error about 0.01

# %% [markdown]
# ### Try it: choose a schedule
#
# Pick a schedule and drag $t$ (in Jupyter or Colab): the photo and its $x_t$ under that schedule, beside both
# schedules' $\log_{10}\mathrm{SNR}(t)$. Find the step where the photo becomes unrecognisable under each schedule and
# read off the SNR there: about the same number for both, since what you see depends on the SNR, not on $t$.

# %%
viz.schedule_widget(china, eps_china, {"linear": linear, "cosine": cosine}, t=250)

# %% [markdown]
# ## 6. Does the closed form really match the chain?
#
# Eq. 4 says that running eq. 2 step by step and jumping with `q_sample` give the *same distribution* (not the same
# numbers: they use different noise). Test it on the digit: run the chain 1000 steps for many copies at once, in one
# `jax.lax.scan`, recording at every step the per-pixel mean and variance over copies, and all copies of one pixel.

# %%
num_chains = 1_000 if SMOKE else 10_000
i, j = 1, 3  # a pixel on the digit's stroke (value 15 of 16)


def run_chain(key, x0, betas, n):
    """Simulate eq. 2 for n copies of x0; per step return the mean and variance over copies, and pixel (i, j)."""
    def step(x, inputs):
        beta, k = inputs
        x = forward_step(x, beta, jax.random.normal(k, x.shape))
        return x, (x.mean(axis=0), x.var(axis=0), x[:, i, j, 0])

    x = jnp.broadcast_to(x0, (n,) + x0.shape)
    _, out = jax.lax.scan(step, x, (betas, jax.random.split(key, len(betas))))
    return out


# means, variances: (T, 8, 8, 1); pixel_samples: (T, n)
means, variances, pixel_samples = jax.jit(run_chain, static_argnums=3)(jax.random.key(4), digit, linear.betas, num_chains)

# %%
abar = linear.alphas_cumprod[:, None, None, None]  # (T, 1, 1, 1)
true_mean, true_var = jnp.sqrt(abar) * digit[None], jnp.broadcast_to(1.0 - abar, means.shape)
z_mean = (means - true_mean) / jnp.sqrt(true_var / num_chains)  # ~N(0, 1) per step and pixel if eq. 4 is right
# every pixel has the same variance 1 - abar_t: pooled over the 64 pixels, its relative error is ~N(0, 2 / (64 n))
rel_var, se_var = variances.mean(axis=(1, 2, 3)) / (1.0 - linear.alphas_cumprod) - 1.0, np.sqrt(2 / (64 * num_chains))
print(f"worst mean error: {float(jnp.abs(z_mean).max()):.2f} standard errors; worst variance error: "
      f"{float(jnp.abs(rel_var).max()):.4f} ({float(jnp.abs(rel_var).max()) / se_var:.1f} standard errors)")
assert float(jnp.abs(z_mean).max()) < 6 and float(jnp.abs(rel_var).max()) < 6 * se_var

# %% [markdown]
# Mean and variance agree at every step and pixel. But the chain's samples could in principle be non-Gaussian; a
# Kolmogorov–Smirnov test compares whole distributions: the chain's copies of one pixel against one-jump samples.

# %%
ks_t = [9, 99, 299, 999]
fresh = jax.vmap(lambda k, t: q_sample(linear, digit[i, j, 0], t, jax.random.normal(k, (num_chains,))))(
    jax.random.split(jax.random.key(5), len(ks_t)), jnp.array(ks_t))  # (len(ks_t), n)
p_values = [stats.ks_2samp(np.asarray(pixel_samples[t]), np.asarray(f)).pvalue for t, f in zip(ks_t, fresh)]
print("KS p-values:", np.round(p_values, 3))

fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
for ax, chain, exact, what in ((axes[0], means, true_mean, r"mean, closed form $\sqrt{\bar\alpha_t}\,x_0$"),
                               (axes[1], variances, true_var, r"variance, closed form $1-\bar\alpha_t$")):
    ax.plot(steps, chain[:, i, j, 0], ".", ms=2, label="chain (eq. 2), over copies")
    ax.plot(steps, exact[:, i, j, 0], label=what)
    ax.set(title=f"{what.split(',')[0]} of one pixel", xlabel="t")
for samples, label in ((pixel_samples[299], "chain"), (fresh[2], "q_sample (one jump)")):
    axes[2].hist(np.asarray(samples), np.linspace(-3, 4, 50), alpha=0.5, density=True, label=label)
axes[2].set(title="one pixel's distribution at t = 300")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
assert min(p_values) > 1e-3, p_values  # no evidence that the two distributions differ

# %% [markdown]
# ## 7. Going back: the posterior $q(x_{t-1} \mid x_t, x_0)$
#
# The model will have to run the chain *backwards*. The true reverse step $q(x_{t-1} \mid x_t)$ depends on the whole
# data distribution and is intractable, but conditioned on $x_0$ too it is a Gaussian we can write down. By Bayes'
# rule and the Markov property, $q(x_{t-1} \mid x_t, x_0) \propto q(x_t \mid x_{t-1})\, q(x_{t-1} \mid x_0)$: a product of
# eq. 2 and eq. 4. Keep the terms of its logarithm that involve $x_{t-1}$ (one coordinate; all are independent):
#
# $$-\frac12\left[\frac{(x_t - \sqrt{\alpha_t}\,x_{t-1})^2}{\beta_t}
#   + \frac{(x_{t-1} - \sqrt{\bar\alpha_{t-1}}\,x_0)^2}{1-\bar\alpha_{t-1}}\right]
#   = -\frac12\left[A\,x_{t-1}^2 - 2B\,x_{t-1}\right] + \text{const},\quad
#   A = \frac{\alpha_t}{\beta_t} + \frac{1}{1-\bar\alpha_{t-1}},\quad
#   B = \frac{\sqrt{\alpha_t}}{\beta_t}\,x_t + \frac{\sqrt{\bar\alpha_{t-1}}}{1-\bar\alpha_{t-1}}\,x_0 .$$
#
# Completing the square, $A x^2 - 2Bx = A\,(x - B/A)^2 - B^2/A$: a Gaussian with variance $1/A$ and mean $B/A$.
# Since $\alpha_t(1-\bar\alpha_{t-1}) + \beta_t = 1 - \bar\alpha_t$, $A = \frac{1-\bar\alpha_t}{\beta_t(1-\bar\alpha_{t-1})}$, and
# (eqs. 6–7)
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\!\left(x_{t-1};\ \tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\right),\qquad
#   \tilde\beta_t = \frac1A = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t ,$$
# $$\tilde\mu_t(x_t, x_0) = \frac BA = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0
#   + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t .$$
#
# Training (notebook 04 onwards) pushes the model's reverse step $p_\theta(x_{t-1} \mid x_t)$ towards this
# posterior. Written inline with $\bar\alpha_0 = 1$:

# %%
def posterior_inline(betas, x0, x_t, t):
    """Mean and variance of q(x_{t-1} | x_t, x_0), eqs. 6-7 (t 0-indexed, float64 NumPy)."""
    abar = np.cumprod(1.0 - betas)
    abar_prev = np.append(1.0, abar[:-1])
    coef1 = np.sqrt(abar_prev[t]) * betas[t] / (1.0 - abar[t])
    coef2 = np.sqrt(1.0 - betas[t]) * (1.0 - abar_prev[t]) / (1.0 - abar[t])
    return coef1 * x0 + coef2 * x_t, betas[t] * (1.0 - abar_prev[t]) / (1.0 - abar[t])

# %% [markdown]
# Check the algebra without redoing it: on a fine grid of $x_{t-1}$, multiply the two Gaussian densities we started
# from, normalise the product numerically, and compare it with $\mathcal{N}(\tilde\mu_t, \tilde\beta_t)$ at several $t$.
# A wrong coefficient (a missing square root, $\bar\alpha_t$ for $\bar\alpha_{t-1}$) moves or widens the curve.

# %%
normal_pdf = lambda x, mean, var: stats.norm.pdf(x, mean, np.sqrt(var))  # noqa: E731
abar_prev64 = np.append(1.0, np.cumprod(1.0 - betas)[:-1])
x0_val, xt_val, gaps = 0.5, 0.2, {}
fig, axes = plt.subplots(1, 4, figsize=(13, 2.8))
for ax, t in zip(axes, (1, 10, 100, 999)):  # 0-indexed: x_t is the paper's x_{t+1}
    mean, var = posterior_inline(betas, x0_val, xt_val, t)
    grid = np.linspace(mean - 8 * np.sqrt(var), mean + 8 * np.sqrt(var), 4001)
    product = (normal_pdf(xt_val, np.sqrt(1.0 - betas[t]) * grid, betas[t])  # q(x_t | x_{t-1} = grid), eq. 2
               * normal_pdf(grid, np.sqrt(abar_prev64[t]) * x0_val, 1.0 - abar_prev64[t]))  # q(x_{t-1} | x_0), eq. 4
    product /= np.trapezoid(product, grid)
    formula = normal_pdf(grid, mean, var)
    gaps[t] = np.abs(product - formula).max() / formula.max()
    ax.plot(grid, product, lw=4, alpha=0.4, label="normalised product")
    ax.plot(grid, formula, "k--", lw=1, label=r"$\mathcal{N}(\tilde\mu_t, \tilde\beta_t)$")
    ax.set(title=f"t = {t + 1}: largest gap {gaps[t]:.1e}", xlabel="$x_{t-1}$", yticks=[])
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %%
# The formula is the normalised product, up to the grid's integration error, at every t.
assert all(gap < 1e-5 for gap in gaps.values()), gaps

# %% [markdown]
# The package precomputes the same coefficients in float64 (`posterior_mean_coef1`, `posterior_mean_coef2`,
# `posterior_variance`; `q_posterior_mean_variance`):

# %%
for t in (1, 100, 999):
    mean, var = posterior_inline(betas, 0.5, 0.2, t)
    pkg_mean, pkg_var, _ = q_posterior_mean_variance(linear, jnp.array(0.5), jnp.array(0.2), jnp.array(t))
    np.testing.assert_allclose([pkg_mean, pkg_var], [mean, var], rtol=1e-5)

# %% [markdown]
# ## Summary
#
# - One forward step shrinks the signal by $\sqrt{1-\beta_t}$ and adds noise of variance $\beta_t$ (eq. 2): the
#   variance stays at 1. $\bar\alpha_t = \prod_s (1-\beta_s)$ says how much signal is left; eq. 4 samples $x_t$ in one
#   jump (`q_sample`), and it matches 1000 chained steps in mean, variance and distribution.
# - What a noised image looks like depends on its signal-to-noise ratio; the schedule decides when each is reached.
# - Given $x_0$, the reverse step is Gaussian (eqs. 6–7, `q_posterior_mean_variance`), by completing the square in
#   the product of eqs. 2 and 4: the target the network will learn. The network denoises at every noise level with
#   one set of weights: how does it know the level? It can be told $t$, or read the noise off the image (notebook 02).
#
# ## Exercises
#
# 1. **Break the posterior.** In `posterior_inline`, replace `np.sqrt(1.0 - betas[t])` by `(1.0 - betas[t])`
#    (a forgotten square root) and rerun the grid check of section 7. Which $t$ fail, and why is the gap
#    largest where $\beta_t$ is largest? Then try `abar_prev[t]` → `abar[t]` in `coef1`.
# 2. **Without the shrink.** Suppose each step only added noise, $x_t = x_{t-1} + \sqrt{\beta_t}\,\epsilon$ (a
#    "variance-exploding" process). With the linear schedule and $\operatorname{Var}[x_0] = 1$, what is $\operatorname{Var}[x_T]$?
# 3. **Half the signal.** At which paper step $t$ does $\mathrm{SNR}(t)$ first fall below 1 for the linear
#    schedule, and for the cosine one? Work it out from `alphas_cumprod`, then look in the widget.
#
# Write your numbers for 2 and 3 here; the cell after the solutions checks them (by simulation for 2).

# %%
var_T_answer = None  # exercise 2: your number for Var[x_T]
snr_below_one = {"linear": None, "cosine": None}  # exercise 3: the paper's t (1 .. 1000) for each schedule

# %% [markdown]
# ## Solutions
#
# 1. All four $t$ fail, with gaps from about $5\cdot10^{-4}$ ($t = 2$) to $10^{-2}$ ($t = 1000$): the missing root
#    shifts the mean by about $\beta_t x_t / 2$, against a posterior width $\sqrt{\tilde\beta_t} \approx \sqrt{\beta_t}$, so
#    the error grows like $\sqrt{\beta_t}$. With `abar[t]` in `coef1`, $t = 2, 11, 101$ fail but $t = 1000$ passes: there
#    $\sqrt{\bar\alpha_{999}} \approx 0.006$, $x_0$ hardly matters, and neither does its coefficient. Hence several $t$.
# 2. Without the shrink the variances add up: $\operatorname{Var}[x_T] = 1 + \sum_t \beta_t = 1 + T\,\frac{\beta_1 + \beta_T}{2}
#    \approx 11.05$: inputs of very different widths at different $t$, which the shrink by $\sqrt{1-\beta_t}$ avoids.
# 3. The first $t$ where $\bar\alpha_t < 1 - \bar\alpha_t$, i.e. $\bar\alpha_t < 1/2$: `np.argmax(snr(s) < 1) + 1`, which gives
#    $t = 260$ for the linear schedule and $t = 497$, about halfway, for the cosine one.
#
# The cell below checks your answers, or these where you left `None`.

# %%
var_T_answer = var_T_answer if var_T_answer is not None else 1 + betas.sum()
rng = np.random.default_rng(20)
x = rng.standard_normal(20_000)
for beta in betas:  # the variance-exploding chain, simulated
    x = x + np.sqrt(beta) * rng.standard_normal(x.shape)
print(f"exercise 2: simulated Var[x_T] = {x.var():.2f}, your answer {var_T_answer:.2f}")
assert abs(var_T_answer / x.var() - 1) < 0.05, "not quite: add up the variance each step contributes"
for name, sched in (("linear", linear), ("cosine", cosine)):
    t = snr_below_one[name] or int(np.argmax(snr(sched) < 1)) + 1
    assert snr(sched)[t - 1] < 1 <= (snr(sched)[t - 2] if t > 1 else np.inf), f"exercise 3, {name}: not quite"
    print(f"exercise 3: SNR first falls below 1 at t = {t} ({name})")

# %% [markdown]
# ## Go further
#
# - The paper, section 2 and Appendix A; Lilian Weng, [What are diffusion models?](https://lilianweng.github.io/posts/2021-07-11-diffusion-models/).
# - Nichol & Dhariwal, [Improved DDPM](https://arxiv.org/abs/2102.09672) (2021), section 3.2: why the cosine schedule;
#   Kingma et al., [Variational Diffusion Models](https://arxiv.org/abs/2107.00630) (2021): the schedule as a function
#   of the SNR alone; Karras et al., [EDM](https://arxiv.org/abs/2206.00364) (2022): a noise level $\sigma$ instead of $t$.
# - Song, Meng & Ermon, [DDIM](https://arxiv.org/abs/2010.02502) (2021): the same marginals from a non-Markovian
#   process, hence a faster sampler ([notebook 08](08_fast_sampling.ipynb)).
#
# **Next:** [02 — The sinusoidal timestep embedding](02_sinusoidal_embedding.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/02_sinusoidal_embedding.ipynb)
