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
# # 07 — Evaluation: bits/dim and the judges of sample quality
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/07_evaluation.ipynb)
#
# Notebook 07 of **nanoJaxDDPM** (DDPM, Ho, Jain & Abbeel 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# We have a trained model ([notebook 04](04_training_loop.ipynb)) and a sampler ([notebook 05](05_reverse_sampler.ipynb)).
# How good is it? The paper answers with a **likelihood** (its Table 1: at most 3.75 bits/dim on CIFAR-10) and with
# **sample quality** (Inception score and FID). We compute both for the digits model. **What you will learn:**
# - the variational bound term by term, in **bits per dimension**; an oracle, and why its KL terms vanish with
#   $\sigma_t^2 = \tilde\beta_t$ but not with $\beta_t$; which timesteps carry the bound;
# - the judges of sample quality, next to real digits they never saw: confidence, coverage, the **Fréchet distance**, **KID**,
#   and **precision and recall**, which read fidelity and diversity apart; why judges disagree;
# - the **copy check**: is the model drawing its training digits back?

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
from scipy import stats

from nanoddpm_utils import bpd, evaluate, pretrained, sample, train, viz
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.diffusion import (discretized_gaussian_log_likelihood, normal_kl, p_mean_variance,
                                      q_posterior_mean_variance, q_sample)
from nanoddpm_utils.images import to_model_range, to_uint8
from nanoddpm_utils.schedule import make_schedule

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 0. A trained model
#
# We evaluate the `digits` model that ships with the package (the EMA weights of notebook 04's preset, as the paper
# evaluates its EMA model), or train it here with `TRAIN_FROM_SCRATCH = True`. In smoke mode (the test suite) a tiny model
# with $T = 50$ trains for seconds instead; its samples are poor, so the checks that need a *good* model are skipped.

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
train_images, test_images = load_digits("train"), load_digits("test")  # (1437, 8, 8, 1), (360, 8, 8, 1) uint8
print(f"{config.name}: {config.train.steps} steps on {len(train_images)} digits, T = {T}, sigma_t^2 = {VARIANCE!r}")

# %% [markdown]
# # Part 1 — The likelihood: bits per dimension
#
# ## 1. The variational bound, term by term
#
# [Notebook 04](04_training_loop.ipynb) derived the bound on $-\log p_\theta(x_0)$ (the paper's eqs. 3–5) and trained with
# $L_\mathrm{simple}$, its reweighted form. Here we compute the bound itself:
#
# $$L = \mathbb{E}_q\Big[\underbrace{D_\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T}
#   + \sum_{t=2}^{T} \underbrace{D_\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}}
#   \;\underbrace{-\log p_\theta(x_0 \mid x_1)}_{L_0}\Big] \;\ge\; -\log p_\theta(x_0).$$
#
# - $L_T$, the **prior term**, compares where the forward process ends with $p(x_T) = \mathcal{N}(0, I)$: no parameters, tiny.
# - $L_{t-1}$ compares the true posterior $q(x_{t-1} \mid x_t, x_0) = \mathcal{N}(\tilde\mu_t, \tilde\beta_t I)$ with the model's step
#   $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 I)$ (eq. 11), estimated as the official `calc_bpd_loop`
#   does, with **one** draw of $x_t \sim q(x_t \mid x_0)$ per image and per $t$.
# - $L_0$, the **decoder**, is the probability the last step gives to the actual 8-bit image (eq. 13, below).
#
# Divided by the number of dimensions $D = H \cdot W \cdot C$ and by $\ln 2$: **bits per dimension**. In code indices
# (0-based, notebook 01) `terms[0]` is the decoder $L_0$ and `terms[t]` for `t >= 1` the KL $L_t$.
#
# ### The KL between two Gaussians, in closed form per dimension
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
# it is the KL: the mean of log q(x) - log p(x) over draws x ~ q (Monte Carlo, within 5 standard errors)
rng = np.random.default_rng(0)
x = m1 + np.exp(0.5 * lv1) * rng.standard_normal(400_000)
log_ratio = stats.norm.logpdf(x, m1, np.exp(0.5 * lv1)) - stats.norm.logpdf(x, m2, np.exp(0.5 * lv2))
assert abs(log_ratio.mean() - normal_kl_inline(m1, lv1, m2, lv2)) < 5 * log_ratio.std() / np.sqrt(len(x))
np.testing.assert_allclose(normal_kl(m1, lv1, m2, lv2), normal_kl_inline(m1, lv1, m2, lv2), rtol=1e-6)  # the package

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
# The edge bins stretch to infinity, so the 256 bins' probabilities sum to one: a true discrete distribution, whose
# $-\log$ is a code length. Inline, in float64 (with the package's floor of $10^{-12}$ on an inner bin's probability):

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


# %%
levels = (np.arange(256) - 127.5) / 127.5  # every value an 8-bit pixel can take, in [-1, 1]
for mean, sigma in [(0.0, 0.01), (0.37, 0.003), (-0.99, 0.05), (0.9, 0.5)]:
    inline = decoder_log_likelihood_inline(levels, mean, sigma)
    assert abs(np.exp(inline).sum() - 1.0) < 1e-6  # the 256 bins carry all the probability
    np.testing.assert_allclose(discretized_gaussian_log_likelihood(jnp.asarray(levels, jnp.float32), mean,
                                                                   np.log(sigma)), inline, rtol=1e-3, atol=1e-4)

# %% [markdown]
# ### One test digit, every term
#
# For each `t`, one $x_t \sim q(x_t \mid x_0)$ (eq. 4), the model's $\epsilon_\theta(x_t, t)$ (one batch of $T$ images) and its
# step's mean (`p_mean_variance`, notebook 05); then our two inline formulas. The noise is drawn as `bpd.bpd_batch` draws
# it (`fold_in(key, t)`), so the package must return the same numbers.

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
print(f"one digit: L_T = {prior:.2e}, L_0 = {decoder:.3f}, sum of the KLs = {kl_terms[1:].sum():.3f}, "
      f"total = {prior + terms_inline.sum():.3f} bits/dim")

# %%
prior_pkg, terms_pkg = bpd.bpd_batch(model, schedule, x0[None], key_bpd, variance=VARIANCE)  # (1,), (1, T)
np.testing.assert_allclose(terms_pkg[0], terms_inline, rtol=2e-3, atol=2e-5)
np.testing.assert_allclose(prior_pkg[0], prior, rtol=1e-3, atol=1e-7)

# %% [markdown]
# ## 2. An oracle: when do the KL terms vanish?
#
# Take a data set of **one** image $x_0$. The best possible noise predictor then knows $x_0$ and reads the noise off $x_t$
# exactly: $\epsilon^\star(x_t, t) = (x_t - \sqrt{\bar\alpha_t}\,x_0)/\sqrt{1-\bar\alpha_t}$. Its predicted $x_0$ is exact, so its mean
# $\mu_\theta$ equals the posterior mean $\tilde\mu_t$ and every KL reduces to the variance mismatch:
#
# $$L_{t-1}^\star = \tfrac12\Big(\log\frac{\sigma_t^2}{\tilde\beta_t} + \frac{\tilde\beta_t}{\sigma_t^2} - 1\Big)\ \text{nats/dim}.$$
#
# With $\sigma_t^2 = \tilde\beta_t$ ("fixedsmall") this is **zero**. With $\sigma_t^2 = \beta_t$ ("fixedlarge", our default) a cost
# remains even for a perfect model, largest at small $t$, where $\tilde\beta_t$ and $\beta_t$ differ most ($\tilde\beta_1 = 0$).

# %%
def oracle_eps(x0, x_t, t, *, key=None):
    """The optimal noise predictor when the data set is the one image x0."""
    return (x_t - schedule.sqrt_alphas_cumprod[t] * x0) / schedule.sqrt_one_minus_alphas_cumprod[t]


oracle = eqx.Partial(oracle_eps, x0)  # a model: oracle(x_t, t)
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

# %% [markdown]
# ## 3. The bound of test digits
#
# `bpd.bits_per_dim` does the same for a data set, one jitted `lax.scan` over the $T$ timesteps per batch. The paper's
# Table 1 reports $\le 3.75$ bits/dim on CIFAR-10 for the model trained with $L_\mathrm{simple}$, $\le 3.70$ for one trained on the
# bound itself, which samples worse (FID 13.51 against 3.17). Digits (17 of the 256 levels) are not comparable with
# CIFAR-10. The bound costs $T$ network calls per image: we take `BPD_IMAGES` test digits and print the standard error.

# %%
BPD_IMAGES = 16 if SMOKE else 64
start = time.perf_counter()
test_bpd = bpd.bits_per_dim(model, schedule, test_images[:BPD_IMAGES], key=jax.random.key(1), variance=VARIANCE,
                            progress=not SMOKE)
print(f"{BPD_IMAGES} test digits, T = {T}, {time.perf_counter() - start:.0f} s: {test_bpd['total']:.3f} ± "
      f"{test_bpd['total_sem']:.3f} bits/dim = prior {test_bpd['prior']:.1e} + KLs {test_bpd['kl']:.3f} + decoder "
      f"{test_bpd['decoder']:.3f}")

# %%
terms = test_bpd["terms"]  # (T,): terms[t] is the paper's L_t, terms[0] the decoder
assert np.all(terms >= -1e-6) and test_bpd["prior"] >= 0  # KLs and -log of a probability (float32 rounds ~1e-7)
if VARIANCE == "fixedlarge":  # no model beats the oracle: the variance gap is a floor under every KL term
    assert np.all(terms[1:] >= floor_large * (1 - 1e-3) - 1e-6)

# %% [markdown]
# ### Which timesteps carry the bound?
#
# The bound sits at **small** $t$: there the posterior is narrow ($\tilde\beta_t$ is tiny), so any error in the predicted $x_0$
# costs a lot; at large $t$ the posterior mean hardly depends on $x_0$ and mistakes are cheap. These are imperceptible
# details (Ho et al., section 4.3), which is why a model can score a mediocre likelihood and still draw good samples.

# %%
share = np.cumsum(terms) / test_bpd["total"]  # share of the bound in L_0 .. L_t (L_T, tiny, comes last)
small_t = max(1, T // 10)
print(f"L_0 .. L_{small_t - 1} (the first 10% of the timesteps) carry {100 * share[small_t - 1]:.0f}% of the bound")
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.loglog(np.arange(1, T), terms[1:], ".-", ms=3, label=r"KL terms $L_t$ (test digits)")
ax.plot([1], [terms[0]], "rs", label=r"decoder $L_0$ (plotted at $t=1$)")
if VARIANCE == "fixedlarge":
    ax.loglog(np.arange(1, T), floor_large, color="grey", label="oracle's floor (fixedlarge)")
ax.set(xlabel="t", ylabel="bits/dim", title="each term of the bound")
ax.legend(fontsize=8)
plt.show()

# %%
assert share[small_t - 1] > 0.5  # most of the bound sits at small t
assert terms[0] + terms[1] > terms[T // 2:].mean() * 10  # the first two terms dwarf a typical late one

# %% [markdown]
# # Part 2 — Sample quality
#
# A likelihood says little about how samples *look*; the paper adds the Inception score and FID (an ImageNet classifier).
# Our judges come from scikit-learn: 8 small MLPs (`evaluate.digits_judges`), each trained on its own random 80% of the
# digits, and a judge sharing nothing with them (`pixel_`: an SVM on the pixels, the first 20 principal components).
# Each reports **confidence** (its mean top-class probability), **coverage** (the entropy of the predicted classes,
# $\log 10 = 2.303$ when all ten are equally common; the classes present; the smallest class share) and the **Fréchet
# distance**, the FID recipe in the judge's features: fit a Gaussian $(\mu, \Sigma)$ to each set's features and compute
#
# $$d^2 = \|\mu_a - \mu_b\|^2 + \operatorname{Tr}\big(\Sigma_a + \Sigma_b - 2(\Sigma_a\Sigma_b)^{1/2}\big),$$
#
# the **squared 2-Wasserstein distance** between the two fitted Gaussians (here against the judge's training digits).
# Two closed forms check it. Shift a set by $c$: only the means differ, $d^2 = \|c\|^2$. Scale it by $s$:
# $(\Sigma_a \cdot s^2\Sigma_a)^{1/2} = s\Sigma_a$, so $d^2 = (1-s)^2\,(\|\mu_a\|^2 + \operatorname{Tr}\Sigma_a)$.

# %%
judge = evaluate.digits_judge()
feats = judge.features(test_images)  # (360, 64): the first judge's hidden pre-activations
shift, s = np.full(feats.shape[1], 0.5), 1.5
d_shift, d_scale = evaluate.frechet_distance(feats, feats + shift), evaluate.frechet_distance(feats, s * feats)
scale_exact = (1 - s) ** 2 * (feats.mean(0) @ feats.mean(0) + np.trace(np.cov(feats, rowvar=False)))
print(f"shifted: {d_shift:.4f} (||c||^2 = {shift @ shift:.4f}); scaled: {d_scale:.4f} (closed form {scale_exact:.4f})")

# %%
np.testing.assert_allclose([d_shift, d_scale], [shift @ shift, scale_exact], rtol=1e-6)

# %% [markdown]
# The mean and covariance fitted to $N$ images are estimates whose noise adds to $d^2$: the fewer the images, the larger
# the distance, even for real digits. One judge's held-out digits, in subsets:

# %%
held = judge.held_out
by_size = {n: np.mean([judge.score(held[rng.permutation(len(held))[:n]])["frechet"] for _ in range(10)])
           for n in (32, 64, 120, 250, len(held))}
print("Fréchet distance of real held-out digits by set size:", {n: round(float(v), 2) for n, v in by_size.items()})

# %%
sizes = sorted(by_size)
assert all(by_size[a] > by_size[b] for a, b in zip(sizes, sizes[1:])) and by_size[32] > 3 * by_size[sizes[-1]]

# %% [markdown]
# So `digits_quality_table` scores every row on sets of one size (the samples', up to 360): the samples, **real digits the
# judges never saw** (the floor: new draws from the data, as a perfect model's are) and **noise**. Beside it sits **KID**
# (Bińkowski et al. 2018, [arXiv:1801.01401](https://arxiv.org/abs/1801.01401)): the squared maximum mean discrepancy
# $\mathbb{E}\,k(a, a') + \mathbb{E}\,k(b, b') - 2\,\mathbb{E}\,k(a, b)$ with a cubic kernel, estimated without bias, so it does not
# grow as the set shrinks; it has a standard error (`+-`) and dips below zero when both sets come from one distribution.
# The samples: Algorithm 2 on all $T$ steps, and, as a second set to judge, DDIM on 50 ([notebook 08](08_fast_sampling.ipynb)).

# %%
N_SAMPLES, DDIM_STEPS = (64, 10) if SMOKE else (200, 50)
start = time.perf_counter()
ddpm_images = to_uint8(sample.sample_images(config, model, jax.random.key(100), N_SAMPLES))
print(f"DDPM, {T} steps: {N_SAMPLES} samples in {time.perf_counter() - start:.0f} s")
ddim_images = to_uint8(sample.sample_images(config, model, jax.random.key(100), N_SAMPLES, sampler="ddim",
                                            steps=DDIM_STEPS))
viz.show_images(np.concatenate([ddpm_images[:12], ddim_images[:12]]), ncols=12, size=1.1,
                titles=[f"DDPM {T}"] + [""] * 11 + [f"DDIM {DDIM_STEPS}"] + [""] * 11)
plt.show()
table = evaluate.digits_quality_table(ddpm_images)  # and the DDIM row, scored against the same real digits
table = {f"DDPM {T}": table.pop("samples"), f"DDIM {DDIM_STEPS}": evaluate.digits_quality_table(ddim_images)["samples"],
         **table}
print(evaluate.format_table(table))

# %% [markdown]
# Notice noise's **confidence**: an MLP is confidently wrong far from its training data. No single number is enough: noise
# fails on coverage and distance, a model that draws only 1s on coverage, a blurry one on confidence and distance. On a
# few hundred images KID's error bars are as wide as the gap between samples and floor: it cannot tell them apart.
# The precision and recall columns are the next section's.

# %%
smp, ddim, real, noi = table.values()
for j in ("", "pixel_"):  # real digits: KID is 0 within its error; noise: far outside it
    assert abs(real[j + "kid"]) < 3 * real[j + "kid_se"] and noi[j + "kid"] > 10 * noi[j + "kid_se"]
assert real["classes_present"] == 10 and real["coverage_entropy"] > 2.2 > noi["coverage_entropy"]
if not SMOKE:  # a trained model draws every digit, near the floor's Fréchet distance and precision
    assert smp["classes_present"] == 10 and smp["frechet"] < 2 * real["frechet"], smp
    assert smp["precision"] > real["precision"] - 0.1 and smp["recall"] > real["recall"] - 0.15, smp

# %% [markdown]
# ## 4. Precision and recall: fidelity and diversity, read apart
#
# One distance mixes two failures: samples that do not look real (fidelity) and real digits the model never draws
# (diversity). Kynkäänniemi et al. 2019 ([arXiv:1904.06991](https://arxiv.org/abs/1904.06991)) split them. Put a ball around
# each real feature vector, of radius its distance to its $k$-th nearest real neighbour (itself left out): their union
# estimates the **real manifold**. Build the fake manifold likewise from the samples. **Precision** is the share of samples
# inside the real manifold, **recall** the share of real points inside the fake one. First in 2-D, where the balls can be
# drawn: real points on a ring, fakes collapsed onto a quarter of it, or spread over a blob.

# %%
def precision_recall_inline(real, fake, k=3):
    """The share of fakes inside the real points' balls, and of real points inside the fakes' balls."""
    def radii(x):  # distance to the k-th nearest other point: column 0 of the sorted row is the point itself
        return np.sort(np.linalg.norm(x[:, None] - x[None], axis=-1), axis=1)[:, k]

    def inside(points, centres, r):  # is each point in at least one ball?
        return (np.linalg.norm(points[:, None] - centres[None], axis=-1) <= r).any(axis=1)

    return inside(fake, real, radii(real)).mean(), inside(real, fake, radii(fake)).mean()


rng = np.random.default_rng(1)
angle = rng.uniform(0, 2 * np.pi, 80)
ring = np.stack([np.cos(angle), np.sin(angle)], 1) + 0.05 * rng.normal(size=(80, 2))
arc = rng.uniform(0, np.pi / 2, 20)  # fakes on one quarter of the ring only, and fakes all over a blob
toys = {"collapsed": np.stack([np.cos(arc), np.sin(arc)], 1) + 0.05 * rng.normal(size=(20, 2)),
        "spread": 0.8 * rng.normal(size=(80, 2))}
ring_radii = np.sort(np.linalg.norm(ring[:, None] - ring[None], axis=-1), axis=1)[:, 3]  # k = 3
fig, axes = plt.subplots(1, 2, figsize=(9, 4.4))
for ax, (name, fake) in zip(axes, toys.items()):
    for centre, r in zip(ring, ring_radii):
        ax.add_patch(plt.Circle(centre, r, color="tab:blue", alpha=0.12, lw=0))
    inside = (np.linalg.norm(fake[:, None] - ring[None], axis=-1) <= ring_radii).any(1)
    ax.plot(*ring.T, ".", color="tab:blue", label="real, with its ball")
    ax.plot(*fake[inside].T, "o", color="tab:green", ms=4, label="fake inside the real manifold")
    ax.plot(*fake[~inside].T, "x", color="tab:red", ms=5, label="fake outside")
    ax.set(title="%s: precision %.2f, recall %.2f" % (name, *precision_recall_inline(ring, fake)), aspect="equal")
axes[0].legend(fontsize=8, loc="lower left")
plt.show()

# %%
(p_col, r_col), (p_spr, r_spr) = [precision_recall_inline(ring, f) for f in toys.values()]
assert p_col == 1.0 and r_col < 0.4 and r_spr > 0.9 and p_spr < 0.5  # fidelity without diversity, and the reverse
real_f, fake_f = judge.reference_features[:N_SAMPLES], judge.features(ddpm_images)  # the same on digit features
np.testing.assert_allclose(precision_recall_inline(real_f, fake_f), evaluate.precision_recall(real_f, fake_f))

# %% [markdown]
# Read the DDIM row against DDPM's: on both judges DDIM's Fréchet distance is lower (it can fall below the real digits'
# floor), yet its precision is lower too. Both judges are right, about different things. The Fréchet distance compares two
# Gaussians: it sees a set's mean and covariance, plus the noise of estimating them from a few hundred images, which grows
# with the set's own spread. A set can match both moments, or vary a little less than real digits and so pay less of that
# noise, while some of its points are not digits at all: a smudge between a 3 and a 5 lies between them in feature space,
# where it spoils neither moment. Precision looks at each sample's neighbourhood and counts it. A Fréchet distance below
# the real digits' means closer in two moments, not better than real. When judges disagree, report both;
# [notebook 08](08_fast_sampling.ipynb) follows this trade across samplers.

# %%
if not SMOKE:  # the disagreement, on both judges: DDIM is nearer in Fréchet distance, and less precise
    assert ddim["frechet"] < smp["frechet"] and ddim["pixel_frechet"] < smp["pixel_frechet"], (ddim, smp)
    assert ddim["precision"] < smp["precision"] and ddim["pixel_precision"] < smp["pixel_precision"], (ddim, smp)

# %% [markdown]
# ## 5. Is the model copying its training digits?
#
# A model that memorised its training digits would please every judge above: its samples *are* real digits. So ask
# directly: for each sample, the distance (in pixels, scaled to $[0, 1]$) to its nearest training digit, against the same
# for the test digits, which the model never saw. The nearest 5% of test digits fix a threshold: a new real digit falls
# below it 5% of the time, and so should a sample from a model that generalises; a copying model puts many below it.
# To see that the check would notice, we also plant copies: 15% of the samples replaced by training digits.

# %%
copies = evaluate.copy_distances(ddpm_images, train_images, test_images)
threshold = np.quantile(copies["held_out"], 0.05)
near = np.mean(copies["samples"] < threshold)
print(f"median distance to the nearest training digit: samples {np.median(copies['samples']):.2f}, test digits "
      f"{np.median(copies['held_out']):.2f}; samples below the test digits' 5% threshold: {100 * near:.1f}%")
closest = np.argsort(copies["samples"])[:10]
viz.show_images(np.concatenate([ddpm_images[closest], train_images[copies["samples_index"][closest]]]),
                [f"{d:.2f}" for d in copies["samples"][closest]] + ["train"] * 10, ncols=10, size=0.9,
                suptitle="the 10 samples nearest a training digit (top, with the distance) and that digit (bottom)");

# %%
planted, n_planted = ddpm_images.copy(), round(0.15 * N_SAMPLES)
planted[:n_planted] = train_images[:n_planted]
near_planted = np.mean(evaluate.copy_distances(planted, train_images, test_images)["samples"] < threshold)
d_inline = np.sqrt(((f64(ddpm_images[:5, None]) - f64(train_images[None])) ** 2).sum((2, 3, 4))).min(1) / 255
np.testing.assert_allclose(copies["samples"][:5], d_inline)  # the nearest-neighbour distance, written out
assert near_planted >= n_planted / N_SAMPLES > 0.10  # the planted copies are caught, and flagged...
assert near < 0.10, near  # ...and the model's own samples are not copies (new real digits: 5%, give or take 1.5%)

# %% [markdown]
# ## Summary
#
# - The bound, closed-form Gaussian KLs and a discretized decoder, sits almost all at small $t$, in unseen details.
# - The Fréchet distance (squared 2-Wasserstein between fitted Gaussians) sees two moments and grows as the set shrinks:
#   compare it only at equal sizes. Precision and recall read fidelity and diversity apart; when judges disagree, each
#   is right about what it measures. The copy check asks whether samples are new digits or training digits again.
#
# ## Exercises
#
# 1. **A model that collapses.** Repeat each of the first 20 DDPM samples 10 times. Which falls, precision or recall?
# 2. **Copies the check cannot see.** Shift 30 training digits by one pixel (`np.roll(train_images[:30], 1, axis=2)`)
#    and put them through the copy check as if they were samples. Are they caught?

# %%
answer_falls = None  # exercise 1: "precision" or "recall" (the cell after the solutions checks your answers)
answer_caught = None  # exercise 2: True or False

# %% [markdown]
# ## Solutions
#
# 1. Recall. The repeats still look like digits, so precision stays near the originals'; but each now has 9 copies of
#    itself as nearest neighbours, its ball shrinks to a point, and the fake manifold covers almost no real digit.
# 2. No. A one-pixel shift moves a digit far in pixel space, farther than most new real digits are from the training
#    set: the check only sees copies that are near pixel for pixel. A feature space that ignores small shifts would see more.

# %%
repeated = np.repeat(ddpm_images[:20], 10, axis=0)
pr_repeated = evaluate.precision_recall(judge.reference_features[:200], judge.features(repeated))
shifted = evaluate.copy_distances(np.roll(train_images[:30], 1, axis=2), train_images, test_images)["samples"]
print("repeated samples: precision %.2f, recall %.2f" % pr_repeated, f"| caught: {np.mean(shifted < threshold):.0%}")
assert (answer_falls or "recall") == "recall" and pr_repeated[1] < 0.2, f"exercise 1: {pr_repeated}"
assert (False if answer_caught is None else answer_caught) == (np.mean(shifted < threshold) > 0.5), "exercise 2"

# %% [markdown]
# ## Go further
#
# - Kynkäänniemi et al., [improved precision and recall](https://arxiv.org/abs/1904.06991); Naeem et al.,
#   [density and coverage](https://arxiv.org/abs/2002.09797) (what one outlier among the real points does to the balls);
#   Meehan et al., [a test for data copying](https://arxiv.org/abs/2004.05675).
# - Heusel et al., [FID](https://arxiv.org/abs/1706.08500); Chong & Forsyth, [unbiased FID](https://arxiv.org/abs/1911.07023)
#   (the set-size bias); Nichol & Dhariwal, [Improved DDPM](https://arxiv.org/abs/2102.09672): learning $\sigma_t^2$.
#
# **Next:** [08 — Fast sampling: DDIM and DPM-Solver++](08_fast_sampling.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/08_fast_sampling.ipynb):
# the same model on 20 to 50 steps instead of 1000, and what these judges say about it.
