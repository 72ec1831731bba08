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
# # 02 — Telling the network the time: the sinusoidal timestep embedding
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/02_sinusoidal_embedding.ipynb)
#
# Part 2 of **nanoJaxDDPM** (DDPM, Ho et al. 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# In [notebook 01](01_forward_process.ipynb) we built the forward process. The model that reverses it is
# one network $\epsilon_\theta(x_t, t)$ that predicts the noise in $x_t$ at *every* step $t$, with one set of
# weights for all 1000 steps. DDPM tells it the step $t$. Does it have to?
#
# **What you will learn**
# - why the best noise prediction depends on the noise level, shown on a dataset of two points, and how much of
#   that level an image gives away by itself (enough that a UNet can be trained without $t$);
# - the sinusoidal embedding of $t$ (the Transformer's position encoding, as the official DDPM code writes it),
#   derived, written inline and checked against `nanoddpm_utils.embedding.timestep_embedding`;
# - what it looks like: a heatmap over $t$, and the similarity between timesteps, which depends only on
#   their distance;
# - the small MLP that turns it into the vector every ResBlock receives (`nanoddpm_utils.unet.TimeEmbedding`).

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
import math
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from nanoddpm_utils import widgets
from nanoddpm_utils.diffusion import q_sample
from nanoddpm_utils.embedding import timestep_embedding
from nanoddpm_utils.schedule import make_schedule
from nanoddpm_utils.unet import TimeEmbedding, count_params

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 1. Does the network need $t$?
#
# Take the smallest dataset there is: one pixel that is either $-1$ or $+1$ with equal probability.
# Noise it with eq. 4, $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$. The best possible
# prediction of $\epsilon$ from $x_t$ (in squared error, the loss we will train with) is the conditional mean.
# With $a = \sqrt{\bar\alpha_t}$ and $s^2 = 1-\bar\alpha_t$, Bayes' rule gives
# $\mathbb{E}[x_0 \mid x_t] = \tanh(a\,x_t / s^2)$, hence
#
# $$\mathbb{E}[\epsilon \mid x_t] = \frac{x_t - a\,\tanh(a\,x_t / s^2)}{s}.$$

# %%
T = 1000
schedule = make_schedule("linear", T)


def best_eps(x_t, t):
    """E[eps | x_t] for data x_0 = +-1 (equally likely), at the 0-indexed step t."""
    a, s = schedule.sqrt_alphas_cumprod[t], schedule.sqrt_one_minus_alphas_cumprod[t]
    return (x_t - a * jnp.tanh(a * x_t / s**2)) / s


# Brute force for comparison: noise many samples, then average the true eps within narrow bins of x_t.
n = 100_000 if SMOKE else 2_000_000
k1, k2 = jax.random.split(jax.random.key(0))
x0 = jnp.where(jax.random.bernoulli(k1, 0.5, (n,)), 1.0, -1.0)
eps = np.asarray(jax.random.normal(k2, (n,)))
edges = np.linspace(-3, 3, 61)
curves = {}  # t -> rows (bin centre, mean of eps, mean of the formula, standard error of the mean of eps)
for t in (50, 200, 500, 900):
    x_t = np.asarray(q_sample(schedule, x0, t, eps))
    formula = np.asarray(best_eps(x_t, t))
    which = np.digitize(x_t, edges)
    rows = []
    for b in range(1, len(edges)):
        m = which == b
        if m.sum() >= 50:
            rows.append((x_t[m].mean(), eps[m].mean(), formula[m].mean(), eps[m].std() / np.sqrt(m.sum())))
    curves[t] = np.array(rows).T

xs = jnp.linspace(-3, 3, 301)
for k, t in enumerate(curves):
    plt.plot(xs, best_eps(xs, t), color=f"C{k}", label=f"t = {t + 1}")
    plt.plot(curves[t][0], curves[t][1], ".", color=f"C{k}")
plt.ylim(-6, 6)
plt.xlabel("$x_t$")
plt.ylabel(r"best prediction $\mathbb{E}[\epsilon \mid x_t]$")
plt.title("the same $x_t$ calls for a different answer at each $t$\n(lines: formula, dots: brute force)")
plt.legend()
plt.show()

# %%
# The formula matches brute force in every bin (the per-bin mean of the formula, to avoid binning bias) ...
for t, (centre, mean_eps, mean_formula, se) in curves.items():
    assert len(centre) > 10
    assert np.all(np.abs(mean_eps - mean_formula) < 5 * se + 1e-3), t
# ... and the best answers at t = 51 and t = 501 are far apart: no single function of x_t fits both.
assert abs(float(best_eps(0.5, 50) - best_eps(0.5, 500))) > 0.3

# %% [markdown]
# For this one-pixel dataset the value $x_t = 0.5$ can come from any step, and the best answer depends on which:
# a network that saw only $x_t$ would have to settle for one compromise curve, wrong at every noise level.
# **For a single pixel, the network needs $t$.**
#
# Images are different. They have many pixels, and noise does not look like an image: neighbouring pixels of
# a photo are nearly equal, while the noise is independent from pixel to pixel. So the noise level can be
# read off $x_t$ alone. A classic estimator: cut the image into 2×2 blocks $\begin{smallmatrix}a & b\\ c & d\end{smallmatrix}$
# and take $h = (a - b - c + d)/2$, the block's "checkerboard" component. A smooth image contributes almost
# nothing to $h$; independent noise of standard deviation $\sigma$ gives $h \sim \mathcal{N}(0, \sigma^2)$ (four
# terms of variance $\sigma^2/4$). The median of $|h|$ over the blocks, divided by 0.6745 (the median of $|z|$
# for $z \sim \mathcal{N}(0, 1)$), estimates $\sigma$, and in $x_t$ the noise has $\sigma_t = \sqrt{1-\bar\alpha_t}$.
#
# We try it on grey 64×64 images cut from the two photos that ship with scikit-learn (128×128 crops, averaged
# over 2×2 blocks, as datasets of small images are made), and on the 8×8 digits.

# %%
from sklearn.datasets import load_digits, load_sample_images


def estimate_sigma(x):
    """Noise standard deviation of each image in a batch (N, H, W), from its 2x2 checkerboard components."""
    h = (x[:, 0::2, 0::2] - x[:, 0::2, 1::2] - x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 2  # (N, H/2, W/2)
    return np.median(np.abs(h).reshape(len(x), -1), axis=1) / 0.6745


rng = np.random.default_rng(0)
photos = [im.mean(-1) / 127.5 - 1 for im in load_sample_images().images]  # grey, in [-1, 1]


def crops_of(size, n=200):
    """n grey size x size images: random 2size x 2size crops of the two photos (427 x 640), averaged over 2x2 blocks."""
    corners = rng.integers(0, [427 - 2 * size, 640 - 2 * size], (n, 2))
    return np.stack([photos[k % 2][i:i + 2 * size, j:j + 2 * size].reshape(size, 2, size, 2).mean(axis=(1, 3))
                     for k, (i, j) in enumerate(corners)])  # (n, size, size)


photo_crops = crops_of(64)
digit_images = load_digits().images[:200] / 8.0 - 1.0  # (200, 8, 8)

sigmas = np.asarray(schedule.sqrt_one_minus_alphas_cumprod, np.float64)
abar = np.asarray(schedule.alphas_cumprod, np.float64)
check_t = np.array([5, 10, 20, 50, 100, 200, 300, 500, 999])
estimates = {}  # name -> (len(check_t), 200) estimated sigma
for name, x0_images in (("photos, 64x64", photo_crops), ("digits, 8x8", digit_images)):
    estimates[name] = np.stack([
        estimate_sigma(np.sqrt(abar[t]) * x0_images + sigmas[t] * rng.standard_normal(x0_images.shape))
        for t in check_t])

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(sigmas[check_t], sigmas[check_t], "k--", lw=1, label="perfect estimate")
for k, (name, est) in enumerate(estimates.items()):
    lo, mid, hi = np.percentile(est, [10, 50, 90], axis=1)
    ax.errorbar(sigmas[check_t] * (1 + 0.03 * k), mid, [mid - lo, hi - mid], fmt="o", capsize=3, label=name)
ax.set(xscale="log", yscale="log", xlabel=r"true noise level $\sigma_t = \sqrt{1-\bar\alpha_t}$",
       ylabel=r"estimated from $x_t$ alone", title="median and 10-90% range over 200 images")
ax.legend()
plt.show()

# %%
photo_err = np.median(estimates["photos, 64x64"], axis=1) / sigmas[check_t] - 1
digit_err = np.median(estimates["digits, 8x8"], axis=1) / sigmas[check_t] - 1
print("median relative error, photos:", np.round(photo_err, 3))
print("median relative error, digits:", np.round(digit_err, 3))
# Photos: the noise level is read off x_t within 10% at every step from t = 51 (sigma = 0.17) on ...
assert np.all(np.abs(photo_err[check_t >= 50]) < 0.1)
# ... while on 8x8 digits the sharp strokes look like noise: at low noise the estimate is off by a factor of 2+.
assert np.all(digit_err[check_t <= 20] > 1.0)

# %% [markdown]
# On photos the noise level is *visible* in $x_t$ from a few percent of the way in (below that, the photo's own
# fine texture passes for noise); on the 8×8 digits, whose sharp strokes look like noise, much later. So a UNet
# can learn to infer it: fast.ai's course
# ([course22p2](https://github.com/fastai/course22p2), notebook `17_DDPM_v2-no-t.ipynb`) trains a DDPM UNet
# whose $t$ input is always zero. Telling the network $t$ remains useful:
# it is exact where the image is ambiguous (low noise on images with sharp detail, like our 8×8 digits, and
# small images with few pixels to average over), it costs almost nothing, and it lets one set of weights
# behave differently at each noise level. DDPM gives it; later models condition on the noise level $\sigma$
# itself (EDM, Karras et al. 2022).
#
# How should a number like $t$ enter a network? One could feed $t/T$, but
# networks are slow to learn functions that change quickly with a single scalar input (their "spectral
# bias", the reason behind Fourier features). DDPM (section 4: "parameters are shared across time, which is
# specified to the network using the Transformer sinusoidal position embedding") encodes $t$ with sines and
# cosines of many frequencies.

# %% [markdown]
# ## 2. The sinusoidal embedding
#
# For an embedding of dimension $d$, take $h = d/2$ frequencies, geometrically spaced from 1 down to $1/10000$:
#
# $$\omega_i = 10000^{-i/(h-1)}, \qquad i = 0, \dots, h-1,$$
# $$\mathrm{emb}(t) = \big[\sin(t\,\omega_0), \dots, \sin(t\,\omega_{h-1}),\ \cos(t\,\omega_0), \dots, \cos(t\,\omega_{h-1})\big].$$
#
# This is the official DDPM code's version (`get_timestep_embedding`): the sines first, then the cosines,
# and the exponent divided by $h-1$ so the lowest frequency is exactly $1/10000$. (The Transformer paper
# interleaves sines and cosines and divides by $h$; the difference does not matter, but we match the
# official code exactly.) The periods $2\pi/\omega_i$ run from about 6 steps to about 63 000 steps:
# the fast coordinates tell neighbouring steps apart, the slow ones say roughly where in $[0, T)$ we are.
# `t` is the 0-indexed step, as everywhere in the code.

# %%
def sinusoidal_embedding(t, dim):
    """[sin(t w_0..w_{h-1}), cos(t w_0..w_{h-1})] with w_i = 10000^(-i / (h - 1)), h = dim // 2."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half) / (half - 1))  # (h,)
    args = jnp.asarray(t, jnp.float32)[..., None] * freqs  # (..., h)
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)  # (..., 2h)


dim = 128
ts = jnp.arange(T)
emb = sinusoidal_embedding(ts, dim)  # (T, dim)
print(emb.shape, "first sines at t=1:", emb[1, :4])

# %%
# The inline version equals the package's, for a batch of timesteps and for one scalar t.
for d in (32, 128):
    np.testing.assert_allclose(sinusoidal_embedding(ts, d), timestep_embedding(ts, d), atol=1e-6)
np.testing.assert_allclose(sinusoidal_embedding(7, dim), timestep_embedding(jnp.array(7), dim), atol=1e-6)
# Each frequency contributes a point on the unit circle, so every embedding has the same length sqrt(h).
h = dim // 2
np.testing.assert_allclose(emb[:, :h] ** 2 + emb[:, h:] ** 2, 1.0, atol=1e-5)

# %% [markdown]
# ## 3. What it looks like
#
# Rows are timesteps, columns the 128 coordinates. Within each half, the first columns (high frequencies)
# flip every few steps, while the last ones (low frequencies) change slowly or hardly at all.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [1.2, 1]})
im = axes[0].imshow(emb, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
axes[0].axvline(h - 0.5, color="k", lw=1)
axes[0].set(title="emb(t): sin half | cos half", xlabel="coordinate", ylabel="t (0-indexed)")
fig.colorbar(im, ax=axes[0])
for i in (0, 8, 16, 32, 48):
    axes[1].plot(ts, emb[:, i], label=rf"$\sin(t\,\omega_{{{i}}})$, period {2 * math.pi * 10000 ** (i / (h - 1)):.0f}")
axes[1].set(title="a few sine coordinates", xlabel="t", xlim=(0, 300))
axes[1].legend(fontsize=7, loc="lower right")
fig.tight_layout()
plt.show()

# %%
# Coordinate 0 (omega = 1) oscillates fastest, the last sine (omega = 1e-4) barely moves over 1000 steps.
assert np.sum(np.diff(np.sign(emb[:, 0])) != 0) > 300
assert float(jnp.abs(emb[:, h - 1]).max()) < 0.1

# %% [markdown]
# ## 4. Similarity between timesteps
#
# How alike are the codes of two steps $t$ and $s$? Since $\sin a \sin b + \cos a \cos b = \cos(a-b)$,
#
# $$\frac{\mathrm{emb}(t)\cdot\mathrm{emb}(s)}{\lVert\mathrm{emb}(t)\rVert\,\lVert\mathrm{emb}(s)\rVert}
#   = \frac{1}{h}\sum_{i=0}^{h-1} \cos\big((t-s)\,\omega_i\big):$$
#
# the cosine similarity depends only on the **distance** $t - s$, never on where $t$ is. Nearby steps
# get similar codes, distant steps less similar ones, in the same way everywhere along the chain.

# %%
unit = emb / jnp.linalg.norm(emb, axis=1, keepdims=True)
similarity = unit @ unit.T  # (T, T) cosine similarities

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
im = axes[0].imshow(similarity, cmap="viridis", vmin=-0.2, vmax=1)
axes[0].set(title="cosine similarity of emb(t) and emb(s)", xlabel="s", ylabel="t")
fig.colorbar(im, ax=axes[0])
for t in (100, 500, 900):
    axes[1].plot(ts, similarity[t], label=f"t = {t}")
axes[1].set(title="one row each: a peak at s = t, the same shape everywhere", xlabel="s")
axes[1].legend()
fig.tight_layout()
plt.show()

# %%
# The closed form above, for every pair (t, s) ...
freqs = 10000.0 ** (-np.arange(h) / (h - 1))
by_distance = np.cos(np.arange(-(T - 1), T)[:, None] * freqs).mean(-1)  # (2T - 1,): distance -999 .. 999
delta = np.arange(T)[:, None] - np.arange(T)[None, :]  # (T, T): t - s
np.testing.assert_allclose(similarity, by_distance[delta + T - 1], atol=1e-4)  # ... so only t - s matters
# Every step is most similar to itself, then to its neighbours t - 1 and t + 1.
s_off = np.asarray(similarity) - 2 * np.eye(T)
assert np.all(np.abs(np.argmax(s_off, axis=1) - np.arange(T)) == 1)

# %% [markdown]
# ### Try it: a slider over $t$
#
# The top panel is the 128 numbers the network receives for the chosen step; the bottom panel shows how
# similar that code is to the code of every other step.

# %%
def show_embedding(t):
    fig, axes = plt.subplots(2, 1, figsize=(10, 4.5))
    axes[0].bar(np.arange(dim), emb[t], color=["C0"] * h + ["C1"] * h)
    axes[0].set(title=f"emb(t = {t}): sines (blue), cosines (orange)", ylim=(-1.1, 1.1))
    axes[1].plot(ts, similarity[t])
    axes[1].axvline(t, color="k", lw=0.5)
    axes[1].set(title="cosine similarity to every other step", xlabel="s", ylim=(-0.3, 1.05))
    fig.tight_layout()
    return fig


widgets.slider(show_embedding, max=T - 1, value=100)

# %% [markdown]
# ## 5. From embedding to conditioning vector: the time MLP
#
# The sinusoids are fixed features. As in the official code, the UNet passes them through a small
# MLP, learned with the rest of the network, with `ch` the UNet's base width (128 in the paper):
#
# $$\mathrm{temb}(t) = W_1\,\mathrm{swish}\big(W_0\,\mathrm{emb}(t) + b_0\big) + b_1, \qquad
#   \mathrm{emb}(t) \in \mathbb{R}^{ch},\ \mathrm{temb}(t) \in \mathbb{R}^{4ch},$$
#
# with $\mathrm{swish}(x) = x\,\sigma(x)$. Every ResBlock of the UNet then adds its own linear projection of
# $\mathrm{swish}(\mathrm{temb}(t))$ to its feature maps, one number per channel
# ([notebook 03](03_unet.ipynb)). Here is the package's `TimeEmbedding` for the paper's `ch = 128`, and the
# same computation written with its raw weights (our `Linear` stores `weight` as `(in, out)`).

# %%
ch = 128
time_mlp = TimeEmbedding(ch, key=jax.random.key(1))
print(time_mlp.dense0.weight.shape, time_mlp.dense1.weight.shape)


def time_mlp_inline(mlp, t):
    e = sinusoidal_embedding(t, mlp.ch)  # (ch,)
    hidden = e @ mlp.dense0.weight + mlp.dense0.bias  # (4ch,)
    hidden = hidden * jax.nn.sigmoid(hidden)  # swish
    return hidden @ mlp.dense1.weight + mlp.dense1.bias  # (4ch,)


temb = jax.vmap(time_mlp)(ts)  # (T, 4ch): one conditioning vector per step
print(temb.shape)

# %%
for t in (0, 10, 999):
    np.testing.assert_allclose(time_mlp_inline(time_mlp, t), time_mlp(jnp.array(t)), rtol=1e-5, atol=1e-5)
# Parameters: two dense layers, ch -> 4ch -> 4ch, with biases.
assert count_params(time_mlp) == ch * 4 * ch + 4 * ch + 4 * ch * 4 * ch + 4 * ch == 328_704
# Distinct steps get distinct vectors, already at initialisation.
assert float(jnp.linalg.norm(temb[1:] - temb[:-1], axis=1).min()) > 1e-3

# %% [markdown]
# ## Summary
#
# - The best denoiser differs from one noise level to the next. A single pixel does not reveal its noise level;
#   an image mostly does (a UNet can be trained without $t$), except at low noise on sharp or tiny images.
#   DDPM tells the network $t$: exact, cheap, and one less thing to learn.
# - $t$ enters as $h$ sines and $h$ cosines of geometrically spaced frequencies: every step gets a distinct
#   code of the same length, and the similarity of two codes depends only on how far apart the steps are.
# - A two-layer MLP (`TimeEmbedding`) turns the code into a $4\cdot ch$ vector, which every ResBlock projects
#   and adds to its channels.
#
# ## Exercises
#
# 1. **Bigger images, better estimates?** Rerun the noise-level experiment of section 1 on 32×32 and 128×128 crops
#    (`crops_of(32)`, `crops_of(128)`). Which improves: the median estimate at small $t$, or the spread between
#    images at large $t$? Why (how many 2×2 blocks does the median see)?
# 2. **Interleaved or not.** The Transformer paper interleaves the sines and cosines,
#    $[\sin(t\omega_0), \cos(t\omega_0), \sin(t\omega_1), \dots]$. Write `interleaved(t, dim)` below. Its
#    coordinates are a permutation of ours, so the cosine-similarity matrix of section 4 must not change.
# 3. **Too few frequencies.** With `dim = 8`, which distance $t - s > 0$ gives the most similar codes? With
#    `dim = 128` it is 1, the neighbours. What would the answer mean for a network that must tell steps apart?
#
# Write your answers to 2 and 3 here; the cell after the solutions checks them.

# %%
def interleaved(t, dim):
    """Exercise 2: the Transformer's ordering [sin w_0, cos w_0, sin w_1, cos w_1, ...]; replace the line below."""
    return None


most_similar_distance_dim8 = None  # exercise 3: a distance between 1 and 999

# %% [markdown]
# ## Solutions
#
# 1. The spread between images at large $t$ halves each time the side doubles: four times as many 2×2 blocks, and
#    the error of a median shrinks like one over the square root of their number. The median at small $t$ does not
#    improve: its error is the photos' own fine texture, taken for noise, and bigger crops hold as much texture.
# 2. Stack the two halves along a new last axis and flatten it: `[sin_0, cos_0, sin_1, cos_1, ...]`.
# 3. 132 steps (similarity 0.987), then 138 and 6, all above the neighbours' 0.885. With four frequencies the
#    fast sines come back almost in phase after some steps while the slow ones have hardly moved: the code
#    repeats, and the network would confuse $t$ with $t \pm 132$ more easily than with $t \pm 1$.
#
# The cell below runs solution 1, and checks your answers to 2 and 3 (or these, where you left `None`).

# %%
for size in (32, 64, 128):
    crops = crops_of(size)
    est = {t: estimate_sigma(np.sqrt(abar[t]) * crops + sigmas[t] * rng.standard_normal(crops.shape)) / sigmas[t]
           for t in (4, 499)}
    lo, hi = np.percentile(est[499], [10, 90])
    print(f"{size}x{size}: median error at t = 5 {np.median(est[4]) - 1:+.2f}; 10-90% range at t = 500 {hi - lo:.3f}")


def interleaved_solution(t, dim):
    e = sinusoidal_embedding(t, dim)  # (..., dim): sines, then cosines
    return jnp.stack([e[..., : dim // 2], e[..., dim // 2:]], axis=-1).reshape(e.shape)


answer = interleaved(ts, dim)
answer = interleaved_solution(ts, dim) if answer is None else answer
np.testing.assert_allclose(np.sort(np.asarray(answer), axis=1), np.sort(np.asarray(emb), axis=1), atol=1e-5)
np.testing.assert_allclose(np.asarray(answer[:, 0::2]), np.asarray(emb[:, :h]), atol=1e-5)  # sines at even places
u = answer / jnp.linalg.norm(answer, axis=1, keepdims=True)
np.testing.assert_allclose(u @ u.T, similarity, atol=1e-4)
e8 = sinusoidal_embedding(ts, 8) / 2.0  # unit length: sqrt(h) = 2
sim8 = np.asarray(e8[0] @ e8[1:].T)  # similarity of step 0 with steps 1 .. 999 (only t - s matters)
distance = most_similar_distance_dim8 or int(np.argmax(sim8)) + 1
assert sim8[distance - 1] == sim8.max(), f"distance {distance}: similarity {sim8[distance - 1]:.3f}, not the largest"
print(f"exercise 2: correct; exercise 3: distance {distance}, similarity {sim8[distance - 1]:.3f} "
      f"(neighbours: {sim8[0]:.3f})")

# %% [markdown]
# ## Go further
#
# - The paper, section 4 and Appendix B (how $t$ enters the network).
# - Vaswani et al. (2017), *Attention is all you need*, section 3.5: the sinusoidal position encoding.
# - Tancik et al. (2020), *Fourier features let networks learn high frequency functions*
#   ([arXiv:2006.10739](https://arxiv.org/abs/2006.10739)): why sinusoids of $t$ beat $t$ itself.
# - Karras et al. (2022), *EDM* ([arXiv:2206.00364](https://arxiv.org/abs/2206.00364)), section 5: conditioning
#   on the noise level $\log\sigma$ instead of $t$. Improved DDPM (Nichol & Dhariwal 2021) and DDIM keep DDPM's
#   embedding; classifier-free guidance (Ho & Salimans 2022) adds a class embedding beside it.
#
# **Next:** [03 — The UNet](03_unet.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/03_unet.ipynb)
