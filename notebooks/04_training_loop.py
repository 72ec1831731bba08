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
# # 04 — Training: from the variational bound to $L_\text{simple}$
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/04_training_loop.ipynb)
#
# Part 4 of **nanoJaxDDPM** (DDPM, Ho et al. 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# We have the forward process ([01](01_forward_process.ipynb)), the time embedding ([02](02_sinusoidal_embedding.ipynb))
# and the network $\epsilon_\theta(x_t, t)$ ([03](03_unet.ipynb)). Now we derive what to train it on, and train it.
#
# **What you will learn**
# - the variational bound on the likelihood (the paper's eq. 3), rewritten as a sum of KL divergences (eq. 5);
# - each term as a squared distance between two Gaussian means (eq. 8), and, once the network predicts the noise,
#   as a weighted squared error between the true and the predicted noise (eqs. 10–12), with its weight plotted;
# - $L_\text{simple}$ (eq. 14): the same error without the weight, and Algorithm 1;
# - what the network learns: the noise it predicts is a scaled *score*, $-\sqrt{1-\bar\alpha_t}\,\nabla\log q(x_t)$;
# - the training step as one jitted function, and the exponential moving average (EMA) of the weights;
# - training the `digits` model live, then samples with and without the EMA, scored, and compared with the model
#   the course ships.
#
# Every derivation is followed by a cell that checks it numerically: change a sign or a factor in the code (or in
# the maths it implements) and the check fails.

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
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from IPython.display import display

from nanoddpm_utils import checkpoint, pretrained, sample, train
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import get_batch, load_digits, to_model_range, to_uint8
from nanoddpm_utils.diffusion import normal_kl, p_mean_variance, q_posterior_mean_variance
from nanoddpm_utils.evaluate import digits_quality_table, format_table
from nanoddpm_utils.schedule import make_schedule
from nanoddpm_utils.tracking import Tracker, image_grid, read_metrics, resolve_mode

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
# Keep compiled programs on disk: `fit` (section 8) builds its own jitted steps; a restarted kernel finds them.
jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/nanoddpm/jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
BACKEND = jax.default_backend()
print(f"jax {jax.__version__} on {BACKEND} ({jax.devices()[0].device_kind}); smoke mode: {SMOKE}")

# %% [markdown]
# ## 1. The variational bound (eqs. 3 → 5)
#
# The model is the reverse chain $p_\theta(x_{0:T}) = p(x_T)\prod_{t=1}^{T} p_\theta(x_{t-1} \mid x_t)$ with
# $p(x_T) = \mathcal{N}(0, I)$. Its likelihood $p_\theta(x_0) = \int p_\theta(x_{0:T})\,dx_{1:T}$ is intractable, but
# the forward process $q(x_{1:T} \mid x_0)$ of notebook 01 gives a bound (Jensen's inequality on
# $\log \mathbb{E}_q[p_\theta(x_{0:T}) / q(x_{1:T} \mid x_0)]$):
#
# $$-\log p_\theta(x_0) \le \mathbb{E}_q\Big[-\log p(x_T) - \sum_{t \ge 1} \log \frac{p_\theta(x_{t-1} \mid x_t)}{q(x_t \mid x_{t-1})}\Big]
#   =: L. \qquad \text{(eq. 3)}$$
#
# Three steps turn it into KL divergences between distributions we know.
# 1. The forward chain is Markov, so $q(x_t \mid x_{t-1}) = q(x_t \mid x_{t-1}, x_0)$, and Bayes' rule turns it around:
#    $q(x_t \mid x_{t-1}, x_0) = q(x_{t-1} \mid x_t, x_0)\, q(x_t \mid x_0) / q(x_{t-1} \mid x_0)$, for $t \ge 2$.
# 2. In the sum over $t = 2, \dots, T$ the ratios $q(x_t \mid x_0)/q(x_{t-1} \mid x_0)$ telescope to
#    $q(x_T \mid x_0)/q(x_1 \mid x_0)$, and the $q(x_1 \mid x_0)$ cancels the $t = 1$ term's $q(x_1 \mid x_0)$.
# 3. Grouping what is left by variable, each group's expectation is a KL divergence:
#
# $$L = \mathbb{E}_q\Big[\underbrace{D_\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T}
#   + \sum_{t=2}^{T} \underbrace{D_\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}}
#   \underbrace{-\log p_\theta(x_0 \mid x_1)}_{L_0}\Big]. \qquad \text{(eq. 5)}$$
#
# $L_T$ has no parameters (the schedule is fixed). Each $L_{t-1}$ compares one reverse step with the posterior
# $q(x_{t-1} \mid x_t, x_0) = \mathcal{N}(\tilde\mu_t, \tilde\beta_t I)$ of notebook 01, a Gaussian whose mean and variance we
# know. $L_0$ is the decoder (notebook 07 computes it for bits/dim).
#
# Eqs. 3 and 5 are the same number, computed in two different ways: eq. 3 from log-densities along sampled forward
# chains, eq. 5 mostly from closed-form KLs. A one-dimensional test: $T = 10$ steps, one data point $x_0 = 0.8$, and
# a deliberately imperfect reverse model (the posterior mean with $x_0$ guessed as $\tanh(x_t)$, $\sigma_t^2 = \beta_t$).
# Both are estimated from the same 400,000 forward chains (the KLs by the package's `normal_kl`).

# %%
T_toy, x0_toy, n_chains = 10, 0.8, 400_000
betas_toy = np.linspace(0.05, 0.5, T_toy)  # index i is the paper's step t = i + 1
alphas_toy = 1.0 - betas_toy
abar_toy = np.cumprod(alphas_toy)
abar_prev_toy = np.concatenate([[1.0], abar_toy[:-1]])


def toy_posterior(x_t, x0, i):
    """q(x_{t-1} | x_t, x_0) for step i (notebook 01): mean and variance."""
    c1 = np.sqrt(abar_prev_toy[i]) * betas_toy[i] / (1 - abar_toy[i])
    c2 = np.sqrt(alphas_toy[i]) * (1 - abar_prev_toy[i]) / (1 - abar_toy[i])
    return c1 * x0 + c2 * x_t, betas_toy[i] * (1 - abar_prev_toy[i]) / (1 - abar_toy[i])


def toy_model_mean(x_t, i):
    """An imperfect reverse model: the posterior mean, with x_0 guessed from x_t."""
    return toy_posterior(x_t, np.tanh(x_t), i)[0]


def log_normal(x, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def kl(m1, v1, m2, v2):
    """The package's KL between N(m1, v1) and N(m2, v2) (computed in float32)."""
    return np.asarray(normal_kl(m1, np.log(v1), m2, np.log(v2)), np.float64)


rng = np.random.default_rng(0)
xs = [np.full(n_chains, x0_toy)]  # x_0, x_1, ..., x_T along each forward chain
for i in range(T_toy):
    xs.append(np.sqrt(alphas_toy[i]) * xs[-1] + np.sqrt(betas_toy[i]) * rng.standard_normal(n_chains))

# eq. 3: -log p(x_T) - sum_t log p_theta(x_{t-1} | x_t) / q(x_t | x_{t-1}), chain by chain
eq3 = -log_normal(xs[T_toy], 0.0, 1.0)
for i in range(T_toy):
    eq3 -= log_normal(xs[i], toy_model_mean(xs[i + 1], i), betas_toy[i]) \
        - log_normal(xs[i + 1], np.sqrt(alphas_toy[i]) * xs[i], betas_toy[i])

# eq. 5: L_T + sum_{t >= 2} L_{t-1} + L_0
eq5 = kl(np.sqrt(abar_toy[-1]) * x0_toy, 1 - abar_toy[-1], 0.0, 1.0) * np.ones(n_chains)  # L_T
for i in range(1, T_toy):
    mean_q, var_q = toy_posterior(xs[i + 1], x0_toy, i)
    eq5 += kl(mean_q, var_q, toy_model_mean(xs[i + 1], i), betas_toy[i])  # L_{t-1}
eq5 -= log_normal(x0_toy, toy_model_mean(xs[1], 0), betas_toy[0])  # L_0
diff = eq3 - eq5
se = diff.std() / np.sqrt(n_chains)
print(f"eq. 3: {eq3.mean():.4f} nats, eq. 5: {eq5.mean():.4f} nats, difference {diff.mean():+.4f} "
      f"(standard error {se:.4f})")

# %%
assert se < 0.01  # the estimate is precise enough to see a wrong term
assert abs(diff.mean()) < 4 * se, (diff.mean(), se)  # the two forms of the bound agree

# %% [markdown]
# ## 2. Each $L_{t-1}$ is a distance between means (eq. 8)
#
# The paper fixes the reverse variances, $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 I)$ with
# $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$ (notebook 05 compares the two). The KL between two isotropic Gaussians in
# $D$ dimensions is
#
# $$D_\mathrm{KL}\big(\mathcal{N}(\tilde\mu, \tilde\beta_t I)\,\|\,\mathcal{N}(\mu_\theta, \sigma_t^2 I)\big)
#   = \frac{1}{2\sigma_t^2}\lVert \tilde\mu - \mu_\theta \rVert^2
#   + \underbrace{\frac{D}{2}\Big(\frac{\tilde\beta_t}{\sigma_t^2} - 1 - \log\frac{\tilde\beta_t}{\sigma_t^2}\Big)}_{C_t,\ \text{no }\theta},$$
#
# so $L_{t-1} = \mathbb{E}_q\big[\tfrac{1}{2\sigma_t^2}\lVert \tilde\mu_t(x_t, x_0) - \mu_\theta(x_t, t)\rVert^2\big] + C_t$
# (eq. 8): train $\mu_\theta$ to predict the posterior mean. Checked against the package's `normal_kl` (summed over
# the $D = 64$ pixels of a digit) for random means, with the paper's schedule:

# %%
paper_schedule = make_schedule("linear", 1000)  # the paper's: beta from 1e-4 to 0.02, T = 1000
D = 64


def kl_eq8(mean_q, var_q, mean_p, var_p):
    """Eq. 8: the squared distance of the means over 2 sigma^2, plus the constant C_t."""
    r = var_q / var_p
    return jnp.sum((mean_q - mean_p) ** 2) / (2 * var_p) + D / 2 * (r - 1 - jnp.log(r))


k1, k2 = jax.random.split(jax.random.key(0))
t_check = jnp.array([1, 10, 100, 500, 999])
mean_q = jax.random.normal(k1, (len(t_check), D))
mean_p = mean_q + 0.1 * jax.random.normal(k2, (len(t_check), D))
var_q, var_p = paper_schedule.posterior_variance[t_check], paper_schedule.betas[t_check]  # sigma^2 = beta
kl_package = jax.vmap(lambda mq, vq, mp, vp: normal_kl(mq, jnp.log(vq), mp, jnp.log(vp)).sum())(mean_q, var_q, mean_p, var_p)
kl_ours = jax.vmap(kl_eq8)(mean_q, var_q, mean_p, var_p)
for t, a, b in zip(t_check + 1, kl_package, kl_ours):
    print(f"t = {int(t):4d}: KL {float(a):9.3f} nats (package's normal_kl), {float(b):9.3f} (eq. 8)")

# %%
np.testing.assert_allclose(kl_ours, kl_package, rtol=1e-4)

# %% [markdown]
# ## 3. Predicting the noise (eqs. 10–12), and the weight of each term
#
# Since $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, we can write $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$
# and put it into the posterior mean $\tilde\mu_t = c_1 x_0 + c_2 x_t$ of notebook 01. With $\bar\alpha_t = \alpha_t\bar\alpha_{t-1}$ and
# $\beta_t = 1 - \alpha_t$, the coefficient of $x_t$ collapses to $1/\sqrt{\alpha_t}$:
#
# $$\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon\Big). \qquad \text{(eq. 10)}$$
#
# The network sees $x_t$; only $\epsilon$ is unknown. So let it predict that (eq. 11):
# $\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta(x_t, t)\big)$.
# Then $\tilde\mu_t - \mu_\theta = \frac{\beta_t}{\sqrt{\alpha_t}\sqrt{1-\bar\alpha_t}}(\epsilon_\theta - \epsilon)$, and eq. 8 becomes
#
# $$L_{t-1} - C_t = \mathbb{E}_{x_0, \epsilon}\Big[\underbrace{\frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}}_{w_t}
#   \big\lVert \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big)\big\rVert^2\Big].
#   \qquad \text{(eq. 12)}$$
#
# The check goes through the package's own pipeline: the posterior from $x_0$ (`q_posterior_mean_variance`), the
# reverse step from a noise prediction (`p_mean_variance`, without clipping), their KL (`normal_kl`); minus $C_t$ it
# must equal $w_t \lVert \epsilon - \epsilon_\theta\rVert^2$ at every $t = 2, \dots, T$, for both choices of $\sigma_t^2$.
# The noise prediction is random here: eq. 12 holds for any $\epsilon_\theta$.

# %%
def weight(schedule, variance):
    """w_t of eq. 12 for every 0-indexed t (the paper's t + 1); sigma^2 = beta ("fixedlarge") or beta-tilde."""
    betas, alphas = schedule.betas, 1.0 - schedule.betas
    sigma2 = betas if variance == "fixedlarge" else schedule.posterior_variance
    return betas**2 / (2 * sigma2 * alphas * (1 - schedule.alphas_cumprod))


def kl_minus_c(schedule, x0, eps, eps_theta, t, variance):
    """L_{t-1} - C_t for one digit, through the package's posterior, reverse step and KL."""
    x_t = schedule.sqrt_alphas_cumprod[t] * x0 + schedule.sqrt_one_minus_alphas_cumprod[t] * eps
    mean_q, var_q, logvar_q = q_posterior_mean_variance(schedule, x0, x_t, t)
    mean_p, var_p, logvar_p = p_mean_variance(schedule, eps_theta, x_t, t, variance=variance, clip_x0=False)
    r = var_q / var_p
    return normal_kl(mean_q, logvar_q, mean_p, logvar_p).sum() - D / 2 * (r - 1 - jnp.log(r))


ts = jnp.arange(1, 1000)  # the paper's t = 2 .. T (t = 1 is the decoder L_0)
digits01 = to_model_range(jnp.asarray(load_digits("train")[:999]))  # (999, 8, 8, 1): one real digit per t
k1, k2 = jax.random.split(jax.random.key(1))
eps = jax.random.normal(k1, digits01.shape)
eps_theta = eps + 0.3 * jax.random.normal(k2, digits01.shape)  # an imperfect noise prediction
sq_err = jnp.sum((eps - eps_theta) ** 2, axis=(1, 2, 3))
eq12 = {}
for variance in ("fixedlarge", "fixedsmall"):
    lhs = jax.vmap(lambda x0, e, et, t: kl_minus_c(paper_schedule, x0, e, et, t, variance))(digits01, eps, eps_theta, ts)
    eq12[variance] = (lhs, weight(paper_schedule, variance)[ts] * sq_err)
    print(f"sigma^2 = {'beta' if variance == 'fixedlarge' else 'beta-tilde'}: largest relative difference "
          f"{float(jnp.max(jnp.abs(lhs / eq12[variance][1] - 1))):.1e}")

# %%
for variance, (lhs, rhs) in eq12.items():
    np.testing.assert_allclose(lhs, rhs, rtol=2e-3)

# %% [markdown]
# Here is $w_t$ over $t$ for the paper's schedule:

# %%
t_paper = np.arange(2, 1001)
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(t_paper, weight(paper_schedule, "fixedlarge")[1:], label=r"$\sigma_t^2 = \beta_t$")
ax.plot(t_paper, weight(paper_schedule, "fixedsmall")[1:], "--", label=r"$\sigma_t^2 = \tilde\beta_t$")
ax.axhline(1.0, color="gray", lw=0.8, label=r"$L_\mathrm{simple}$: 1 for every $t$")
ax.set(xlabel="t", ylabel=r"$w_t$", yscale="log",
       title=r"the weight of $\Vert\epsilon - \epsilon_\theta\Vert^2$ in the bound (eq. 12)")
ax.legend()
fig.tight_layout()
plt.show()
w_large = np.asarray(weight(paper_schedule, "fixedlarge"))
print(f"sigma^2 = beta: w_t is {w_large[1]:.3f} at t = 2, {w_large[1:].min():.4f} at its smallest "
      f"(t = {int(w_large[1:].argmin()) + 2}), {w_large[-1]:.4f} at t = T")

# %%
assert w_large[1] > 10 * w_large[-1]  # the bound puts far more weight on small t than on large t

# %% [markdown]
# ## 4. $L_\text{simple}$: drop the weight
#
# The paper's **simplified objective** (eq. 14) sets $w_t$ to 1 and draws $t$ uniformly:
#
# $$L_\text{simple}(\theta) = \mathbb{E}_{t, x_0, \epsilon}\Big[\big\lVert \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0
#   + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big) \big\rVert^2\Big], \qquad t \sim \mathcal{U}\{1, \dots, T\},\
#   \epsilon \sim \mathcal{N}(0, I).$$
#
# The bound weighs the first few $t$ tens of times more than the rest (the plot above); $L_\text{simple}$ weighs all
# alike, so, relative to the bound, it down-weights the small-$t$ terms, where the noise is slight and denoising is
# easy, and the network spends more of its capacity on the harder, noisier ones. The paper reports better samples
# from it than from the true bound (its Table 2). The $t = 1$ term stands in for the decoder
# $L_0$, and $L_T$ is dropped (it has no parameters). Training is then **Algorithm 1**:
#
# > **repeat**  $x_0 \sim q(x_0)$;  $t \sim \mathrm{Uniform}(\{1, \dots, T\})$;  $\epsilon \sim \mathcal{N}(0, I)$;
# > take a gradient step on $\nabla_\theta \lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon, t)\rVert^2$
# > **until** converged
#
# **Sum or mean over pixels?** Eq. 14 writes a squared norm, a *sum* over pixels. The official code *averages* over
# pixels (`nn.meanflat` in `diffusion_utils_2.py`) and then over the batch, and so do we: the same minimiser, the
# gradient scaled by $1/D$ (and Adam's steps barely depend on a constant scale of the gradient). Each example of a
# batch gets its own $t$ and $\epsilon$.
#
# The model is the `digits` preset of notebook 03: 8×8 grey digits from scikit-learn and a UNet of under a million
# parameters (in smoke mode, the tiny `smoke` preset). Here is the whole configuration the run depends on:

# %%
config = get_preset("smoke" if SMOKE else "digits")
if SMOKE:  # a few more steps than the preset's 20, so that the loss curve has something to show
    config = config.replace(train={"steps": 40, "log_every": 5, "sample_every": 40, "ckpt_every": 40})
tc, T = config.train, config.diffusion.num_timesteps
schedule = train.schedule_for(config)
images = load_digits("train")  # uint8 (1437, 8, 8, 1)
data = jnp.asarray(images)  # the whole dataset lives on the device; batches are drawn there
state0 = train.init_state(config, tc.seed)  # model, EMA copy, Adam state, step 0, PRNG key
print(config)
print(f"{len(images)} training digits {images.shape[1:]}, T = {T}")

# %%
assert images.dtype == np.uint8 and images.shape == (1437, 8, 8, 1)
assert int(state0.step) == 0

# %% [markdown]
# Lines 2–5 of Algorithm 1, for a batch, written inline. `t` is 0-indexed in code (see notebook 01), so
# `randint(0, T)` draws the paper's $t \in \{1, \dots, T\}$. Dropout needs a key per example.

# %%
def loss_inline(model, x0, key):
    """L_simple (eq. 14) for a batch x0 of shape (B, H, W, C) in [-1, 1], averaged over pixels and the batch."""
    B = x0.shape[0]
    k_t, k_eps, k_drop = jax.random.split(key, 3)
    t = jax.random.randint(k_t, (B,), 0, T)  # t ~ Uniform{1..T}
    eps = jax.random.normal(k_eps, x0.shape)  # eps ~ N(0, I)
    abar = schedule.alphas_cumprod[t][:, None, None, None]  # (B, 1, 1, 1)
    x_t = jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * eps  # eq. 4
    eps_pred = jax.vmap(lambda x, s, k: model(x, s, key=k))(x_t, t, jax.random.split(k_drop, B))
    return jnp.mean((eps - eps_pred) ** 2)


@eqx.filter_jit
def check_losses(model, x0, key):
    """Our loss, the package's, and the untrained model's noise prediction for four images."""
    eps_pred = jax.vmap(model)(x0[:4], jnp.arange(4))
    return loss_inline(model, x0, key), train.batch_loss(model, schedule, x0, key), eps_pred


x0 = to_model_range(data[:128])  # (128, 8, 8, 1) in [-1, 1]
loss_ours, loss_pkg, eps_at_init = check_losses(state0.model, x0, jax.random.key(1))
print(f"L_simple at initialisation: {float(loss_ours):.4f} (inline), {float(loss_pkg):.4f} (package)")

# %%
np.testing.assert_allclose(loss_ours, loss_pkg, rtol=1e-5)  # the same random t, eps and dropout keys
# The UNet's last convolution starts at (almost) zero (notebook 03), so eps_theta ~ 0 and the loss starts at
# E[eps^2] = 1.
assert float(jnp.abs(eps_at_init).max()) < 1e-3
assert abs(float(loss_ours) - 1.0) < 0.1  # 8192 squared normals: their mean is 1 +- 0.016

# %% [markdown]
# ## 5. What the network learns: the score
#
# Whatever the network, the function that minimises $\mathbb{E}\lVert \epsilon - \epsilon_\theta(x_t, t)\rVert^2$ is the
# conditional mean $\epsilon^*(x_t) = \mathbb{E}[\epsilon \mid x_t]$. That mean has a second meaning (the link to score
# matching in section 3.2 of the paper; Song & Ermon 2019). The marginal is $q(x_t) = \int q(x_t \mid x_0)\,q(x_0)\,dx_0$,
# so its gradient is an average of the Gaussians' gradients:
#
# $$\nabla_{x_t}\log q(x_t) = \mathbb{E}\big[\nabla_{x_t}\log q(x_t \mid x_0) \,\big|\, x_t\big]
#   = \mathbb{E}\Big[-\frac{x_t - \sqrt{\bar\alpha_t}\,x_0}{1-\bar\alpha_t} \,\Big|\, x_t\Big]
#   = -\frac{\mathbb{E}[\epsilon \mid x_t]}{\sqrt{1-\bar\alpha_t}},
#   \qquad\text{so}\qquad \epsilon^*(x_t) = -\sqrt{1-\bar\alpha_t}\;\nabla_{x_t}\log q(x_t).$$
#
# A network trained on $L_\text{simple}$ estimates the *score* of the noised data, scaled; notebook 05's sampler then
# reads like Langevin dynamics that follow it towards the data.
#
# Test it where the score is known in closed form: data that are two points, $x_0 = \pm 1$ with probability ½ each.
# Then $q(x_t)$ is a mixture of two Gaussians, $\tfrac12\mathcal{N}(-\sqrt{\bar\alpha_t}, 1-\bar\alpha_t) + \tfrac12\mathcal{N}(\sqrt{\bar\alpha_t}, 1-\bar\alpha_t)$,
# and `jax.grad` of its log-density gives the score. Independently, we draw a million pairs $(x_0, \epsilon)$, form
# $x_t$, sort them into 30 bins of $x_t$ and average $\epsilon$ in each bin: the least-squares answer. Both must agree
# within the Monte Carlo error at every bin, at three noise levels.

# %%
def eps_star(x, abar):
    """-sqrt(1 - abar) * d/dx log q(x), for the two-point data x_0 = +-1."""
    def log_q(x):
        a, var = jnp.sqrt(abar), 1.0 - abar
        return jax.scipy.special.logsumexp(jnp.stack([-(x - a) ** 2, -(x + a) ** 2]) / (2 * var))  # + a constant
    return -jnp.sqrt(1.0 - abar) * jax.vmap(jax.grad(log_q))(x)


rng = np.random.default_rng(2)
n_pairs, n_bins = 1_000_000, 30
score_check = {}
for abar in (0.9, 0.5, 0.1):
    x0_pts = rng.choice([-1.0, 1.0], n_pairs)
    noise = rng.standard_normal(n_pairs)
    x_t = np.sqrt(abar) * x0_pts + np.sqrt(1 - abar) * noise
    edges = np.quantile(x_t, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, x_t, side="right") - 1, 0, n_bins - 1)
    pred = np.asarray(eps_star(jnp.asarray(x_t, jnp.float32), abar), np.float64)
    count = np.bincount(which, minlength=n_bins)
    bin_eps = np.bincount(which, noise, n_bins) / count  # E[eps | x_t in bin], estimated
    bin_pred = np.bincount(which, pred, n_bins) / count  # E[eps*(x_t) | x_t in bin]: equal to it if eps* is right
    bin_x = np.bincount(which, x_t, n_bins) / count
    std_err = np.sqrt(np.bincount(which, (noise - pred) ** 2, n_bins) / count / count)  # of bin_eps - bin_pred
    score_check[abar] = (bin_x, bin_eps, bin_pred, std_err)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
for ax, (abar, (bin_x, bin_eps, bin_pred, _)) in zip(axes, score_check.items()):
    grid = jnp.linspace(bin_x[0], bin_x[-1], 200)
    ax.plot(grid, eps_star(grid, abar), label=r"$-\sqrt{1-\bar\alpha_t}\,\nabla\log q(x_t)$")
    ax.plot(bin_x, bin_eps, "o", ms=3, label=r"mean of $\epsilon$ per bin of $x_t$")
    ax.axvline(-np.sqrt(abar), color="gray", lw=0.6), ax.axvline(np.sqrt(abar), color="gray", lw=0.6)
    ax.set(xlabel=r"$x_t$", title=rf"$\bar\alpha_t$ = {abar}")
axes[0].set_ylabel(r"$\epsilon^*(x_t)$")
axes[2].legend(fontsize=8, loc="upper left")
fig.tight_layout()
plt.show()
for abar, (_, bin_eps, bin_pred, std_err) in score_check.items():
    print(f"abar = {abar}: largest |binned mean of eps - of eps*| {np.abs(bin_eps - bin_pred).max():.4f} "
          f"(a bin's Monte Carlo standard error: about {np.median(std_err):.4f})")

# %%
for abar, (_, bin_eps, bin_pred, std_err) in score_check.items():
    # Within 5 standard errors (90 bins in all: by chance, odds ~1e-5), + 0.002: where one data point is almost
    # certain, the other's rare draws (a few per bin, or none) make the estimated standard error itself unreliable.
    # A wrong scale or sign of eps* is off by 0.1 or more.
    assert np.all(np.abs(bin_eps - bin_pred) < 5 * std_err + 2e-3), abar

# %% [markdown]
# The grey lines mark the two (scaled) data points $\pm\sqrt{\bar\alpha_t}$. The best noise guess points from the
# likelier data point to $x_t$ (it is the noise that was most probably added), so subtracting it moves $x_t$ towards
# that point; where both are about equally likely (near 0, and everywhere when $\bar\alpha_t$ is small) it hedges. For real images
# nobody knows $q(x_t)$; the network learns it from samples.
#
# ## 6. One training step, one jitted function
#
# A step of Algorithm 1 draws a batch, computes $L_\text{simple}$ and its gradient, clips the gradient's global norm,
# applies Adam with a learning rate warmed up linearly from 0, and updates the EMA of the weights (next section).
# Warmup over 5000 steps and clipping at 1.0 are the defaults of the official CIFAR-10 script (`run_cifar.py`; the
# paper does not discuss them); the digits preset warms up over 200 steps. Here is the step written inline as one
# `eqx.filter_jit` function of a `TrainState` (weights, EMA, Adam's moments, step counter, PRNG key), so that it is
# a pure function; the next cell checks it against the package's `train.make_train_step`. Why one jitted function
# rather than several, and how much it saves, is measured in [appendix A1](A1_jax_speed.ipynb).

# %%
optimizer = optax.chain(
    optax.clip_by_global_norm(tc.grad_clip),  # rescale the whole gradient if its norm exceeds grad_clip
    optax.adam(lambda step: tc.lr * jnp.minimum(step / tc.warmup_steps, 1.0)),  # linear warmup, then constant
)


@eqx.filter_jit
def train_step_inline(data, state):
    key, k_batch, k_loss = jax.random.split(jax.random.wrap_key_data(state.key), 3)
    x0 = get_batch(k_batch, data, tc.batch_size, tc.random_flip)  # a batch, drawn on the device
    loss, grads = eqx.filter_value_and_grad(loss_inline)(state.model, x0, k_loss)
    updates, opt_state = optimizer.update(grads, state.opt_state, eqx.filter(state.model, eqx.is_inexact_array))
    model = eqx.apply_updates(state.model, updates)
    ema = train.ema_update(state.ema, model, tc.ema_decay)
    return train.TrainState(model, ema, opt_state, state.step + 1, jax.random.key_data(key)), loss


def copy_tree(tree):
    """A copy of every array in a pytree: the package's step donates (reuses the memory of) its input state."""
    return jax.tree_util.tree_map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, tree)


def max_abs_diff(a, b):
    """The largest difference between the floating-point leaves of two pytrees."""
    la = jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_inexact_array))
    lb = jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_inexact_array))
    assert len(la) == len(lb)
    return max(float(jnp.abs(x - y).max()) for x, y in zip(la, lb))


# the package's step, in float32 like ours (on a GPU or TPU it would otherwise compute in bfloat16)
train_step = train.make_train_step(config.replace(train={"compute_dtype": "float32"}))
ours, pkg = copy_tree(state0), copy_tree(state0)
n_check = 3  # the warmup makes step 1's learning rate 0: compare a few steps
losses_ours, losses_pkg = [], []
for _ in range(n_check):
    ours, loss = train_step_inline(data, ours)
    pkg, metrics = train_step(data, pkg)
    losses_ours.append(float(loss))
    losses_pkg.append(float(metrics["loss"]))
print(f"losses, inline: {np.round(losses_ours, 5)}; package: {np.round(losses_pkg, 5)}; "
      f"largest weight difference {max_abs_diff(ours.model, pkg.model):.1e}")
print(f"the package's step also reports: {sorted(metrics)}")

# %%
np.testing.assert_allclose(losses_ours, losses_pkg, rtol=1e-5)
assert max_abs_diff(ours.model, pkg.model) < 1e-5 and max_abs_diff(ours.ema, pkg.ema) < 1e-5
assert max_abs_diff(pkg.model, state0.model) > 1e-5  # the weights did move
assert int(pkg.step) == n_check and bool(jnp.array_equal(ours.key, pkg.key))

# %% [markdown]
# ## 7. The exponential moving average of the weights
#
# After every step the package updates a second copy of the weights,
#
# $$\bar\theta \leftarrow d\,\bar\theta + (1-d)\,\theta, \qquad \bar\theta_0 = \theta_0,$$
#
# and samples with $\bar\theta$. The paper does this for all its samples, with $d = 0.9999$ (its Appendix B); a run
# of a few thousand steps needs a shorter window (`ema_decay` in the config above). Unrolled, after $n$ steps,
#
# $$\bar\theta_n = d^{\,n}\,\theta_0 + (1-d)\sum_{k=1}^{n} d^{\,n-k}\,\theta_k,$$
#
# a weighted average of the recent weights with weights that sum to 1, over a window of about $1/(1-d)$ steps. With a
# constant learning rate the weights keep jittering around a good solution; the average sits closer to its middle.
# Section 9 measures what that does to the samples. First, the closed form against a few real steps:

# %%
d, n_ema = tc.ema_decay, 5
state = copy_tree(state0)
thetas = [copy_tree(eqx.filter(state.model, eqx.is_inexact_array))]  # theta_0 .. theta_n
for _ in range(n_ema):
    state, _ = train_step(data, state)
    thetas.append(copy_tree(eqx.filter(state.model, eqx.is_inexact_array)))

closed_form = jax.tree_util.tree_map(
    lambda *ths: d**n_ema * ths[0] + (1 - d) * sum(d ** (n_ema - k) * ths[k] for k in range(1, n_ema + 1)), *thetas)
print(f"after {n_ema} steps with d = {d}: |EMA - closed form| = {max_abs_diff(state.ema, closed_form):.2e}, "
      f"|EMA - weights| = {max_abs_diff(state.ema, state.model):.2e}")

# %%
assert max_abs_diff(state.ema, closed_form) < 1e-6
assert max_abs_diff(state.ema, state.model) > 1e-5  # the average lags behind the weights

# %% [markdown]
# ## 8. Training the digits model, live
#
# `train.fit` runs the loop for real. It puts `steps_per_call` steps into one jitted `jax.lax.scan` (so Python is
# visited once per chunk, not once per step; [appendix A1](A1_jax_speed.ipynb) checks it computes exactly what the
# single steps compute, and times both), shows a `tqdm` progress bar, and every `log_every` steps hands one row of
# metrics (mean loss, gradient norm, learning rate, images per second) to a callback `on_log(step, row)` (here: a
# live loss curve) and to a tracker. With a `run_dir` it also writes sample grids and checkpoints.
#
# **Weights & Biases.** `tracking.Tracker(run_dir, config)` appends every row to `run_dir/metrics.jsonl` and sends
# it to W&B: online when an API key is set (`WANDB_API_KEY`, or `wandb login`), **offline** otherwise (the run is
# kept in `run_dir/wandb/`; upload it later with `wandb sync`), and disabled with `WANDB_MODE=disabled`. It never
# prompts and never stops training. On Colab, store your key as a secret named `WANDB_API_KEY` (key icon in the
# left panel) and the next cell picks it up.

# %%
if "google.colab" in sys.modules and "WANDB_API_KEY" not in os.environ:
    try:
        from google.colab import userdata

        os.environ["WANDB_API_KEY"] = userdata.get("WANDB_API_KEY")
    except Exception:  # no such secret, or no access granted: W&B runs offline
        pass
wandb_mode = resolve_mode()  # the rule the Tracker follows
print("W&B key set:", bool(os.environ.get("WANDB_API_KEY")), "| WANDB_MODE:", os.environ.get("WANDB_MODE", "(unset)"),
      "| the tracker will run W&B:", wandb_mode)

# %% [markdown]
# The run goes to `runs/digits` (beside this notebook; notebooks 05 and 07 can sample from it). If it already holds
# a checkpoint, training **resumes** from it (and does nothing if it is finished): delete the folder to train again
# from scratch. In smoke mode it goes to a temporary folder.

# %%
RUN_DIR = Path(tempfile.mkdtemp()) / "smoke" if SMOKE else Path("runs") / "digits"
if checkpoint.latest(RUN_DIR) is not None:
    state, _ = checkpoint.restore(RUN_DIR, config)
    print(f"resuming {RUN_DIR} at step {int(state.step)} of {tc.steps}")
else:
    state = copy_tree(state0)
    print(f"training from scratch into {RUN_DIR}: {tc.steps} steps of batch {tc.batch_size}")

# %%
fig, ax = plt.subplots(figsize=(7, 3))
(curve,) = ax.plot([], [], ".-")
ax.set(xlabel="step", ylabel=r"$L_\mathrm{simple}$ (mean over log interval)", yscale="log",
       title=f"{config.name}: training loss")
handle = display(fig, display_id=True)  # a figure we redraw in place at every log
live_rows = []


def on_log(step, row):
    live_rows.append(row)
    curve.set_data([r["step"] for r in live_rows], [r["loss"] for r in live_rows])
    ax.relim()
    ax.autoscale_view()
    if handle is not None:
        handle.update(fig)


start = time.perf_counter()
with Tracker(RUN_DIR, config.to_dict(), name=f"04-{config.name}") as tracker:
    state, history = train.fit(config, data, state=state, run_dir=RUN_DIR, tracker=tracker, on_log=on_log)
    tracker_mode = tracker.mode
plt.close(fig)  # already shown above
print(f"{len(history)} log rows in {time.perf_counter() - start:.0f} s on {BACKEND}; W&B mode: {tracker_mode}")

# %%
assert int(state.step) == tc.steps
assert checkpoint.latest(RUN_DIR) is not None and (RUN_DIR / "config.json").exists()
assert live_rows == history  # on_log saw every row fit returned

# %% [markdown]
# What the tracker wrote: one JSON line per log row in `metrics.jsonl` (the run's numbers never depend on W&B),
# and, unless W&B is disabled, W&B's own files under `wandb/`.

# %%
for path in sorted(RUN_DIR.iterdir()):
    print(f"{path.name}{'/' if path.is_dir() else ''}")
rows = read_metrics(RUN_DIR)
print(*(RUN_DIR / "metrics.jsonl").read_text().splitlines()[:2], sep="\n")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
axes[0].plot([r["step"] for r in rows], [r["loss"] for r in rows], ".-")
axes[0].set(xlabel="step", ylabel=r"$L_\mathrm{simple}$", yscale="log", title="loss (from metrics.jsonl)")
axes[1].plot([r["step"] for r in rows], [r["lr"] for r in rows])
axes[1].set(xlabel="step", title="learning rate: linear warmup, then constant")
fig.tight_layout()
plt.show()

# %%
if history:  # (empty when a finished run was resumed)
    assert rows[-len(history):] == history  # metrics.jsonl holds exactly what fit logged
np.testing.assert_allclose(rows[-1]["lr"], tc.lr, rtol=1e-6)  # warmup is over

# %% [markdown]
# ### How good is the trained network? Its loss on digits it never saw, $t$ by $t$
#
# A training loss that falls says little: what should it fall *to*? A fair yardstick is the best **linear**
# denoiser, one that knows only the mean $\mu$ and covariance $\Sigma$ of the training digits. If the data were
# Gaussian it would be optimal: $\hat\epsilon(x_t) = \sqrt{1-\bar\alpha_t}\,(\bar\alpha_t\Sigma + (1-\bar\alpha_t) I)^{-1}
# (x_t - \sqrt{\bar\alpha_t}\,\mu)$. A network that has learned something about digits beyond their mean and covariance
# beats it. We score both, and the model the course ships (`pretrained.load("digits")`, the same preset trained to
# the end), on the 360 test digits, each noised at the same 20 values of $t$ (spread evenly) with the same noise.

# %%
test01 = to_model_range(jnp.asarray(load_digits("test")))  # (360, 8, 8, 1), never trained on
shipped_config, shipped_model = pretrained.load("digits")
shipped_model = eqx.nn.inference_mode(shipped_model)
flat_train = np.asarray(to_model_range(data), np.float64).reshape(len(data), -1)
mu, cov = flat_train.mean(0), np.cov(flat_train, rowvar=False)


@eqx.filter_jit
def net_error(model, x_t, t, noise):
    return jnp.mean((jax.vmap(model, in_axes=(0, None))(x_t, t) - noise) ** 2)


def per_t_losses(model, schedule, n_t=20, key=jax.random.key(4)):
    """Held-out L_simple of `model` and of the linear denoiser at n_t values of t spread over 0 .. T-1."""
    T_ = schedule.num_timesteps
    ts_ = ((np.arange(n_t) + 0.5) * T_ / n_t).astype(int)  # the midpoints of n_t equal slices of 0 .. T-1
    noise = jax.random.normal(key, (n_t,) + test01.shape)
    net, lin = [], []
    for t, e in zip(ts_, noise):
        abar = float(schedule.alphas_cumprod[t])
        x_t = np.sqrt(abar) * test01 + np.sqrt(1 - abar) * e
        net.append(float(net_error(model, x_t, jnp.asarray(t), e)))
        flat = np.asarray(x_t, np.float64).reshape(len(x_t), -1)
        lin_pred = np.sqrt(1 - abar) * np.linalg.solve(abar * cov + (1 - abar) * np.eye(len(mu)),
                                                       (flat - np.sqrt(abar) * mu).T).T
        lin.append(float(np.mean((lin_pred - np.asarray(e, np.float64).reshape(len(x_t), -1)) ** 2)))
    return ts_, np.array(net), np.array(lin)


curves = {"your model (EMA)": per_t_losses(eqx.nn.inference_mode(state.ema), schedule),
          "shipped model": per_t_losses(shipped_model, train.schedule_for(shipped_config))}
fig, ax = plt.subplots(figsize=(7, 3.4))
for i, (name, (ts_, net, lin)) in enumerate(curves.items()):
    T_ = ts_[-1] + 1
    ax.plot((ts_ + 1) / T_, net, "o-", ms=3, color=f"C{i}", label=f"{name}: mean {net.mean():.3f}")
    ax.plot((ts_ + 1) / T_, lin, ":", color=f"C{i}", label=f"linear denoiser, T = {T_}: mean {lin.mean():.3f}")
ax.set(xlabel="t / T", ylabel=r"held-out $\Vert\epsilon - \hat\epsilon\Vert^2$ per pixel", yscale="log",
       title="noise-prediction error on the test digits")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
ts_, net, lin = curves["shipped model"]
assert net.mean() < 0.9 * lin.mean(), (net.mean(), lin.mean())  # a trained UNet beats the best linear denoiser
if not SMOKE:  # so does yours, after the full run
    ts_, net, lin = curves["your model (EMA)"]
    assert net.mean() < 0.9 * lin.mean(), (net.mean(), lin.mean())

# %% [markdown]
# Both errors are largest at small $t$, where the noise is faint and hard to tell apart from the digit's own strokes,
# and shrink at large $t$, where $x_t$ is almost pure noise and predicting $\epsilon$ means little more than returning
# $x_t$: there the linear denoiser is nearly exact, and a network only approaches it. Where the mean over $t$ is won
# is the small and middle $t$: knowing what digits look like pays. (In smoke mode "your model" is a tiny one after a
# few dozen steps, with its own $T = 50$.)

# %% [markdown]
# ## 9. Samples, with and without the EMA
#
# Notebook 05 derives the sampler; here we use it as a black box (`sample.sample_images`, the paper's Algorithm 2
# with all $T$ steps). Both grids start from the **same** noise and draw the same random numbers, so any difference
# comes from the weights alone: the last iterate $\theta$ on the left, its moving average $\bar\theta$ on the right.

# %%
num = 64
key = jax.random.key(3)
raw_samples = sample.sample_images(config, state.model, key, num)
ema_samples = sample.sample_images(config, state.ema, key, num)
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, imgs, title in ((axes[0], raw_samples, r"last weights $\theta$"), (axes[1], ema_samples, r"EMA $\bar\theta$")):
    ax.imshow(image_grid(imgs)[..., 0], cmap="gray", vmin=0, vmax=255)
    ax.set(title=f"{title}, step {int(state.step)}")
    ax.axis("off")
plt.show()

# %% [markdown]
# The model never saw these images: they are 8×8 digits drawn from noise. How good are they? Eight small
# classifiers trained on real digits judge them (`nanoddpm_utils.evaluate`, notebook 07 explains them): how
# confidently they recognise each sample, whether all ten digits appear (coverage, in nats: $\log 10 \approx 2.30$ is
# all ten equally often) and the Fréchet distance between the classifiers' features of samples and of real digits
# (lower is better), next to real digits the classifiers never saw (the best one can hope for) and uniform noise.
# A Fréchet distance shrinks as the number of images grows, so every row is scored on sets of the same size.
#
# To judge many samples quickly we draw them with DDIM, 50 steps instead of $T$ (notebook 07: the same model, about
# the same quality, 20× fewer network calls), for the last weights, the EMA, and the shipped model.

# %%
n_score = 64 if SMOKE else 360
score_key = jax.random.key(6)
scored = {
    "last weights": (config, state.model),
    "EMA": (config, state.ema),
    "shipped model": (shipped_config, shipped_model),
}
tables = {name: digits_quality_table(to_uint8(sample.sample_images(cfg, m, score_key, n_score, sampler="ddim")))
          for name, (cfg, m) in scored.items()}
for name, table in tables.items():
    print(f"--- {name}\n{format_table(table)}")
frechet = {name: table["samples"]["frechet"] for name, table in tables.items()}
floor = tables["EMA"]["real (held out)"]["frechet"]
print(f"Frechet distance to real digits ({n_score} images): " + ", ".join(f"{k} {v:.2f}" for k, v in frechet.items())
      + f"; real digits {floor:.2f}")

# %%
shipped = tables["shipped model"]["samples"]
assert shipped["frechet"] < 2.0 * floor and shipped["classes_present"] >= 9  # the shipped model draws digits
if not SMOKE:
    assert frechet["EMA"] < 0.5 * frechet["last weights"]  # the EMA is what makes the samples
    assert frechet["EMA"] < 2.0 * frechet["shipped model"]  # your run is as good as the shipped one, within noise

# %% [markdown]
# With this preset's learning rate the last weights still jitter from step to step, and their samples show it: the
# EMA's Fréchet distance is several times lower. Your run and the shipped model are the same preset trained the same
# way, so their scores differ only by the luck of the draw. (In smoke mode your model is a tiny one trained for a
# few dozen steps: its samples are noise.)
#
# ## Summary
#
# - The variational bound (eq. 3) is a sum of KL divergences (eq. 5); with fixed variances each $L_{t-1}$ is a
#   squared distance between the posterior mean and the model's mean (eq. 8); with the $\epsilon$-parameterisation,
#   a weighted squared error between true and predicted noise (eq. 12), weight
#   $w_t = \beta_t^2 / (2\sigma_t^2\alpha_t(1-\bar\alpha_t))$.
# - $L_\text{simple}$ (eq. 14) drops $w_t$, which down-weights small $t$; we, like the official code, average the
#   error over pixels. Algorithm 1 is "noise a batch, regress the noise".
# - The best noise prediction is a scaled score: $\epsilon^* = -\sqrt{1-\bar\alpha_t}\,\nabla\log q(x_t)$.
# - The whole step (batch, loss, gradient, clipping, Adam, EMA) is one jitted pure function of a `TrainState`.
# - The EMA $\bar\theta_n = d^n\theta_0 + (1-d)\sum_k d^{n-k}\theta_k$ averages the recent weights, and with it the
#   samples become digits.
#
# ## Exercises
#
# 1. **Train on the true bound's weights.** Write a loss that multiplies each example's error by $w_t$ (section 3,
#    normalised so that its mean over $t$ is 1) and train the digits preset with it (copy `train_step_inline`).
#    Compare the held-out curves of section 8 and the samples' scores with $L_\text{simple}$'s. Which $t$ got better,
#    which worse? (The paper's Table 2 reports what it found on CIFAR-10.)
# 2. **The score of a Gaussian.** For data $x_0 \sim \mathcal{N}(m, v)$ in one dimension, $q(x_t)$ is Gaussian too. Write
#    $\epsilon^*(x_t)$ in closed form in the cell below and check it against the score computed by `jax.grad`.
# 3. **How much EMA?** Train with a loop over `train_step` (section 6) that also keeps three extra EMAs, with decays
#    0.99, 0.995 and 0.999 (`train.ema_update` on each after every step), and score their samples as in section 9.
#    Which window suits a 3000-step run, and why does too long a window hurt?

# %%
def eps_star_gaussian(x, abar, m, v):
    """Exercise 2: the best noise prediction for data x_0 ~ N(m, v). Replace None with your formula."""
    return None


x_grid, m_ex, v_ex = jnp.linspace(-3, 3, 7), 0.5, 0.3
for abar_ex in (0.9, 0.5, 0.1):
    mine = eps_star_gaussian(x_grid, abar_ex, m_ex, v_ex)
    if mine is None:
        print("exercise 2: not attempted yet")
        break
    mean_t, var_t = jnp.sqrt(abar_ex) * m_ex, abar_ex * v_ex + 1 - abar_ex  # q(x_t) = N(mean_t, var_t)
    score = jax.vmap(jax.grad(lambda x: -(x - mean_t) ** 2 / (2 * var_t)))(x_grid)
    np.testing.assert_allclose(mine, -jnp.sqrt(1 - abar_ex) * score, rtol=1e-5, atol=1e-6)
else:
    print("exercise 2: correct")

# %% [markdown]
# ## Go further
#
# - The paper: section 3.2 (the reverse process and its link to Langevin dynamics and score matching), section 3.4
#   and Table 2 (the bound against $L_\text{simple}$), Appendix A (the bound derived in full), Appendix B (the
#   training details, the EMA among them).
# - Score matching: Vincent (2011), *A connection between score matching and denoising autoencoders*; Song & Ermon
#   (2019), *Generative modeling by estimating gradients of the data distribution*.
# - Learning $\sigma_t^2$ too, with a hybrid loss: Nichol & Dhariwal (2021), *Improved DDPM*.
# - Loss weights as a function of the signal-to-noise ratio: Kingma et al. (2021), *Variational diffusion models*;
#   Karras et al. (2022), *Elucidating the design space of diffusion-based generative models* (EDM).
# - Lilian Weng, *What are diffusion models?* (2021): the same chain of derivations, with more steps written out.
# - How the training loop is made fast (one jit, `lax.scan`, convolutions on a CPU): [appendix A1](A1_jax_speed.ipynb).
#
# We sampled with `sample.sample_images` as a black box. Next, we derive it.
#
# **Next:** [05 — The reverse process: sampling](05_reverse_sampler.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/05_reverse_sampler.ipynb)
