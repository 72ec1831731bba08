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
# (Song, Meng & Ermon 2021, [arXiv:2010.02502](https://arxiv.org/abs/2010.02502)), using the same trained weights, and cheaper
# still with a second-order solver of the same ODE, **DPM-Solver++** (Lu et al. 2022,
# [arXiv:2211.01095](https://arxiv.org/abs/2211.01095)).
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
#   `ddim_sample_loop`; why $\eta = 0$ is deterministic; a slider over the number of steps;
# - DDIM as a first-order solver of the probability-flow ODE in $\lambda = \log(\alpha_t/\sigma_t)$, and DPM-Solver++(2M) as a
#   second-order one: its step derived, written inline and checked against `solver.py`, and both orders measured on
#   Gaussian data, where the exact answer is known;
# - quality with two judges (Fréchet distance and KID) and wall time against the number of steps, for both samplers.

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

from nanoddpm_utils import bpd, evaluate, pretrained, sample, solver, train, viz
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
# ### DDIM solves an ODE; DPM-Solver++ solves it better
#
# With $\eta = 0$ nothing random happens after $x_T$, and as the steps shrink DDIM's path from $x_T$ to $x_0$ becomes the
# solution of an ordinary differential equation, the *probability-flow ODE* (Song et al. 2021,
# [arXiv:2011.13456](https://arxiv.org/abs/2011.13456)). DDIM on $S$ steps is one numerical method for that ODE, and
# numerical analysis knows more accurate ones. To see which, rewrite eq. 12 in better variables. Write
# $x_t = \alpha_t x_0 + \sigma_t\epsilon$ with $\alpha_t = \sqrt{\bar\alpha_t}$ and $\sigma_t = \sqrt{1-\bar\alpha_t}$ (in this
# section $\sigma_t$ is this noise level, not eq. 16's noise scale: $\eta = 0$ throughout), and measure time by
#
# $$\lambda_t = \log\frac{\alpha_t}{\sigma_t},$$
#
# half the log signal-to-noise ratio: it grows as $t$ falls, and is $+\infty$ on the data ($\alpha = 1$, $\sigma = 0$). The
# sampler visits $t_0 = T-1 > t_1 > \dots$; write $x_i, \alpha_i, \sigma_i, \lambda_i$ at $t_i$, $h_i = \lambda_i - \lambda_{i-1} > 0$
# for the length of step $i$, and $\hat x_0(x_{i-1}) = (x_{i-1} - \sigma_{i-1}\epsilon_\theta(x_{i-1}, t_{i-1}))/\alpha_{i-1}$ for
# the predicted $x_0$.
#
# **DDIM in $\lambda$.** Put $\epsilon_\theta = (x_{i-1} - \alpha_{i-1}\hat x_0)/\sigma_{i-1}$ into eq. 12 with $\eta = 0$ and use
# $\sigma_i\alpha_{i-1}/\sigma_{i-1} = \alpha_i e^{-h_i}$:
#
# $$x_i = \alpha_i\hat x_0 + \sigma_i\,\frac{x_{i-1} - \alpha_{i-1}\hat x_0}{\sigma_{i-1}}
#   = \frac{\sigma_i}{\sigma_{i-1}}\,x_{i-1} - \alpha_i\big(e^{-h_i} - 1\big)\,\hat x_0(x_{i-1}). \qquad \text{(A)}$$
#
# **The ODE.** Divide (A) by $\sigma_i$: $\;x_i/\sigma_i - x_{i-1}/\sigma_{i-1} = e^{\lambda_i}(1 - e^{-h_i})\,\hat x_0 \approx e^{\lambda}\,h_i\,\hat x_0$
# for a short step. So as the steps shrink, $\frac{d}{d\lambda}\frac{x}{\sigma} = e^{\lambda}\,\hat x_0(x_\lambda)$, and over one step
# the exact solution is
#
# $$x_i = \frac{\sigma_i}{\sigma_{i-1}}\,x_{i-1} + \sigma_i\int_{\lambda_{i-1}}^{\lambda_i} e^{\lambda}\,\hat x_0(x_\lambda)\,d\lambda .$$
#
# The only unknown is how $\hat x_0$ changes along the path. DDIM holds it at its value at the start of the step; the integral
# is then exact, $\sigma_i\hat x_0\,(e^{\lambda_i} - e^{\lambda_{i-1}}) = -\alpha_i(e^{-h_i} - 1)\,\hat x_0$, which is (A). Its error is of
# order $h^2$ per step and $h$ over the whole path: DDIM is a **first-order** solver. Double the steps, halve the error.
#
# **DPM-Solver++(2M)** (Lu et al. 2022, [arXiv:2211.01095](https://arxiv.org/abs/2211.01095)) lets $\hat x_0$ vary linearly in
# $\lambda$ instead, with the slope read off the previous step's prediction, so it still costs one network call per step:
# $\hat x_0(x_\lambda) \approx \hat x_0(x_{i-1}) + (\lambda - \lambda_{i-1})\,\big(\hat x_0(x_{i-1}) - \hat x_0(x_{i-2})\big)/h_{i-1}$. The linear
# term integrates to $\alpha_i(h_i - 1 + e^{-h_i})$ times the slope; the paper replaces $h - 1 + e^{-h}$ by $h(1 - e^{-h})/2$ (both are
# $h^2/2 + O(h^3)$), which keeps DDIM's form: (A) with $\hat x_0(x_{i-1})$ replaced by
#
# $$D_i = \Big(1 + \frac{1}{2r_i}\Big)\,\hat x_0(x_{i-1}) - \frac{1}{2r_i}\,\hat x_0(x_{i-2}), \qquad r_i = \frac{h_{i-1}}{h_i}.$$
#
# The error is of order $h^3$ per step and $h^2$ over the path: a **second-order** solver. Double the steps, a quarter of
# the error. The first step has no previous prediction and is DDIM's; so is the last, onto the data ($\sigma = 0$,
# $h = \infty$: it returns $\hat x_0$ itself, as DDIM's last step does). Both, inline in float64: (A) as one function that takes
# whatever stands in for $\hat x_0$, and the solver's loop around it.

# %%
def lam(abar_t):
    """lambda = log(alpha / sigma) = log(abar / (1 - abar)) / 2; +inf on the data (abar = 1)."""
    return np.inf if abar_t == 1.0 else 0.5 * np.log(abar_t / (1.0 - abar_t))


def step_in_lambda(x, x0_hat, abar_from, abar_to):
    """(A): x_i = (sigma_i / sigma_{i-1}) x_{i-1} - alpha_i (e^{-h_i} - 1) x0_hat."""
    h = lam(abar_to) - lam(abar_from)
    return np.sqrt((1 - abar_to) / (1 - abar_from)) * x - np.sqrt(abar_to) * np.expm1(-h) * x0_hat


def dpm_solver_inline(eps_fn, x_T, ts, abar):
    """DPM-Solver++(2M) over the timesteps ts, then onto x_0: a Python loop in float64, no clipping."""
    abars = [abar[t] for t in ts] + [1.0]  # abar at t_0, t_1, ..., and 1 for the data
    x, x0_prev = f64(x_T), None
    for i, t in enumerate(ts):  # from t_i to t_{i+1}: step i + 1 of the maths
        x0_hat = (x - np.sqrt(1 - abars[i]) * eps_fn(x, t)) / np.sqrt(abars[i])
        if i == 0 or i == len(ts) - 1:  # no previous prediction yet / onto the data (h = inf): DDIM's step
            d = x0_hat
        else:
            r = (lam(abars[i]) - lam(abars[i - 1])) / (lam(abars[i + 1]) - lam(abars[i]))  # h_{i-1} / h_i
            d = (1 + 1 / (2 * r)) * x0_hat - 1 / (2 * r) * x0_prev
        x, x0_prev = step_in_lambda(x, d, abars[i], abars[i + 1]), x0_hat
    return x


def model_eps(x, t):
    """The trained model's eps for a float64 batch at one timestep, in float64."""
    return f64(eps_batch(model, jnp.asarray(x, jnp.float32), jnp.int32(t)))

# %% [markdown]
# First, (A) is eq. 12 rewritten, nothing more: for the same $\epsilon$ it must give what our inline eq. 12 gives, and what
# `sample.ddim_step` gives with $\eta = 0$, on the pairs of steps of the DDIM check above (the last one onto $x_0$).

# %%
first_order_checks = []
for t, t_prev in pairs:
    abar_to = abar[t_prev] if t_prev >= 0 else 1.0
    e = model_eps(x_t, t)
    x0_hat = (f64(x_t) - np.sqrt(1 - abar[t]) * e) / np.sqrt(abar[t])
    in_lambda = step_in_lambda(f64(x_t), x0_hat, abar[t], abar_to)
    eq12 = ddim_step_inline(f64(x_t), e, abar[t], abar_to, 0.0, 0.0)
    keys = jax.random.split(jax.random.key(t), shape[0])
    package = np.asarray(ddim_step_batch(model, x_t, jnp.int32(t), jnp.int32(t_prev), keys, jnp.float32(0.0)))
    first_order_checks.append((in_lambda, eq12, package))
    print(f"t = {t:4d} -> {t_prev:4d}: h = {lam(abar_to) - lam(abar[t]):6.3f}, max |(A) - eq. 12| = "
          f"{np.abs(in_lambda - eq12).max():.1e}, max |(A) - ddim_step| = {np.abs(in_lambda - package).max():.1e}")

# %%
for in_lambda, eq12, package in first_order_checks:
    np.testing.assert_allclose(in_lambda, eq12, rtol=1e-9, atol=1e-9)  # the same algebra, both in float64
    np.testing.assert_allclose(package, in_lambda, rtol=1e-4, atol=2e-4 * max(1.0, np.abs(in_lambda).max()))

# %% [markdown]
# Now the second-order solver against the package's, `solver.dpm_solver_sample_loop` (one `lax.scan`; it is what
# `sample_images(..., sampler="dpm++2m")` runs), on the trained model from the same $x_T$, without clipping. With $S = 5$ the
# three middle steps are second order (the first and the last are DDIM's). The package precomputes the weight
# $1/(2r_i)$ of every step (`solver.dpm_solver_coefficients`, 0 on the first and the last); those must be ours too.
# The spacing is "trailing" (Lin et al. 2023): $S$ equal gaps of $T/S$ from $T-1$, the last one onto $x_0$
# (`sample.ddim_timesteps(T, S, "trailing")`); we will see why below.

# %%
x_T_dpm = jax.random.normal(jax.random.key(9), shape)
S_DPM = 5
ts_dpm = sample.ddim_timesteps(T, S_DPM, "trailing")
h = np.diff([lam(abar[t]) for t in ts_dpm])  # h_1 .. h_{S-1} (the last step, onto x_0, is infinite)
w_inline = np.concatenate([[0.0], 1 / (2 * (h[:-1] / h[1:])), [0.0]])  # 1 / (2 r_i); 0: DDIM's step
w_package = np.asarray(solver.dpm_solver_coefficients(schedule, ts_dpm)[2])
dpm_inline = dpm_solver_inline(model_eps, x_T_dpm, ts_dpm, abar)
dpm_package = np.asarray(solver.dpm_solver_sample_loop(model, schedule, jax.random.key(0), shape, num_steps=S_DPM,
                                                       clip_x0=False, spacing="trailing", x_T=x_T_dpm))
print(f"S = {S_DPM}, timesteps {ts_dpm.tolist()}; 1/(2r) per step: {np.round(w_inline, 3).tolist()}")
print(f"max |inline - dpm_solver_sample_loop| = {np.abs(dpm_inline - dpm_package).max():.1e}")

# %%
np.testing.assert_allclose(w_package, w_inline, rtol=1e-3, atol=1e-6)
np.testing.assert_allclose(dpm_package, dpm_inline, rtol=1e-4, atol=2e-4 * max(1.0, np.abs(dpm_inline).max()))

# %% [markdown]
# ### The order, where the answer is known
#
# "First order" and "second order" are claims we can test, on data where the exact path is known. Let every pixel of the
# data be $x_0 \sim \mathcal{N}(\mu, s^2)$. Then $x_t = \alpha_t x_0 + \sigma_t\epsilon$ and $\epsilon$ are jointly Gaussian, and the
# best noise predictor is the regression of $\epsilon$ on $x_t$:
#
# $$\epsilon^\star(x_t, t) = \mathbb{E}[\epsilon \mid x_t] = \frac{\operatorname{Cov}(\epsilon, x_t)}{\operatorname{Var}(x_t)}\,(x_t - \alpha_t\mu)
#   = \frac{\sigma_t\,(x_t - \alpha_t\mu)}{\alpha_t^2 s^2 + \sigma_t^2}.$$
#
# It is linear in $x_t$, so the ODE moves every point by an affine map that carries the marginal
# $\mathcal{N}(\alpha_t\mu,\ \alpha_t^2 s^2 + \sigma_t^2)$ of each time to that of the next, and keeps the order of the points. There is
# one such map: from $x_T$ (at $t = T-1$) the exact end point is
# $x_0 = \mu + s\,(x_T - \alpha_{T-1}\mu)/\sqrt{\alpha_{T-1}^2 s^2 + \sigma_{T-1}^2}$. We run the package's two samplers with
# $\epsilon^\star$ in place of a network, on the paper's schedule with $T = 1000$ (whatever the model's), and measure how far
# they land from it as the steps double.
#
# This check uses **uniform** spacing, whose last network call is at $t = 0$, so the final jump onto the data is tiny. With
# trailing spacing that last first-order jump starts from a noisier $x$ and its error mixes with the solver's; we plot it
# for comparison, without claiming an order for it.

# %%
class GaussianDenoiser(eqx.Module):
    """The exact noise predictor E[eps | x_t] when every pixel of the data is N(mu, std^2)."""

    abar: jax.Array
    mu: float = 0.3
    std: float = 0.5

    def __call__(self, x, t, *, key=None):
        alpha, sigma = jnp.sqrt(self.abar[t]), jnp.sqrt(1.0 - self.abar[t])
        return sigma * (x - alpha * self.mu) / (alpha**2 * self.std**2 + sigma**2)


toy_schedule = make_schedule("linear", 1000)
toy = GaussianDenoiser(toy_schedule.alphas_cumprod)
x_T_toy = jnp.linspace(-3.0, 3.0, 13).reshape(13, 1, 1, 1)  # a few starting points (the map is affine)
alpha_T, sigma_T = np.sqrt(f64(toy.abar[-1])), np.sqrt(1 - f64(toy.abar[-1]))
exact_end = toy.mu + toy.std * (f64(x_T_toy) - alpha_T * toy.mu) / np.sqrt(alpha_T**2 * toy.std**2 + sigma_T**2)
ORDER_STEPS = [20, 40, 80, 160]
toy_samplers = {"DDIM, uniform": (sample.ddim_sample_loop, "uniform"),
                "DPM-Solver++(2M), uniform": (solver.dpm_solver_sample_loop, "uniform"),
                "DPM-Solver++(2M), trailing": (solver.dpm_solver_sample_loop, "trailing")}
toy_errors = {}
for name, (loop, spacing) in toy_samplers.items():
    toy_errors[name] = np.array([np.abs(f64(loop(toy, toy_schedule, jax.random.key(0), x_T_toy.shape, num_steps=K,
                                                  clip_x0=False, spacing=spacing, x_T=x_T_toy)) - exact_end).max()
                                 for K in ORDER_STEPS])
    print(f"{name:27s} largest error at {ORDER_STEPS} steps: {np.array2string(toy_errors[name], precision=5)}; "
          f"ratio per doubling: {np.round(toy_errors[name][:-1] / toy_errors[name][1:], 2).tolist()}")

fig, ax = plt.subplots(figsize=(5.5, 3.4))
for (name, err), style in zip(toy_errors.items(), ("o-", "s-", "^:")):
    ax.loglog(ORDER_STEPS, err, style, label=name)
K = np.array(ORDER_STEPS, float)
ax.loglog(K, toy_errors["DDIM, uniform"][-1] * K[-1] / K, "k--", lw=0.8, label=r"$\propto 1/S$")
ax.loglog(K, toy_errors["DPM-Solver++(2M), uniform"][-1] * (K[-1] / K) ** 2, "k-.", lw=0.8,
          label=r"$\propto 1/S^2$")
ax.set_xticks(ORDER_STEPS, [str(k) for k in ORDER_STEPS])
ax.xaxis.set_minor_locator(mticker.NullLocator())
ax.set(xlabel="steps S", ylabel=r"largest $|x_0 - $exact$|$",
       title="Gaussian data: distance from the exact ODE end point")
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
plt.show()

# %%
ddim_ratios = toy_errors["DDIM, uniform"][:-1] / toy_errors["DDIM, uniform"][1:]
dpm_ratios = toy_errors["DPM-Solver++(2M), uniform"][:-1] / toy_errors["DPM-Solver++(2M), uniform"][1:]
assert np.all((1.7 < ddim_ratios) & (ddim_ratios < 2.3)), ddim_ratios  # first order: twice the steps, half the error
assert np.all(dpm_ratios[1:] > 3.5), dpm_ratios  # second order: a quarter, once the steps are small enough

# %% [markdown]
# Two things to read off the plot. The slopes: DDIM's error halves with each doubling, DPM-Solver++'s falls about
# fourfold once the steps are small. And the first points: with few **uniform** steps DPM-Solver++ is *worse* than DDIM.
# Uniform steps in $t$ are very uneven in $\lambda$: $\lambda$ rises steeply as $\sigma_t \to 0$ near $t = 0$, so the step onto
# $t = 0$ is several times longer in $\lambda$ than the step before it; $r_i$ is small there, and the extrapolation, weighted by
# $1/(2r_i)$, overshoots. Trailing spacing has no such step, and with it DPM-Solver++ is the closest of the three at few steps. That
# is the spacing the comparison on the digits uses.

# %% [markdown]
# ### Quality against the number of steps
#
# Now the trade-off on the digits. Sample with DDIM ($\eta = 0$, uniform spacing, as above) and with DPM-Solver++(2M)
# (trailing spacing) on $S$ steps for a few values of $S$, through `sample.sample_images` with the config's clipping of the
# predicted $x_0$ (as for DDPM above; DPM-Solver++ clips each prediction before it enters $D_i$), judge each set with the
# same table, and time it. Every sampler starts from the same $x_T$ (the same two keys), and DDPM with all $T$ steps is the
# reference.
#
# The table has more than the MLPs' Fréchet distance. A second judge shares nothing with them: a support vector machine on
# the pixels (its confidence), and the first 20 principal components of real digits as its feature space (`pixel_frechet`).
# And beside each Fréchet distance sits the **KID** (Kernel Inception Distance, Bińkowski et al. 2018,
# [arXiv:1801.01401](https://arxiv.org/abs/1801.01401)) in the same features: a squared distance between the two sets
# computed with a polynomial kernel, $\mathbb{E}\,k(a, a') + \mathbb{E}\,k(b, b') - 2\,\mathbb{E}\,k(a, b)$, estimated
# without bias. Unlike the Fréchet distance it does not grow as the set shrinks, it comes with a standard error, and it
# can dip below zero when the two sets come from the same distribution. A few-step sampler is as good as DDPM only when
# both judges say so on both figures (`evaluate.as_good`: within 10%, or within the KID's error).

# %%
CURVE_STEPS = [5, 20] if SMOKE else [10, 20, 50, 100]
CURVE_SAMPLERS = {"DDIM": (dict(sampler="ddim"), CURVE_STEPS),  # uniform spacing, as above
                  "DPM++": (dict(sampler="dpm++2m", spacing="trailing"), CURVE_STEPS[:1] if SMOKE else CURVE_STEPS)}
results = {f"DDPM {T}": dict(sampler="DDPM", steps=T, images=ddpm_images, seconds=ddpm_seconds, **table["samples"])}
for name, (kwargs, steps) in CURVE_SAMPLERS.items():
    for S in steps:
        images, seconds = draw(steps=S, **kwargs)
        results[f"{name} {S}"] = dict(sampler=name, steps=S, images=images, seconds=seconds,
                                      **evaluate.digits_quality_table(images)["samples"])

ddpm_row = results[f"DDPM {T}"]


def kid_spread(row):
    """The standard error of a row's KID minus DDPM's, for each judge."""
    return {f: np.hypot(row[f + "_se"], ddpm_row[f + "_se"]) for f in ("kid", "pixel_kid")}


print(f"{'':10} {'steps':>5} {'seconds':>8} {'confidence':>10} {'frechet':>8} {'kid x1e3':>12} "
      f"{'pixel_frechet':>13} {'pixel_kid x1e3':>14}  as good as DDPM?")
for name, row in [*results.items(), ("real", r), ("noise", n)]:
    steps, seconds = (f"{row['steps']:5d}", f"{row['seconds']:8.2f}") if "steps" in row else ("", "")
    verdict = evaluate.as_good(row, ddpm_row, kid_spread(row))["as_good"] if "steps" in row else ""
    print(f"{name:10} {steps:>5} {seconds:>8} {row['confidence']:10.3f} {row['frechet']:8.3f} "
          f"{1e3 * row['kid']:6.2f}+-{1e3 * row['kid_se']:4.2f} {row['pixel_frechet']:13.3f} "
          f"{1e3 * row['pixel_kid']:8.2f}+-{1e3 * row['pixel_kid_se']:4.2f}  {verdict}")

# %%
rows_of = {name: [results[f"{name} {S}"] for S in steps] for name, (_, steps) in CURVE_SAMPLERS.items()}
ddim_rows = rows_of["DDIM"]
assert all(row["images"].shape == ddpm_images.shape for row in results.values())
for name in CURVE_SAMPLERS:  # the fewest-step samplers are faster than DDPM's T steps
    assert rows_of[name][0]["seconds"] < ddpm_seconds, (name, rows_of[name][0]["seconds"], ddpm_seconds)
if not SMOKE:  # a trained model: the best 20-step sampler is far nearer DDPM than noise is, for both judges
    best_20 = min((results[f"{name} 20"] for name in CURVE_SAMPLERS), key=lambda row: row["frechet"])
    for f in ("frechet", "pixel_frechet"):
        assert best_20[f] - ddpm_row[f] < (n[f] - ddpm_row[f]) / 10, (f, best_20[f], ddpm_row[f], n[f])

# %%
def log_steps_axis(ax):
    """Plain numbers on a log axis, ticks at the step counts we ran."""
    ax.set_xscale("log")
    ax.set_xticks(CURVE_STEPS + [T], [str(v) for v in CURVE_STEPS + [T]])
    ax.xaxis.set_minor_locator(mticker.NullLocator())


def log_values_axis(ax):
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(mticker.LogLocator(subs=(1, 2, 3, 5, 7)))
    ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())


styles = {"DDIM": dict(marker="o", label=r"DDIM ($\eta = 0$, uniform)"),
          "DPM++": dict(marker="s", label="DPM-Solver++(2M), trailing")}
fig, axes = plt.subplots(2, 3, figsize=(13, 6.4))
panels = [(axes[0, 0], "frechet", "MLP judges: Fréchet distance", 1),
          (axes[0, 1], "kid", r"MLP judges: KID $\times 10^3$", 1e3),
          (axes[1, 0], "pixel_frechet", "pixel judge: Fréchet distance", 1),
          (axes[1, 1], "pixel_kid", r"pixel judge: KID $\times 10^3$", 1e3)]
for ax, f, title, scale in panels:
    log_steps_axis(ax)
    for (name, rows), nudge in zip(rows_of.items(), (0.97, 1.03)):  # side by side, so the error bars stay apart
        steps, values = np.array([row["steps"] for row in rows]), [scale * row[f] for row in rows]
        if f.endswith("kid"):  # KID has a standard error; it may dip below zero, so a linear axis
            ax.errorbar(steps * nudge, values, yerr=[scale * row[f + "_se"] for row in rows],
                        capsize=3, **styles[name])
        else:
            ax.plot(steps, values, **styles[name])
    ax.axhline(scale * ddpm_row[f], color="red", ls="--", lw=1, label=f"DDPM, {T} steps")
    if f.endswith("kid"):  # DDPM's KID +- its standard error
        ax.axhspan(scale * (ddpm_row[f] - ddpm_row[f + "_se"]), scale * (ddpm_row[f] + ddpm_row[f + "_se"]),
                   color="red", alpha=0.08, lw=0)
    ax.plot([T], [scale * ddpm_row[f]], "r*", ms=11)
    ax.axhline(scale * r[f], color="green", ls=":", lw=1.5, label="real held-out digits (floor)")
    if not f.endswith("kid"):
        log_values_axis(ax)
    ax.set(title=f"{title} (lower is better)", xlabel="steps (network evaluations)")
ax = axes[0, 2]
log_steps_axis(ax)
log_values_axis(ax)
for name, rows in rows_of.items():
    ax.plot([row["steps"] for row in rows], [row["seconds"] for row in rows], **styles[name])
ax.plot([T], [ddpm_seconds], "r*", ms=11)
ax.set(title=f"wall time on {jax.devices()[0].platform} (compile excluded)", xlabel="steps (network evaluations)",
       ylabel=f"seconds for {N_HALF} samples")
axes[1, 2].axis("off")
axes[1, 2].legend(*axes[0, 0].get_legend_handles_labels(), loc="center", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# Wall time is proportional to the number of steps for both samplers: each step is one pass of the network over the
# batch (DPM-Solver++'s extra term is a weighted sum of two images, nothing next to the network), so 50 steps cost a
# twentieth of DDPM's 1000. Read the quality panels against the red line (on the KID panels the shaded band is DDPM's
# KID give or take its standard error): how many steps does each sampler need to reach DDPM, on both judges? The DDIM paper (its Table 1) finds on CIFAR-10 that with $\eta = 0$ the FID improves steeply
# from 10 to 50 steps and then flattens, close to DDPM's with all $T$ steps; a second-order solver should get there in fewer
# steps, as it did on the Gaussian data. This is one set of 500 samples from one pair of keys: differences within the
# KID's error bars, or of a few percent in Fréchet distance, are noise. `python bench/sampler_curve.py` measures the same
# curve over several seeds and every spacing, and [docs/sampling.md](../docs/sampling.md) explains the samplers, the judges
# and how each is tested. (In smoke mode the model is barely trained and $T = 50$: the curves there mean nothing.)
#
# ### Side by side
#
# The first rows below start from the **same** $x_T$ in every sampler. DDIM with $\eta = 0$ is a deterministic map from $x_T$,
# and maps with different $S$ approximate the same underlying map (the ODE's), so for a trained model the same $x_T$ tends
# to give the same digit whatever $S$: the DDIM paper's "consistency" (its section 5.3). DPM-Solver++ solves the same ODE,
# so it should draw the same digits too. DDPM adds fresh noise at every step, so from the same $x_T$ it draws a different
# image.

# %%
n_show = 12
labels = [f"DDPM {T}"] + [f"DDIM {S}" for S in CURVE_STEPS] + [f"DPM++ {row['steps']}" for row in rows_of["DPM++"][:2]]
rows = [results[label]["images"][:n_show] for label in labels]
titles = [label if j == 0 else "" for label in labels for j in range(n_show)]
viz.show_images(np.concatenate(rows), titles, ncols=n_show, size=0.9,
                suptitle="same x_T in every column; one sampler per row")
plt.show()

# consistency: the two DDIM runs with most steps, from the same x_T, against the same pairs with x_T shuffled
a_imgs = f64(ddim_rows[-1]["images"]) / 255
b_imgs = f64(ddim_rows[-2]["images"]) / 255
same_xT = np.sqrt(((a_imgs - b_imgs) ** 2).mean((1, 2, 3))).mean()
other_xT = np.sqrt(((a_imgs - np.roll(b_imgs, 1, axis=0)) ** 2).mean((1, 2, 3))).mean()
print(f"RMS pixel difference between DDIM {CURVE_STEPS[-1]} and DDIM {CURVE_STEPS[-2]}: "
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
# - In $\lambda = \log(\alpha_t/\sigma_t)$, DDIM with $\eta = 0$ is the exact solution of the probability-flow ODE when the
#   predicted $x_0$ is held fixed over each step: a first-order solver, whose error halves when the steps double.
#   DPM-Solver++(2M) lets the prediction vary linearly, using the previous step's, for the same one network call per step:
#   second order, a quarter of the error when the steps double. Uniform steps in $t$ are uneven in $\lambda$ and spoil its
#   extrapolation at few steps; trailing spacing does not. The curve compares them on the digits with both judges.
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
# 4. **Spacings.** Add `"DDIM trailing": (dict(sampler="ddim", spacing="trailing"), CURVE_STEPS)` and
#    `"DPM++ uniform": (dict(sampler="dpm++2m"), CURVE_STEPS)` to `CURVE_SAMPLERS` and rerun the curve. Which matters more at 10 steps,
#    the solver's order or where its steps are placed? Does the Gaussian experiment predict what you see?

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
# - Faster samplers on the same trained network: Lu et al., [DPM-Solver](https://arxiv.org/abs/2206.00927) and
#   [DPM-Solver++](https://arxiv.org/abs/2211.01095) (its Algorithm 2 is the 2M solver we derived; it also
#   has higher orders and singlestep variants); Lin et al., [Common diffusion noise schedules and sample steps are
#   flawed](https://arxiv.org/abs/2305.08891) (trailing spacing, its Table 2); Karras et al.,
#   [EDM](https://arxiv.org/abs/2206.00364). Our solver is `nanoddpm_utils/solver.py`;
#   [docs/sampling.md](../docs/sampling.md) explains every sampler and spacing, the two judges, and how each is tested.
#   Steering a trained model: Ho & Salimans, [classifier-free guidance](https://arxiv.org/abs/2207.12598).
#
# **Next:** [08 — Draw me a 7: class-conditional diffusion and classifier-free guidance](08_guidance.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/08_guidance.ipynb):
# how to tell the model *what* to draw. Or train the `nano_cifar10` preset in [notebook 06](06_train_cifar10.ipynb)
# and evaluate it with `python -m nanoddpm_utils eval`; the appendix, [A1 — Making JAX fast](A1_jax_speed.ipynb),
# shows how the package makes all of this fast.
