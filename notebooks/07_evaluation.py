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
# # 07 — Evaluation: bits/dim, sample quality and DDIM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/07_evaluation.ipynb)
#
# Part 7, the last, of **nanoJaxDDPM** (DDPM, Ho, Jain & Abbeel 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# We have a trained model ([notebook 04](04_training_loop.ipynb)) and a sampler ([notebook 05](05_reverse_sampler.ipynb)).
# How good is it? The paper answers twice: with a **likelihood** (its Table 1: at most 3.75 bits/dim on CIFAR-10) and with
# **sample quality** (Inception score and FID). Then we make sampling 20× cheaper with **DDIM**
# (Song, Meng & Ermon 2021, [arXiv:2010.02502](https://arxiv.org/abs/2010.02502)), using the same trained weights.
#
# **What you will learn**
# - the variational bound $L = L_T + \sum_{t} L_{t-1} + L_0$ (the paper's eq. 5, derived in
#   [notebook 04](04_training_loop.ipynb)) computed term by term: the prior term, the KL divergences between Gaussians
#   in closed form, and the discretized decoder (eq. 13), each written inline and checked against `nanoddpm_utils.bpd`;
#   then the bound of the digits test split in **bits per dimension**, and which timesteps carry it;
# - an oracle that knows the data exactly, and why its KL terms vanish with $\sigma_t^2 = \tilde\beta_t$ but not with $\beta_t$;
# - sample quality without downloads (`evaluate.digits_quality_table`): a classifier's confidence, class coverage and a
#   Fréchet distance, next to real digits the judges never saw (the floor) and noise (the ceiling); why a Fréchet
#   distance can only be compared with one computed on as many images;
# - DDIM's update (eq. 12 of the DDIM paper) written inline and checked against `sample.ddim_step` /
#   `ddim_sample_loop`; why $\eta = 0$ is deterministic; quality against the number of steps and the wall time it costs,
#   and a slider over the number of steps.

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
from scipy import stats

from nanoddpm_utils import bpd, evaluate, pretrained, sample, train, viz
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits, to_model_range, to_uint8
from nanoddpm_utils.diffusion import (discretized_gaussian_log_likelihood, normal_kl, p_mean_variance,
                                      q_posterior_mean_variance, q_sample)
from nanoddpm_utils.schedule import make_schedule

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 0. A trained model
#
# Everything below evaluates the `digits` model that ships with the package (the EMA weights of notebook 04's preset,
# as the paper evaluates its EMA model). Set `TRAIN_FROM_SCRATCH = True` to train the preset here instead. Evaluating
# takes minutes on a CPU: the bound runs the network $T$ times on every test image, and DDPM sampling $T$ times on every
# batch of samples.
#
# In smoke mode (the test suite) a tiny model with $T = 50$ trains for a few seconds instead: every cell still runs and
# every check that holds for *any* model is still asserted, but its samples are poor, so the checks that need a
# *good* model are skipped.

# %%
TRAIN_FROM_SCRATCH = False  # True: train the digits preset here instead of loading the shipped weights

if SMOKE:
    config = get_preset("smoke").replace(train={"steps": 200, "batch_size": 64, "steps_per_call": 50, "log_every": 50})
    model = train.fit(config, load_digits("train"), progress=False)[0].ema
elif TRAIN_FROM_SCRATCH:
    config = get_preset("digits")
    print(f"training {config.name} for {config.train.steps} steps")
    model = train.fit(config, load_digits("train"))[0].ema
else:
    config, model = pretrained.load("digits")  # EMA weights
model = eqx.nn.inference_mode(model)  # dropout off
schedule = make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps)
T, VARIANCE = schedule.num_timesteps, config.diffusion.variance
test_images = load_digits("test")  # (360, 8, 8, 1) uint8: held out from training
print(f"{config.name}: trained for {config.train.steps} steps, T = {T}, sigma_t^2 = {VARIANCE!r}, "
      f"{len(test_images)} test digits")

# %%
assert config.dataset == "digits" and model.config == config.model and config.model.image_size == 8
assert test_images.shape == (360, 8, 8, 1) and test_images.dtype == np.uint8

# %% [markdown]
# # Part 1 — The likelihood: bits per dimension
#
# ## 1. The variational bound, term by term
#
# [Notebook 04](04_training_loop.ipynb) derived the bound on $-\log p_\theta(x_0)$ (the paper's eqs. 3–5) and trained with
# $L_\mathrm{simple}$, its reweighted form. Here we compute the bound itself, term by term:
#
# $$L = \mathbb{E}_q\Big[\underbrace{D_\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T}
#   + \sum_{t=2}^{T} \underbrace{D_\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}}
#   \;\underbrace{-\log p_\theta(x_0 \mid x_1)}_{L_0}\Big] \;\ge\; -\log p_\theta(x_0).$$
#
# - $L_T$, the **prior term**, compares where the forward process ends, $\mathcal{N}(\sqrt{\bar\alpha_T}x_0, (1-\bar\alpha_T)I)$,
#   with $p(x_T) = \mathcal{N}(0, I)$. It has no parameters; with the paper's schedule ($T = 1000$) it is tiny.
# - $L_{t-1}$, for $t = 2 \dots T$, compares the true posterior $q(x_{t-1} \mid x_t, x_0) = \mathcal{N}(\tilde\mu_t, \tilde\beta_t I)$
#   with the model's step $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 I)$ (eq. 11, notebook 05).
#   It is an expectation over $x_t \sim q(x_t \mid x_0)$; like the official `calc_bpd_loop` we estimate it with **one** draw of
#   $x_t$ per image and per $t$ (the average over a data set removes the noise).
# - $L_0$, the **decoder**, is the probability the last step gives to the actual 8-bit image (eq. 13, below).
#
# Dividing by the number of dimensions $D = H \cdot W \cdot C$ and by $\ln 2$ gives **bits per dimension**, the unit of the
# paper's Table 1. In code indices (0-based, notebook 01) the term computed at step `t` is the paper's $L_t$, so
# `terms[0]` is the decoder $L_0$ and `terms[t]` for `t >= 1` is a KL.
#
# ### The KL between two Gaussians
#
# Every $L_t$ is a KL between diagonal Gaussians, which has a closed form per dimension (notebook 04, eq. 8's pieces):
#
# $$D_\mathrm{KL}\big(\mathcal{N}(\mu_1, \sigma_1^2)\,\|\,\mathcal{N}(\mu_2, \sigma_2^2)\big)
#   = \tfrac12\Big(\log\frac{\sigma_2^2}{\sigma_1^2} + \frac{\sigma_1^2}{\sigma_2^2} + \frac{(\mu_1-\mu_2)^2}{\sigma_2^2} - 1\Big).$$
#
# It is zero exactly when the two Gaussians are equal. Written with log-variances, as the official `normal_kl`:

# %%
def normal_kl_inline(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per dimension, in nats (NumPy, float64)."""
    return 0.5 * (logvar2 - logvar1 + np.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * np.exp(-logvar2) - 1.0)


m1, lv1, m2, lv2 = 0.3, np.log(0.5), -0.2, np.log(2.0)
print(f"KL(N(0.3, 0.5) || N(-0.2, 2)) = {normal_kl_inline(m1, lv1, m2, lv2):.6f} nats")

# %%
# the package's normal_kl is the same formula...
rng = np.random.default_rng(0)
a, b, c, d = rng.normal(size=(4, 1000))
np.testing.assert_allclose(normal_kl(a, b, c, d), normal_kl_inline(a, b, c, d), rtol=1e-5, atol=1e-6)
# ...and it is the KL: the mean of log q(x) - log p(x) over draws x ~ q (Monte Carlo, within 5 standard errors)
x = m1 + np.exp(0.5 * lv1) * rng.standard_normal(400_000)
log_ratio = stats.norm.logpdf(x, m1, np.exp(0.5 * lv1)) - stats.norm.logpdf(x, m2, np.exp(0.5 * lv2))
assert abs(log_ratio.mean() - normal_kl_inline(m1, lv1, m2, lv2)) < 5 * log_ratio.std() / np.sqrt(len(x))
assert normal_kl_inline(m1, lv1, m1, lv1) == 0.0 and np.all(normal_kl_inline(a, b, c, d) >= 0)

# %% [markdown]
# ### The discretized decoder (eq. 13)
#
# Images are 8-bit: each value is one of 256 levels, which in $[-1, 1]$ are $2/255$ apart. A density on $\mathbb{R}$ gives
# no probability to a single point, so the last step integrates its Gaussian over each value's **bin**:
#
# $$p_\theta(x_0 \mid x_1) = \prod_{i=1}^{D} \int_{\delta_-(x_0^i)}^{\delta_+(x_0^i)} \mathcal{N}\big(x;\ \mu_\theta^i(x_1, 1),\ \sigma_1^2\big)\,dx,
# \qquad \delta_+(x) = \begin{cases} \infty & x = 1 \\ x + \tfrac{1}{255} & x < 1 \end{cases}, \quad
# \delta_-(x) = \begin{cases} -\infty & x = -1 \\ x - \tfrac{1}{255} & x > -1. \end{cases}$$
#
# The two edge bins stretch to infinity, so the 256 bins cover the real line and their probabilities sum to one: a true
# discrete distribution, whose $-\log$ is a real code length. Inline, with SciPy's normal CDF in float64 (and, as the
# package does after the official code, a floor of $10^{-12}$ on an inner bin's probability; the edge bins use the log-CDF,
# which stays exact far into the tails):

# %%
def decoder_log_likelihood_inline(x0, mean, sigma):
    """log p(x0 | x1) per dimension (eq. 13): the Gaussian's mass on x0's bin, in nats (NumPy, float64)."""
    x0, mean = np.asarray(x0, np.float64), np.asarray(mean, np.float64)
    upper = np.where(x0 > 0.999, np.inf, x0 + 1 / 255)
    lower = np.where(x0 < -0.999, -np.inf, x0 - 1 / 255)
    z_up, z_lo = (upper - mean) / sigma, (lower - mean) / sigma
    # cdf(up) - cdf(lo), or sf(lo) - sf(up) on the right of the mean, where the cdfs are both ~1 and cancel
    mass = np.where(z_lo > 0, stats.norm.sf(z_lo) - stats.norm.sf(z_up), stats.norm.cdf(z_up) - stats.norm.cdf(z_lo))
    inner = np.log(np.maximum(mass, 1e-12))
    return np.where(x0 < -0.999, stats.norm.logcdf(z_up), np.where(x0 > 0.999, stats.norm.logsf(z_lo), inner))


levels = (np.arange(256) - 127.5) / 127.5  # every value an 8-bit pixel can take, in [-1, 1]
print("log p of the levels -1, 0.004, 1 under N(0, 0.01^2):",
      np.round(decoder_log_likelihood_inline(levels[[0, 128, 255]], 0.0, 0.01), 4))

# %%
for mean, sigma in [(0.0, 0.01), (0.37, 0.003), (-0.99, 0.05), (0.9, 0.5)]:
    inline = decoder_log_likelihood_inline(levels, mean, sigma)
    package = discretized_gaussian_log_likelihood(jnp.asarray(levels, jnp.float32), mean, np.log(sigma))
    np.testing.assert_allclose(package, inline, rtol=1e-3, atol=1e-4)
    assert abs(np.exp(inline).sum() - 1.0) < 1e-6  # the 256 bins carry all the probability
    assert abs(float(jnp.exp(package).sum()) - 1.0) < 1e-4

# %% [markdown]
# ### One test digit, every term
#
# Now all $T + 1$ terms for one test digit, with our trained model. For each `t` we draw one $x_t \sim q(x_t \mid x_0)$
# (eq. 4), ask the model for $\epsilon_\theta(x_t, t)$ (one batch of $T$ images), and form its step's mean with
# `p_mean_variance` (notebook 05: $x_0$ predicted from $\epsilon$, clipped to $[-1, 1]$, put into the posterior mean). The KLs
# and the decoder then come from our two inline formulas, in float64. The noise is drawn exactly as `bpd.bpd_batch` draws it
# (`fold_in(key, t)`), so the package must return the same numbers.

# %%
LOG2 = np.log(2.0)
x0 = jnp.asarray(to_model_range(test_images[0]))  # (8, 8, 1) in [-1, 1]
key_bpd = jax.random.key(7)
ts = jnp.arange(T)
noise = jax.vmap(lambda t: jax.random.normal(jax.random.fold_in(key_bpd, t), (1,) + x0.shape)[0])(ts)
x_ts = jax.vmap(lambda t, n: q_sample(schedule, x0, t, n))(ts, noise)  # (T, 8, 8, 1): x_t for every t
eps = eqx.filter_jit(lambda m, x, t: jax.vmap(m)(x, t))(model, x_ts, ts)  # (T, 8, 8, 1): one batch
mean_p, _, logvar_p = jax.vmap(lambda e, x, t: p_mean_variance(schedule, e, x, t, variance=VARIANCE))(eps, x_ts, ts)
mean_q, _, logvar_q = jax.vmap(lambda x, t: q_posterior_mean_variance(schedule, x0, x, t))(x_ts, ts)

f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
kl_terms = normal_kl_inline(f64(mean_q), f64(logvar_q)[:, None, None, None],
                            f64(mean_p), f64(logvar_p)[:, None, None, None]).mean((1, 2, 3)) / LOG2
decoder = -decoder_log_likelihood_inline(x0, mean_p[0], np.exp(0.5 * f64(logvar_p[0]))).mean() / LOG2
abar_T = f64(schedule.alphas_cumprod[-1])
prior = normal_kl_inline(np.sqrt(abar_T) * f64(x0), np.log1p(-abar_T), 0.0, 0.0).mean() / LOG2
terms_inline = np.concatenate([[decoder], kl_terms[1:]])  # the paper's L_0, L_1, ..., L_{T-1}
total_inline = prior + terms_inline.sum()
print(f"one digit: L_T = {prior:.2e}, L_0 = {decoder:.3f}, sum of the KLs = {kl_terms[1:].sum():.3f}, "
      f"total = {total_inline:.3f} bits/dim")

# %%
prior_pkg, terms_pkg = bpd.bpd_batch(model, schedule, x0[None], key_bpd, variance=VARIANCE)  # (1,), (1, T)
np.testing.assert_allclose(terms_pkg[0], terms_inline, rtol=2e-3, atol=2e-5)
np.testing.assert_allclose(prior_pkg[0], prior, rtol=1e-3, atol=1e-7)
assert np.all(terms_inline >= 0) and prior >= 0  # KLs and -log of a probability: never negative
if T >= 1000:  # the paper's schedule ends very close to N(0, I); the smoke model's T = 50 stops far from it
    assert prior < 1e-3

# %% [markdown]
# ## 2. An oracle: when do the KL terms vanish?
#
# Take a data set of **one** image $x_0$. The best possible noise predictor then knows $x_0$ and reads the noise off $x_t$
# exactly: $\epsilon^\star(x_t, t) = (x_t - \sqrt{\bar\alpha_t}\,x_0)/\sqrt{1-\bar\alpha_t}$. Its predicted $x_0$ is exact, so its mean
# $\mu_\theta$ equals the posterior mean $\tilde\mu_t$ and every KL reduces to the variance mismatch:
#
# $$L_{t-1}^\star = \tfrac12\Big(\log\frac{\sigma_t^2}{\tilde\beta_t} + \frac{\tilde\beta_t}{\sigma_t^2} - 1\Big)\ \text{nats/dim}.$$
#
# With $\sigma_t^2 = \tilde\beta_t$ ("fixedsmall") this is **zero**: the model's step *is* the posterior. With
# $\sigma_t^2 = \beta_t$ ("fixedlarge", the paper's CIFAR-10 choice and our default) a cost remains even for a perfect model;
# it is largest at small $t$, where $\tilde\beta_t$ and $\beta_t$ differ most (at $t = 1$, $\tilde\beta_1 = 0$).

# %%
class Oracle(eqx.Module):
    """The optimal noise predictor when the data set is the one image x0."""

    x0: jax.Array
    sqrt_abar: jax.Array
    sqrt_1m_abar: jax.Array

    def __call__(self, x_t, t, *, key=None):
        return (x_t - self.sqrt_abar[t] * self.x0) / self.sqrt_1m_abar[t]


oracle = Oracle(x0, schedule.sqrt_alphas_cumprod, schedule.sqrt_one_minus_alphas_cumprod)
oracle_bpd = {v: bpd.bits_per_dim(oracle, schedule, test_images[:1], key=jax.random.key(0), variance=v, progress=False)
              for v in ("fixedsmall", "fixedlarge")}
betas, beta_tilde = f64(schedule.betas), f64(schedule.posterior_variance)
floor_large = 0.5 * (np.log(betas[1:] / beta_tilde[1:]) + beta_tilde[1:] / betas[1:] - 1) / LOG2  # L*_1 .. L*_{T-1}
for v, out in oracle_bpd.items():
    print(f"oracle, {v:10s}: total {out['total']:.4f} = prior {out['prior']:.1e} + KLs {out['kl']:.4f} "
          f"+ decoder {out['decoder']:.4f} bits/dim")

# %%
small, large = oracle_bpd["fixedsmall"], oracle_bpd["fixedlarge"]
np.testing.assert_allclose(small["terms"][1:], 0.0, atol=1e-5)  # fixedsmall: the model's step is the posterior
np.testing.assert_allclose(large["terms"][1:], floor_large, rtol=1e-3, atol=1e-6)  # fixedlarge: only the variance gap
assert large["kl"] > 0.01 and np.argmax(large["terms"][1:]) == 0  # the gap is largest at the smallest t
np.testing.assert_allclose(small["decoder"], large["decoder"])  # both use sigma_1^2 = beta-tilde_2 for the decoder

# %% [markdown]
# ## 3. The bound of the digits test split
#
# `bpd.bits_per_dim` does what we did above for a whole data set: batches of 128 images, one jitted `lax.scan` over the $T$
# timesteps per batch, averaged over images. This is the number the paper reports in its Table 1 ("NLL Test (Train)"):
# $\le 3.75$ (3.72) bits/dim on CIFAR-10 for the model trained with $L_\mathrm{simple}$, $\le 3.70$ (3.69) for one trained on the
# bound $L$ itself, which samples worse (FID 13.51 against 3.17). Digits are not comparable with CIFAR-10 (the scikit-learn digits
# take only 17 of the 256 levels, and $8 \times 8$ images are another problem), so compare these numbers only with each other.

# %%
start = time.perf_counter()
test_bpd = bpd.bits_per_dim(model, schedule, test_images, key=jax.random.key(1), variance=VARIANCE, progress=not SMOKE)
bpd_seconds = time.perf_counter() - start
print(f"digits test split ({test_bpd['num_examples']} images, T = {T}, {bpd_seconds:.0f} s): "
      f"{test_bpd['total']:.3f} ± {test_bpd['total_sem']:.3f} bits/dim")
print(f"  prior L_T {test_bpd['prior']:.2e} | KLs L_1..L_{T - 1} {test_bpd['kl']:.3f} | "
      f"decoder L_0 {test_bpd['decoder']:.3f}")

# %%
terms = test_bpd["terms"]  # (T,): terms[t] is the paper's L_t, terms[0] the decoder
assert test_bpd["num_examples"] == len(test_images) and terms.shape == (T,)
# every term is >= 0 (KLs, and -log of a probability); float32 rounds the late, tiny KLs (~1e-7) either way
assert np.all(np.isfinite(terms)) and np.all(terms >= -1e-6) and test_bpd["prior"] >= 0
np.testing.assert_allclose(test_bpd["total"], test_bpd["prior"] + test_bpd["kl"] + test_bpd["decoder"], rtol=1e-9)
np.testing.assert_allclose(test_bpd["kl"], terms[1:].sum(), rtol=1e-9)
if VARIANCE == "fixedlarge":  # no model beats the oracle: the variance gap is a floor under every KL term
    assert np.all(terms[1:] >= floor_large * (1 - 1e-3) - 1e-6)

# %% [markdown]
# ### Which timesteps carry the bound?
#
# Plot each term against $t$, with log axes. The bound sits at **small** $t$: the decoder and the first few KL terms are
# large, and the terms fall steadily as $t$ grows. Near $t = 0$ the posterior is very narrow ($\tilde\beta_t$ is tiny), so
# any error in the predicted $x_0$ costs a lot; at large $t$ the image is mostly noise, the posterior mean hardly depends on
# $x_0$, and mistakes are cheap. These are the imperceptible details of the image (Ho et al., section 4.3: "the majority of
# our models' lossless codelengths are consumed by imperceptible image details"), which is why a model can score a
# mediocre likelihood and still draw good samples. The grey curve is the oracle's fixedlarge floor from section 2.

# %%
t_axis = np.arange(T)  # the paper's index of L_t
share = np.cumsum(terms) / test_bpd["total"]  # share of the bound in L_0 .. L_t (L_T, tiny, comes last)
small_t = max(1, T // 10)
share_small = terms[:small_t].sum() / test_bpd["total"]
print(f"L_0 .. L_{small_t - 1} (the first 10% of the timesteps) carry {100 * share_small:.0f}% of the bound")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
axes[0].loglog(t_axis[1:], terms[1:], ".-", ms=3, label=r"KL terms $L_t$ (test split)")
axes[0].plot([1], [terms[0]], "rs", label=r"decoder $L_0$ (plotted at $t=1$)")
if VARIANCE == "fixedlarge":
    axes[0].loglog(t_axis[1:], floor_large, color="grey", label="oracle's floor (fixedlarge)")
axes[0].set(xlabel="t", ylabel="bits/dim", title="each term of the bound")
axes[0].legend(fontsize=8)
axes[1].semilogx(t_axis + 1, share, ".-", ms=3)
axes[1].axvline(small_t, color="grey", ls="--", label=f"first 10% of t ({small_t} steps)")
axes[1].set(xlabel="t (+1, for the log axis)", ylabel="cumulative share", ylim=(0, 1.02),
            title=r"share of the bound in $L_0 \ldots L_t$")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
assert share_small > 0.5, share_small  # most of the bound sits at small t
assert terms[0] + terms[1] > terms[T // 2:].sum() / (T - T // 2) * 10  # the first two terms dwarf a typical late one

# %% [markdown]
# # Part 2 — Sample quality
#
# A likelihood says how well the model covers the test images; it says little about how its samples *look*. The paper
# reports the Inception score and FID on CIFAR-10 (3.17 FID), both computed with an ImageNet classifier. For 8×8 digits we
# use the same ideas with judges that ship with scikit-learn: small classifiers (`evaluate.digits_judges`, MLPs with 64
# hidden units), each trained on its own random 80% of the real digits. On a set of images each reports:
#
# - **confidence**: the mean of its top-class probability — recognisable digits score high;
# - **coverage**: the entropy of the histogram of predicted classes, in nats ($\log 10 = 2.303$ when all ten digits are
#   equally common), the number of classes present and the smallest class share — a model that draws only 1s is sharp
#   but has no coverage;
# - **Fréchet distance**, the FID recipe in the judge's 64-dimensional hidden layer instead of Inception's: fit a Gaussian
#   $(\mu, \Sigma)$ to the features of each set of images and compute
#   $$d^2 = \|\mu_a - \mu_b\|^2 + \operatorname{Tr}\big(\Sigma_a + \Sigma_b - 2(\Sigma_a\Sigma_b)^{1/2}\big),$$
#   the distance between the two Gaussians (the 2-Wasserstein distance), against the features of the training digits.
#
# Each number is put next to two references: **real digits the judge never saw** (the floor: a perfect model's samples are
# new draws from the data distribution, and so are they) and **uniform noise** (the ceiling). First, two checks of $d^2$
# on the real features: a set is at distance zero from itself, and shifting every feature by $c$ moves it by $\|c\|^2$.

# %%
judge = evaluate.digits_judge()
feats = judge.features(test_images)  # (360, 64): the judge's hidden pre-activations
shift = np.full(feats.shape[1], 0.5)
d_self, d_shift = evaluate.frechet_distance(feats, feats), evaluate.frechet_distance(feats, feats + shift)
print(f"features {feats.shape}; d^2(real, real) = {d_self:.2e}, d^2(real, real + 0.5) = {d_shift:.3f} "
      f"(||c||^2 = {shift @ shift:.3f})")

# %%
assert feats.shape == (len(test_images), 64)
assert abs(d_self) < 1e-6 and abs(d_shift - shift @ shift) < 1e-6

# %% [markdown]
# ### A Fréchet distance depends on the size of the set
#
# The mean and the 64×64 covariance fitted to $N$ images are estimates, and their noise adds to $d^2$: the fewer the
# images, the larger the distance, even between two sets of real digits. Here is one judge's held-out real digits
# (ones it never saw), scored on random subsets of several sizes.

# %%
held = judge.held_out
rng = np.random.default_rng(0)
by_size = {n: np.mean([judge.score(held[rng.permutation(len(held))[:n]])["frechet"] for _ in range(10)])
           for n in (32, 64, 120, 250, len(held))}
print("real held-out digits, d^2 to the training digits by set size:", {n: round(v, 2) for n, v in by_size.items()})
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(list(by_size), list(by_size.values()), "o-")
ax.set(xscale="log", xlabel="images in the set", ylabel="Fréchet distance",
       title="real digits: the distance shrinks with the set")
ax.set_xticks(list(by_size), [str(n) for n in by_size])
ax.xaxis.set_minor_locator(mticker.NullLocator())
plt.show()

# %%
sizes = sorted(by_size)
assert all(by_size[a] > by_size[b] for a, b in zip(sizes, sizes[1:]))  # more images, smaller distance
assert by_size[sizes[0]] > 1.5 * by_size[sizes[-1]]  # and not by a little

# %% [markdown]
# So a Fréchet distance is only comparable with another computed on as many images. `digits_quality_table` scores every
# row, samples and references alike, with the same 8 judges on sets of the same size (as many as the samples, up to the
# 360 digits a judge holds out), the real ones drawn at random as a model's samples are, and averages over the judges.

# %% [markdown]
# Now samples from the model with the paper's sampler (Algorithm 2, all $T$ steps, notebook 05). We sample twice with the same
# batch size: the first call compiles the sampler (seconds) and runs it, the second only runs, so it gives the wall time
# of sampling itself (we need it for the comparison with DDIM below). Both halves go into the evaluation.

# %%
N_HALF = 64 if SMOKE else 250  # samples per call; two calls per sampler
key_a, key_b = jax.random.key(100), jax.random.key(101)  # the same two keys for every sampler below


def draw(**kwargs):
    """Sample N_HALF images with key_a (compiles) and N_HALF with key_b (timed). Returns (uint8 images, seconds)."""
    first = jax.block_until_ready(sample.sample_images(config, model, key_a, N_HALF, **kwargs))
    start = time.perf_counter()
    second = jax.block_until_ready(sample.sample_images(config, model, key_b, N_HALF, **kwargs))
    seconds = time.perf_counter() - start
    return to_uint8(jnp.concatenate([first, second])), seconds


ddpm_images, ddpm_seconds = draw()  # sampler="ddpm": Algorithm 2 with the config's variance
print(f"DDPM, {T} steps: {N_HALF} samples in {ddpm_seconds:.2f} s (after compiling)")
viz.show_images(ddpm_images[:16], size=0.9, suptitle=f"DDPM samples ({T} steps, {config.name} model)")
plt.show()

# %%
assert ddpm_images.shape == (2 * N_HALF, 8, 8, 1) and ddpm_images.dtype == np.uint8
assert not np.array_equal(ddpm_images[:N_HALF], ddpm_images[N_HALF:])  # two keys, two sets of samples

# %%
table = evaluate.digits_quality_table(ddpm_images)
print(evaluate.format_table(table))

# %% [markdown]
# Read the table row by row. Real digits the judges never saw set the floor: a confidence near 0.97, all ten classes in near-equal
# shares (entropy near 2.303) and a small but non-zero Fréchet distance (two different sets of real digits are not identical).
# Noise sets the ceiling on the Fréchet distance and on the lack of coverage, but notice its **confidence**: an MLP is
# confidently wrong far from its training data, so noise is "recognised" with high confidence, almost always as the same
# one or two classes. That is why no single number is enough: noise fails on coverage and Fréchet distance, a model
# that collapses onto one digit fails on coverage, a blurry model fails on confidence and Fréchet distance. A good model's
# samples sit close to the floor on all of them.

# %%
s, r, n = table["samples"], table["real (held out)"], table["noise"]
assert r["classes_present"] == 10 and r["coverage_entropy"] > 2.2 and r["confidence"] > 0.9
assert r["frechet"] < n["frechet"] / 10 and r["coverage_entropy"] > n["coverage_entropy"]
assert r["confidence"] > n["confidence"]
assert all(np.isfinite(v) for v in s.values())
if not SMOKE:  # a trained model: far nearer the real digits than noise is, and every digit drawn
    assert s["frechet"] < n["frechet"] / 3 and s["classes_present"] == 10, s

# %% [markdown]
# # Part 3 — DDIM: the same model, 20× fewer steps
#
# Sampling with Algorithm 2 costs $T = 1000$ network evaluations. Song, Meng & Ermon (2021) noticed that the training loss
# only ever looks at the marginals $q(x_t \mid x_0)$ (eq. 4), never at the chain $q(x_t \mid x_{t-1})$. Many other forward
# processes have the same marginals, so a model trained with $L_\mathrm{simple}$ is also a model for them; some are
# **non-Markovian** and can be reversed with big jumps. Their reverse step, written with our $\bar\alpha$ (the DDIM paper calls
# it $\alpha$), is the DDIM paper's eq. 12:
#
# $$x_{t-1} = \sqrt{\bar\alpha_{t-1}}\;\underbrace{\Big(\frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}}\Big)}_{\text{predicted } x_0}
#   + \underbrace{\sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\;\epsilon_\theta(x_t, t)}_{\text{direction pointing to } x_t}
#   + \underbrace{\sigma_t\,z}_{\text{random noise}}, \qquad z \sim \mathcal{N}(0, I),$$
#
# $$\sigma_t(\eta) = \eta\,\sqrt{\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}}\,\sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}}} \quad\text{(eq. 16)}.$$
#
# - The step first predicts $x_0$, then re-noises it to the level of step $t-1$, reusing the *same* $\epsilon$ as the noise
#   direction. With $\eta = 1$ and consecutive steps, $\sigma_t^2 = \tilde\beta_t$ and this is DDPM's step (with the small variance);
#   with $\eta = 0$ there is no fresh noise at all: sampling is a **deterministic** map from $x_T$ to $x_0$.
# - "$t-1$" may be any earlier step: nothing in eq. 12 requires consecutive steps. DDIM visits a subsequence
#   $\tau_S > \dots > \tau_1$ of $S \ll T$ timesteps (its section 4.2), with $\bar\alpha_{\text{prev}} = 1$ after the last one.
#
# ### The timesteps DDIM visits
#
# `sample.ddim_timesteps(T, S)` spaces $S$ steps evenly from $T - 1$ down to $0$ (0-indexed), so the first step sees pure noise,
# as in training, and the last one lands on the data.

# %%
S_DEMO = 10
taus = sample.ddim_timesteps(T, S_DEMO)
print(f"S = {S_DEMO} of T = {T}: {taus.tolist()}")

# %%
assert len(taus) == S_DEMO and taus[0] == T - 1 and taus[-1] == 0 and np.all(np.diff(taus) < 0)
np.testing.assert_array_equal(sample.ddim_timesteps(T, T), np.arange(T - 1, -1, -1))  # S = T: every step

# %% [markdown]
# ### One DDIM step, inline
#
# Eq. 12 and eq. 16 as they read. We compare them with `sample.ddim_step` (one image; `vmap`ped over a batch of 8, and
# without its optional clipping of the predicted $x_0$ to $[-1, 1]$, which eq. 12 does not have) for a few pairs
# $(t, t_\text{prev})$, with $\eta = 0$ and $\eta = 1$, including the last step to $x_0$ ($t_\text{prev} = -1$, $\bar\alpha_\text{prev} = 1$).

# %%
def ddim_step_inline(x_t, eps, abar_t, abar_prev, eta, z):
    """The DDIM paper's eq. 12 (its alpha is our abar), with sigma from eq. 16."""
    x0_pred = (x_t - np.sqrt(1 - abar_t) * eps) / np.sqrt(abar_t)  # "predicted x_0"
    sigma = eta * np.sqrt((1 - abar_prev) / (1 - abar_t)) * np.sqrt(1 - abar_t / abar_prev)
    direction = np.sqrt(1 - abar_prev - sigma**2) * eps  # "direction pointing to x_t"
    return np.sqrt(abar_prev) * x0_pred + direction + sigma * z


abar = f64(schedule.alphas_cumprod)
eps_batch = eqx.filter_jit(lambda m, x, t: jax.vmap(m, in_axes=(0, None))(x, t))  # eps for a batch at one t
ddim_step_batch = eqx.filter_jit(lambda m, x, t, t_prev, keys, eta: jax.vmap(
    lambda xi, k: sample.ddim_step(m, schedule, xi, t, t_prev, k, eta=eta, clip_x0=False))(x, keys))
shape = (8, 8, 8, 1)
x_t = jax.random.normal(jax.random.key(3), shape)
pairs = [(int(taus[0]), int(taus[1])), (int(taus[4]), int(taus[5])), (int(taus[-1]), -1)]
step_checks = []
for t, t_prev in pairs:
    keys = jax.random.split(jax.random.key(t), shape[0])
    z = jax.vmap(lambda k: jax.random.normal(k, shape[1:]))(keys)  # the noise ddim_step draws from each key
    e = f64(eps_batch(model, x_t, jnp.int32(t)))
    for eta in (0.0, 1.0):
        inline = ddim_step_inline(f64(x_t), e, abar[t], abar[t_prev] if t_prev >= 0 else 1.0, eta, f64(z))
        # t, t_prev and eta go in as arrays: one compilation serves every call
        package = ddim_step_batch(model, x_t, jnp.int32(t), jnp.int32(t_prev), keys, jnp.float32(eta))
        step_checks.append((t, t_prev, eta, inline, np.asarray(package)))
        print(f"t = {t:4d} -> {t_prev:4d}, eta = {eta}: max |inline - package| = {np.abs(inline - package).max():.1e}")

# %%
for t, t_prev, eta, inline, package in step_checks:
    np.testing.assert_allclose(package, inline, rtol=1e-4, atol=2e-4 * max(1.0, np.abs(inline).max()))
# eta changes only the noise: same t, same eps, different outputs
assert not np.allclose(step_checks[0][3], step_checks[1][3])

# %% [markdown]
# ### The whole sampler, inline, and why $\eta = 0$ is deterministic
#
# A Python loop over the $S$ timesteps, with $\eta = 0$, from a given $x_T$. `sample.ddim_sample_loop` is the same loop as
# one jitted `lax.scan`. With $\eta = 0$ the only randomness is $x_T$: run the package's loop with **another key** but the
# same $x_T$ and the samples are bit-for-bit the same, while with $\eta = 1$ the key's fresh noise changes them.

# %%
def ddim_sample_inline(model, x_T, num_steps):
    """DDIM with eta = 0 over ddim_timesteps(T, num_steps): a Python loop of eq. 12 (no clipping)."""
    taus = sample.ddim_timesteps(T, num_steps)
    x = f64(x_T)
    for t, t_prev in zip(taus, [*taus[1:], -1]):
        e = f64(eps_batch(model, jnp.asarray(x, jnp.float32), jnp.int32(t)))
        x = ddim_step_inline(x, e, abar[t], abar[t_prev] if t_prev >= 0 else 1.0, 0.0, 0.0)
    return x


x_T = jax.random.normal(jax.random.key(4), shape)
inline_samples = ddim_sample_inline(model, x_T, S_DEMO)
# eta as an array is traced, not baked into the program: eta = 0 and eta = 1 share one compilation
loop = lambda key, eta: sample.ddim_sample_loop(model, schedule, key, shape, num_steps=S_DEMO,  # noqa: E731
                                                eta=jnp.float32(eta), clip_x0=False, x_T=x_T)
eta0_k1, eta0_k2 = loop(jax.random.key(1), 0.0), loop(jax.random.key(2), 0.0)
eta1_k1, eta1_k2 = loop(jax.random.key(1), 1.0), loop(jax.random.key(2), 1.0)
print(f"max |inline - ddim_sample_loop| = {np.abs(inline_samples - eta0_k1).max():.1e}; "
      f"eta = 0, two keys: {np.abs(eta0_k1 - eta0_k2).max():.1e}; "
      f"eta = 1, two keys: {np.abs(eta1_k1 - eta1_k2).max():.2f}")

# %%
np.testing.assert_allclose(eta0_k1, inline_samples, rtol=1e-3, atol=1e-3 * max(1.0, np.abs(inline_samples).max()))
np.testing.assert_array_equal(eta0_k1, eta0_k2)  # eta = 0: deterministic given x_T, whatever the key
assert not np.allclose(eta1_k1, eta1_k2)  # eta = 1: the key's noise enters every step

# %% [markdown]
# ### $\eta = 1$ on all $T$ steps *is* DDPM
#
# With $\eta = 1$ and $S = T$, eq. 16 gives $\sigma_t^2 = \tilde\beta_t$, and eq. 12 becomes the DDPM step with the posterior
# variance ("fixedsmall"): the same predicted $x_0$, the same mean (the two ways of writing it are equal), the same noise.
# The package's DDIM draws its $x_T$ and each step's noise exactly as `p_sample_loop` does, so with the same key the two
# samplers must agree, sample for sample.

# %%
key_eq, shape_eq = jax.random.key(5), (4, 8, 8, 1)
ddim_full = sample.ddim_sample_loop(model, schedule, key_eq, shape_eq, num_steps=T, eta=1.0)
ddpm_small = sample.p_sample_loop(model, schedule, key_eq, shape_eq, variance="fixedsmall")
print(f"max |DDIM(eta=1, S=T) - DDPM(fixedsmall)| = {float(jnp.abs(ddim_full - ddpm_small).max()):.1e}")

# %%
np.testing.assert_allclose(ddim_full, ddpm_small, atol=2e-3)

# %% [markdown]
# ### Quality against the number of steps
#
# Now the trade-off DDIM offers: sample with $\eta = 0$ on $S$ steps for a few values of $S$ (through `sample.sample_images`,
# with the config's clipping of the predicted $x_0$, as for DDPM above), judge each set with the same table, and time it.
# Every sampler starts from the same $x_T$ (the same two keys), and DDPM with all $T$ steps is the reference.

# %%
DDIM_STEPS = [5, 20] if SMOKE else [10, 20, 50, 100]
results = {f"DDPM {T}": dict(steps=T, images=ddpm_images, seconds=ddpm_seconds, **table["samples"])}
for S in DDIM_STEPS:
    images, seconds = draw(sampler="ddim", steps=S)
    results[f"DDIM {S}"] = dict(steps=S, images=images, seconds=seconds,
                                **evaluate.digits_quality_table(images)["samples"])

print(f"{'sampler':>10} {'steps':>6} {'seconds':>8} {'confidence':>11} {'classes':>8} {'frechet':>8}")
for name, row in results.items():
    print(f"{name:>10} {row['steps']:6d} {row['seconds']:8.2f} {row['confidence']:11.3f} "
          f"{row['classes_present']:8d} {row['frechet']:8.2f}")
print(f"{'real':>10} {'':6} {'':8} {r['confidence']:11.3f} {r['classes_present']:8d} {r['frechet']:8.2f}")
print(f"{'noise':>10} {'':6} {'':8} {n['confidence']:11.3f} {n['classes_present']:8d} {n['frechet']:8.2f}")

# %%
ddim_rows = [results[f"DDIM {S}"] for S in DDIM_STEPS]
assert all(row["images"].shape == ddpm_images.shape for row in ddim_rows)
assert ddim_rows[0]["seconds"] < ddpm_seconds  # the fewest-step sampler is faster than DDPM's T steps
if not SMOKE:  # a trained model: DDIM's samples are digits too, with 20x fewer steps than DDPM
    assert min(row["frechet"] for row in ddim_rows) < n["frechet"] / 3

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
steps_ddim = [row["steps"] for row in ddim_rows]
for ax in axes:  # plain numbers on the log axes, ticks at the step counts we ran
    ax.set_xscale("log")
    ax.set_xticks(steps_ddim + [T], [str(v) for v in steps_ddim + [T]])
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(mticker.LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
axes[0].plot(steps_ddim, [row["frechet"] for row in ddim_rows], "o-", label=r"DDIM ($\eta = 0$)")
axes[0].plot([T], [results[f"DDPM {T}"]["frechet"]], "r*", ms=12, label=f"DDPM ({T} steps)")
axes[0].axhline(r["frechet"], color="green", ls="--", label="real held-out digits (floor)")
axes[0].axhline(n["frechet"], color="grey", ls=":", label="uniform noise (ceiling)")
axes[0].set(xlabel="network evaluations (steps)", ylabel="Fréchet distance (judge features)",
            title="sample quality (lower is better)")
axes[0].legend(fontsize=8)
axes[1].plot(steps_ddim, [row["seconds"] for row in ddim_rows], "o-", label=r"DDIM ($\eta = 0$)")
axes[1].plot([T], [ddpm_seconds], "r*", ms=12, label="DDPM")
axes[1].set(xlabel="network evaluations (steps)", ylabel=f"seconds for {N_HALF} samples",
            title=f"wall time on {jax.devices()[0].platform} (compile excluded)")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Wall time is proportional to the number of steps: each step is one pass of the network over the batch, so 50 DDIM steps
# cost a twentieth of DDPM's 1000. What the quality curve shows depends on the model: the DDIM paper (its Table 1) finds
# that with $\eta = 0$ the FID on CIFAR-10 improves steeply from 10 to 50 steps and then flattens, close to DDPM's with all
# $T$ steps, while DDPM's own sampler degrades fast when its steps are skipped. (In smoke mode the model is barely trained
# and $T = 50$: the curve there means nothing.)
#
# ### Side by side
#
# The first rows below start from the **same** $x_T$ in every sampler. DDIM with $\eta = 0$ is a deterministic map from $x_T$,
# and maps with different $S$ approximate the same underlying map (an ODE, in later work), so for a trained model the same
# $x_T$ tends to give the same digit whatever $S$: the DDIM paper's "consistency" (its section 5.3). DDPM adds fresh noise
# at every step, so from the same $x_T$ it draws a different image.

# %%
n_show = 12
rows = [results[f"DDPM {T}"]["images"][:n_show]] + [row["images"][:n_show] for row in ddim_rows]
labels = [f"DDPM {T}"] + [f"DDIM {S}" for S in DDIM_STEPS]
titles = [label if j == 0 else "" for label in labels for j in range(n_show)]
viz.show_images(np.concatenate(rows), titles, ncols=n_show, size=0.9,
                suptitle="same x_T in every column; one sampler per row")
plt.show()

# consistency: the two DDIM runs with most steps, from the same x_T, against the same pairs with x_T shuffled
a_imgs = f64(ddim_rows[-1]["images"]) / 255
b_imgs = f64(ddim_rows[-2]["images"]) / 255
same_xT = np.sqrt(((a_imgs - b_imgs) ** 2).mean((1, 2, 3))).mean()
other_xT = np.sqrt(((a_imgs - np.roll(b_imgs, 1, axis=0)) ** 2).mean((1, 2, 3))).mean()
print(f"RMS pixel difference between DDIM {DDIM_STEPS[-1]} and DDIM {DDIM_STEPS[-2]}: "
      f"same x_T {same_xT:.3f}, different x_T {other_xT:.3f}")

# %%
assert same_xT < other_xT  # the same x_T gives similar images whatever the number of DDIM steps

# %% [markdown]
# ### Try it: the number of DDIM steps
#
# Slide $S$ and watch the same 16 starting noises $x_T$ become digits with $\eta = 0$ (our inline loop of eq. 12, so one
# compiled network serves every $S$). With one or two steps the "predicted $x_0$" of pure noise is a blurry average; a
# few more and the digits appear, and beyond some tens of steps they barely change: the same $x_T$, the same digit.
# Without a widget front end you see a few values of $S$ side by side.

# %%
x_T_slider = jax.random.normal(jax.random.key(8), (16, 8, 8, 1))
SLIDER_STEPS = [S for S in (1, 2, 3, 5, 10, 20, 50, 100, 250) if S <= T]
_ddim_cache = {}


def ddim_images(S):
    if S not in _ddim_cache:
        _ddim_cache[S] = np.clip(ddim_sample_inline(model, x_T_slider, S), -1.0, 1.0)
    return _ddim_cache[S]


def show_ddim(S):
    return viz.show_images(ddim_images(S), ncols=16, size=0.7,
                           suptitle=f"DDIM, eta = 0, S = {S} steps ({S} network evaluations per image)")


def show_ddim_rows():
    few = [S for S in (1, 5, 20, 100) if S <= T]
    return viz.show_images(np.concatenate([ddim_images(S) for S in few]),
                           [f"S = {S}" if j == 0 else "" for S in few for j in range(16)], ncols=16, size=0.7)


viz.interactive_figure(show_ddim, S=(SLIDER_STEPS, 10 if T >= 10 else SLIDER_STEPS[-1]), static=show_ddim_rows)

# %% [markdown]
# ## Summary
#
# - The bound $L = L_T + \sum_t L_{t-1} + L_0$ (eq. 5) is a sum of closed-form KLs between Gaussians, plus the discretized
#   decoder (eq. 13); in bits per dimension it is the paper's likelihood (Table 1). `bpd.bits_per_dim` computes it, and we
#   recomputed every term of one digit inline.
# - Most of the bound sits at small $t$: the imperceptible details. With $\sigma_t^2 = \beta_t$ even a perfect model pays a
#   variance gap there; with $\tilde\beta_t$ the oracle's KLs vanish.
# - Sample quality needs more than one number: confidence is fooled by noise, coverage by nothing but collapse, and the
#   Fréchet distance compares whole distributions; real held-out digits and noise bracket every figure, each scored on as
#   many images as the samples, since a Fréchet distance grows as the set shrinks.
# - DDIM (eq. 12) reuses the trained model on $S \ll T$ steps; with $\eta = 0$ it is deterministic given $x_T$, with $\eta = 1$
#   and $S = T$ it is DDPM. Its cost is proportional to $S$.
#
# ## Exercises
#
# 1. **Which variance gives the lower bound?** Section 2 showed that a perfect model pays a variance gap with
#    $\sigma_t^2 = \beta_t$ and none with $\tilde\beta_t$. For *our* model, which choice gives the lower bound on the first 32
#    test digits? Guess, write it below, and run the cell (it computes both).
# 2. **Between DDIM and DDPM.** Draw 500 samples with `sample.sample_images(config, model, key, 250, sampler="ddim",
#    steps=50, eta=...)` (two keys, as `draw` does) for $\eta = 0, 0.5, 1$ and score them with `digits_quality_table`. Does
#    fresh noise help or hurt at 50 steps? The DDIM paper's Table 1 answers for CIFAR-10.
# 3. **How many samples?** Score the DDIM 50 samples on their first 64 images and on all of them
#    (`evaluate.digits_quality_table(images[:64])`). Is the difference between the two larger than the difference between
#    DDIM 10 and DDIM 50? What does that say about comparing two papers' FIDs?

# %%
answer = None  # exercise 1: "fixedlarge" (beta_t) or "fixedsmall" (beta-tilde_t)
if answer is not None:
    bounds = {v: bpd.bits_per_dim(model, schedule, test_images[:32], key=jax.random.key(3), variance=v,
                                  progress=False)["total"] for v in ("fixedlarge", "fixedsmall")}
    print({v: round(b, 3) for v, b in bounds.items()})
    assert answer == min(bounds, key=bounds.get), f"not this time: {bounds}"
    print(f"right: {answer} gives the lower bound for this model")

# %% [markdown]
# ## Go further
#
# - Song, Meng & Ermon, [DDIM](https://arxiv.org/abs/2010.02502): sections 4 and 5 (the non-Markovian processes, consistency
#   and interpolation in $x_T$).
# - Nichol & Dhariwal, [Improved DDPM](https://arxiv.org/abs/2102.09672): learning $\sigma_t^2$ with the bound in the loss
#   closes much of the likelihood gap; Kingma et al., [Variational Diffusion Models](https://arxiv.org/abs/2107.00630): the
#   bound as the training objective.
# - Heusel et al., [FID](https://arxiv.org/abs/1706.08500), and Chong & Forsyth,
#   [Effectively Unbiased FID](https://arxiv.org/abs/1911.07023): the set-size bias of section "A Fréchet distance depends
#   on the size of the set", on Inception features.
# - Faster samplers on the same trained network: Lu et al., [DPM-Solver](https://arxiv.org/abs/2206.00927); Karras et al.,
#   [EDM](https://arxiv.org/abs/2206.00364). Steering a trained model: Ho & Salimans,
#   [classifier-free guidance](https://arxiv.org/abs/2207.12598).
#
# **Next:** [08 — Draw me a 7: class-conditional diffusion and classifier-free guidance](08_guidance.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/08_guidance.ipynb):
# how to tell the model *what* to draw. Or train the `nano_cifar10` preset in [notebook 06](06_train_cifar10.ipynb)
# and evaluate it with `python -m nanoddpm_utils eval`; the appendix, [A1 — Making JAX fast](A1_jax_speed.ipynb),
# shows how the package makes all of this fast.
