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
# **What you will learn:** the variational bound (the paper's eq. 3) as a sum of KL divergences (eq. 5); each term
# as a weighted squared error on the predicted noise (eqs. 8–12); $L_\text{simple}$ (eq. 14) and Algorithm 1; why the
# predicted noise is a scaled *score*; the training step as one jitted function, and the exponential moving average
# (EMA) of the weights; a training run you watch live, and samples beside those of the model the course ships.
# Every derivation is followed by a cell that checks it: change a sign or a factor in the code and the check fails.

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
import optax
from IPython.display import display

from nanoddpm_utils import pretrained, sample, train
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import get_batch, load_digits
from nanoddpm_utils.diffusion import normal_kl, p_mean_variance, q_posterior_mean_variance
from nanoddpm_utils.evaluate import digits_quality_table
from nanoddpm_utils.images import image_grid, to_model_range, to_uint8
from nanoddpm_utils.schedule import make_schedule
from nanoddpm_utils.state import TrainState, init_state

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
BACKEND = jax.default_backend()
print(f"jax {jax.__version__} on {BACKEND} ({jax.devices()[0].device_kind}); smoke mode: {SMOKE}")

# %% [markdown]
# ## 1. The variational bound (eqs. 3 → 5)
#
# The model is the reverse chain $p_\theta(x_{0:T}) = p(x_T)\prod_{t=1}^{T} p_\theta(x_{t-1} \mid x_t)$ with
# $p(x_T) = \mathcal{N}(0, I)$. Its likelihood is intractable, but the forward process $q(x_{1:T} \mid x_0)$ of
# notebook 01 gives a bound (Jensen's inequality on $\log \mathbb{E}_q[p_\theta(x_{0:T}) / q(x_{1:T} \mid x_0)]$):
#
# $$-\log p_\theta(x_0) \le \mathbb{E}_q\Big[-\log p(x_T) - \sum_{t \ge 1} \log \frac{p_\theta(x_{t-1} \mid x_t)}{q(x_t \mid x_{t-1})}\Big]
#   =: L. \qquad \text{(eq. 3)}$$
#
# Three steps turn it into KL divergences between distributions we know. (1) The forward chain is Markov, so
# $q(x_t \mid x_{t-1}) = q(x_t \mid x_{t-1}, x_0)$, and Bayes' rule turns it around:
# $q(x_t \mid x_{t-1}, x_0) = q(x_{t-1} \mid x_t, x_0)\, q(x_t \mid x_0) / q(x_{t-1} \mid x_0)$, for $t \ge 2$. (2) In the sum
# over $t = 2, \dots, T$ the ratios $q(x_t \mid x_0)/q(x_{t-1} \mid x_0)$ telescope to $q(x_T \mid x_0)/q(x_1 \mid x_0)$, and
# the $q(x_1 \mid x_0)$ cancels the $t = 1$ term's. (3) Grouped by variable, each expectation is a KL divergence:
#
# $$L = \mathbb{E}_q\Big[\underbrace{D_\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T}
#   + \sum_{t=2}^{T} \underbrace{D_\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}}
#   \underbrace{-\log p_\theta(x_0 \mid x_1)}_{L_0}\Big]. \qquad \text{(eq. 5)}$$
#
# $L_T$ has no parameters; each $L_{t-1}$ compares one reverse step with the posterior $q(x_{t-1} \mid x_t, x_0) =
# \mathcal{N}(\tilde\mu_t, \tilde\beta_t I)$ of notebook 01; $L_0$ is the decoder (notebook 07). Eqs. 3 and 5 are one number
# computed two ways: from log-densities along sampled forward chains, and mostly from closed-form KLs (the package's
# `normal_kl`). A test in one dimension on 400,000 chains: $T = 10$, one data point $x_0 = 0.8$, and an imperfect
# reverse model (the posterior mean with $x_0$ guessed as $\tanh(x_t)$, $\sigma_t^2 = \beta_t$).

# %%
T_toy, x0_toy, n_chains = 10, 0.8, 400_000
betas_toy = np.linspace(0.05, 0.5, T_toy)  # index i is the paper's step t = i + 1
alphas_toy, abar_toy = 1.0 - betas_toy, np.cumprod(1.0 - betas_toy)
abar_prev_toy = np.concatenate([[1.0], abar_toy[:-1]])


def toy_posterior(x_t, x0, i):
    """q(x_{t-1} | x_t, x_0) for step i (notebook 01): mean and variance."""
    c1 = np.sqrt(abar_prev_toy[i]) * betas_toy[i] / (1 - abar_toy[i])
    c2 = np.sqrt(alphas_toy[i]) * (1 - abar_prev_toy[i]) / (1 - abar_toy[i])
    return c1 * x0 + c2 * x_t, betas_toy[i] * (1 - abar_prev_toy[i]) / (1 - abar_toy[i])


def toy_model_mean(x_t, i):  # the imperfect reverse model: the posterior mean, with x_0 guessed as tanh(x_t)
    return toy_posterior(x_t, np.tanh(x_t), i)[0]


def log_normal(x, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def kl(m1, v1, m2, v2):  # the package's KL between N(m1, v1) and N(m2, v2), in float32
    return np.asarray(normal_kl(m1, np.log(v1), m2, np.log(v2)), np.float64)


rng = np.random.default_rng(0)
xs = [np.full(n_chains, x0_toy)]  # x_0, x_1, ..., x_T along each forward chain
for i in range(T_toy):
    xs.append(np.sqrt(alphas_toy[i]) * xs[-1] + np.sqrt(betas_toy[i]) * rng.standard_normal(n_chains))
eq3 = -log_normal(xs[T_toy], 0.0, 1.0)  # eq. 3, chain by chain
for i in range(T_toy):
    eq3 -= log_normal(xs[i], toy_model_mean(xs[i + 1], i), betas_toy[i]) \
        - log_normal(xs[i + 1], np.sqrt(alphas_toy[i]) * xs[i], betas_toy[i])
eq5 = kl(np.sqrt(abar_toy[-1]) * x0_toy, 1 - abar_toy[-1], 0.0, 1.0)  # eq. 5: L_T ...
for i in range(1, T_toy):
    eq5 = eq5 + kl(*toy_posterior(xs[i + 1], x0_toy, i), toy_model_mean(xs[i + 1], i), betas_toy[i])  # ... L_{t-1}
eq5 -= log_normal(x0_toy, toy_model_mean(xs[1], 0), betas_toy[0])  # ... and L_0
diff = eq3 - eq5
se = diff.std() / np.sqrt(n_chains)
print(f"eq. 3: {eq3.mean():.4f} nats, eq. 5: {eq5.mean():.4f} nats, difference {diff.mean():+.4f} "
      f"(standard error {se:.4f})")

# %%
assert se < 0.01  # the estimate is precise enough to see a wrong term
assert abs(diff.mean()) < 4 * se, (diff.mean(), se)  # the two forms of the bound agree

# %% [markdown]
# ## 2. Each $L_{t-1}$ is a weighted error on the noise (eqs. 8–12)
#
# The paper fixes the reverse variances, $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 I)$ with
# $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$ (notebook 05 compares the two). The KL between two isotropic Gaussians in
# $D$ dimensions is a squared distance between their means plus a constant:
#
# $$L_{t-1} = \mathbb{E}_q\Big[\frac{1}{2\sigma_t^2}\lVert \tilde\mu_t(x_t, x_0) - \mu_\theta(x_t, t)\rVert^2\Big]
#   + \underbrace{\frac{D}{2}\Big(\frac{\tilde\beta_t}{\sigma_t^2} - 1 - \log\frac{\tilde\beta_t}{\sigma_t^2}\Big)}_{C_t,\ \text{no }\theta}.
#   \qquad \text{(eq. 8)}$$
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
# The check goes through the package's pipeline (`q_posterior_mean_variance`, `p_mean_variance`, `normal_kl` summed
# over a digit's $D = 64$ pixels): minus $C_t$, the KL must equal $w_t \lVert \epsilon - \epsilon_\theta\rVert^2$ at every
# $t = 2, \dots, T$, for $\sigma_t^2 = \beta_t$ ("fixedlarge") and $\tilde\beta_t$ ("fixedsmall"), for any $\epsilon_\theta$.

# %%
paper_schedule, D = make_schedule("linear", 1000), 64  # the paper's schedule (beta from 1e-4 to 0.02); 8x8 pixels


def weight(schedule, variance):
    """w_t of eq. 12 for every 0-indexed t (the paper's t + 1); sigma^2 = beta ("fixedlarge") or beta-tilde."""
    betas, alphas = schedule.betas, 1.0 - schedule.betas
    sigma2 = betas if variance == "fixedlarge" else schedule.posterior_variance
    return betas**2 / (2 * sigma2 * alphas * (1 - schedule.alphas_cumprod))


def kl_minus_c(schedule, x0, eps, eps_theta, t, variance):
    """L_{t-1} - C_t (eq. 8) for one digit, through the package's posterior, reverse step and KL."""
    x_t = schedule.sqrt_alphas_cumprod[t] * x0 + schedule.sqrt_one_minus_alphas_cumprod[t] * eps
    mean_q, var_q, logvar_q = q_posterior_mean_variance(schedule, x0, x_t, t)
    mean_p, var_p, logvar_p = p_mean_variance(schedule, eps_theta, x_t, t, variance=variance, clip_x0=False)
    r = var_q / var_p
    return normal_kl(mean_q, logvar_q, mean_p, logvar_p).sum() - D / 2 * (r - 1 - jnp.log(r))


ts = jnp.arange(1, 1000)  # the paper's t = 2 .. T (t = 1 is the decoder L_0)
digits01 = to_model_range(jnp.asarray(load_digits("train")[:999]))  # (999, 8, 8, 1): one real digit per t
eps, eps_err = jax.random.normal(jax.random.key(1), (2,) + digits01.shape)
eps_theta = eps + 0.3 * eps_err  # an imperfect noise prediction
sq_err = jnp.sum((eps - eps_theta) ** 2, axis=(1, 2, 3))
eq12 = {}
for variance in ("fixedlarge", "fixedsmall"):
    lhs = jax.vmap(lambda x0, e, et, t: kl_minus_c(paper_schedule, x0, e, et, t, variance))(digits01, eps, eps_theta, ts)
    eq12[variance] = (lhs, weight(paper_schedule, variance)[ts] * sq_err)
    print(f"{variance}: largest relative difference {float(jnp.max(jnp.abs(lhs / eq12[variance][1] - 1))):.1e}")

w_rel = np.asarray(weight(paper_schedule, "fixedlarge"))[1:]
w_rel = w_rel / w_rel.mean()  # only the shape matters for training: the weight relative to its mean over t
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(np.arange(2, 1001), w_rel, label=r"$w_t$ / (its mean over $t$), $\sigma_t^2 = \beta_t$")
ax.axhline(1.0, color="gray", lw=0.8, label=r"$L_\mathrm{simple}$ (section 3): the same weight for every $t$")
ax.set(xlabel="t", yscale="log", title=r"the relative weight of $\Vert\epsilon - \epsilon_\theta\Vert^2$ in the bound (eq. 12)")
ax.legend()
plt.show()

# %%
for variance, (lhs, rhs) in eq12.items():
    np.testing.assert_allclose(lhs, rhs, rtol=2e-3)
assert w_rel[0] > 10 * np.median(w_rel)  # the bound weighs the first steps tens of times more than a typical t

# %% [markdown]
# ## 3. $L_\text{simple}$: drop the weight
#
# The paper's **simplified objective** (eq. 14) sets $w_t$ to 1 and draws $t$ uniformly:
#
# $$L_\text{simple}(\theta) = \mathbb{E}_{t, x_0, \epsilon}\Big[\big\lVert \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0
#   + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big) \big\rVert^2\Big], \qquad t \sim \mathcal{U}\{1, \dots, T\},\
#   \epsilon \sim \mathcal{N}(0, I).$$
#
# Relative to the bound, it down-weights the first steps. There $x_t$ is almost $x_0$: an error in the predicted noise
# moves the implied clean image $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta)/\sqrt{\bar\alpha_t}$ very little
# (it is scaled by $\sqrt{1-\bar\alpha_t}/\sqrt{\bar\alpha_t}$, about 0.01 at $t = 1$): in $x_0$-space denoising is easy
# there, though in $\epsilon$-space it is the hardest (the noise is faint beside the digit's own strokes). The network
# spends its capacity on the noisier steps instead; the paper reports better samples so (its Table 2). The $t = 1$
# term stands in for the decoder $L_0$; $L_T$ is dropped (no parameters). Training is then **Algorithm 1**:
#
# > **repeat**  $x_0 \sim q(x_0)$;  $t \sim \mathrm{Uniform}(\{1, \dots, T\})$;  $\epsilon \sim \mathcal{N}(0, I)$;
# > take a gradient step on $\nabla_\theta \lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon, t)\rVert^2$
# > **until** converged
#
# Eq. 14 writes a squared norm, a *sum* over pixels; the official code *averages* over pixels (`nn.meanflat`) and
# the batch, and so do we: the same minimiser, the gradient scaled by $1/D$. The model is the `digits` preset of
# notebook 03 (in smoke mode, the tiny `smoke` preset); here is the whole configuration the run depends on:

# %%
config = get_preset("smoke" if SMOKE else "digits")
if SMOKE:  # a few more steps than the preset's 20, so that the loss curve has something to show
    config = config.replace(train={"steps": 40, "log_every": 5})
tc, T = config.train, config.diffusion.num_timesteps
schedule = train.schedule_for(config)
images = load_digits("train")  # uint8 (1437, 8, 8, 1)
data = jnp.asarray(images)  # on the device; batches are drawn there
state0 = init_state(config, tc.seed)  # model, EMA copy, Adam state, step 0, PRNG key
print(config, f"\n{len(images)} training digits {images.shape[1:]}, T = {T}")

# %% [markdown]
# %%
def loss_inline(model, x0, key):
    """Lines 2-5 of Algorithm 1: L_simple (eq. 14) for a batch x0 (B, H, W, C) in [-1, 1], each example with its own
    t and eps, averaged over pixels and the batch. t is 0-indexed (notebook 01): randint(0, T) is the paper's 1..T."""
    B = x0.shape[0]
    k_t, k_eps, k_drop = jax.random.split(key, 3)
    t = jax.random.randint(k_t, (B,), 0, T)  # t ~ Uniform{1..T}
    eps = jax.random.normal(k_eps, x0.shape)  # eps ~ N(0, I)
    abar = schedule.alphas_cumprod[t][:, None, None, None]  # (B, 1, 1, 1)
    x_t = jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * eps  # eq. 4
    eps_pred = jax.vmap(lambda x, s, k: model(x, s, key=k))(x_t, t, jax.random.split(k_drop, B))
    return jnp.mean((eps - eps_pred) ** 2)


x0 = to_model_range(data[:128])  # (128, 8, 8, 1) in [-1, 1]
shipped_config, shipped_model = pretrained.load("digits")  # the course's trained model (section 7), eps_theta != 0
losses = {name: [float(eqx.filter_jit(f)(m, *args, x0, jax.random.key(1))) for f, args in
                 ((loss_inline, ()), (train.batch_loss, (schedule,)))]  # the same random t, eps and dropout keys
          for name, m in (("untrained", state0.model), ("shipped", shipped_model))}
print("L_simple (inline, package):", losses)

# %%
for inline, package in losses.values():
    np.testing.assert_allclose(inline, package, rtol=1e-5)
assert abs(losses["untrained"][0] - 1.0) < 0.1  # last conv starts at 0 (notebook 03): eps_theta ~ 0, E[eps^2] = 1

# %% [markdown]
# ## 4. What the network learns: the score
#
# The function that minimises $\mathbb{E}\lVert \epsilon - \epsilon_\theta(x_t, t)\rVert^2$ is the conditional mean
# $\epsilon^*(x_t) = \mathbb{E}[\epsilon \mid x_t]$. Since $q(x_t) = \int q(x_t \mid x_0)\,q(x_0)\,dx_0$, its gradient is an
# average of the Gaussians' gradients (the paper's section 3.2; Song & Ermon 2019):
#
# $$\nabla_{x_t}\log q(x_t) = \mathbb{E}\Big[-\frac{x_t - \sqrt{\bar\alpha_t}\,x_0}{1-\bar\alpha_t} \,\Big|\, x_t\Big]
#   = -\frac{\mathbb{E}[\epsilon \mid x_t]}{\sqrt{1-\bar\alpha_t}}
#   \qquad\text{so}\qquad \epsilon^*(x_t) = -\sqrt{1-\bar\alpha_t}\;\nabla_{x_t}\log q(x_t).$$
#
# A network trained on $L_\text{simple}$ estimates the *score* of the noised data, scaled: the field of arrows that
# notebook [00](00_diffusion_in_2d.ipynb) drew in two dimensions, here in 64, where nobody knows $q(x_t)$ and the
# network learns it from samples. Check the identity where both sides are known: for data $x_0 \sim \mathcal{N}(m, v)$,
# $x_t$ and $\epsilon$ are jointly Gaussian, so (with $a = \sqrt{\bar\alpha_t}$, $b = \sqrt{1-\bar\alpha_t}$) regression gives
# $\mathbb{E}[\epsilon \mid x_t] = b\,(x_t - a m)/(a^2 v + b^2)$; `jax.grad` differentiates $\log q(x_t)$, with
# $q(x_t) = \mathcal{N}(a m, a^2 v + b^2)$.

# %%
m_g, v_g, x_g = 0.5, 0.3, jnp.linspace(-3, 3, 13)  # data x_0 ~ N(m_g, v_g), a grid of x_t
score_gap = []
for abar in (0.9, 0.5, 0.1):
    a, b = jnp.sqrt(abar), jnp.sqrt(1 - abar)
    eps_regression = b * (x_g - a * m_g) / (a**2 * v_g + b**2)
    score = jax.vmap(jax.grad(lambda x: jax.scipy.stats.norm.logpdf(x, a * m_g, jnp.sqrt(a**2 * v_g + b**2))))(x_g)
    score_gap.append(float(jnp.abs(eps_regression + b * score).max()))
print("largest |E[eps | x_t] + sqrt(1 - abar) * score| at abar = 0.9, 0.5, 0.1:", np.round(score_gap, 7))

# %%
assert max(score_gap) < 1e-5  # eps* = -sqrt(1 - abar) * score

# %% [markdown]
# ## 5. One training step, and the moving average of the weights
#
# A step draws a batch, computes $L_\text{simple}$ and its gradient, clips the gradient's norm, applies Adam with a
# learning rate warmed up linearly from 0 (as the official CIFAR-10 script does), and updates a second copy of the
# weights, their exponential moving average (EMA) $\bar\theta \leftarrow d\,\bar\theta + (1-d)\,\theta$ with
# $\bar\theta_0 = \theta_0$, which is what we sample with (the paper: $d = 0.9999$; a run of a few thousand steps needs a
# shorter window, `ema_decay` above). Unrolled, after $n$ steps,
#
# $$\bar\theta_n = d^{\,n}\,\theta_0 + (1-d)\sum_{k=1}^{n} d^{\,n-k}\,\theta_k,$$
#
# a weighted average of the recent weights (the weights sum to 1) over a window of about $1/(1-d)$ steps: with a
# constant learning rate the weights keep jittering around a good solution, and the average sits closer to its
# middle. The step is one `eqx.filter_jit` pure function of a `TrainState` (weights, EMA, Adam's moments, step, PRNG
# key); the check compares it with the package's `train.make_train_step` ([appendix A1](A1_jax_speed.ipynb): why one
# jit, and what it saves), and the EMA with its closed form.

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
    return TrainState(model, ema, opt_state, state.step + 1, jax.random.key_data(key)), loss


def copy_tree(tree):
    """A copy of every array in a pytree (the package's step reuses its input's memory: appendix A1)."""
    return jax.tree_util.tree_map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, tree)


def max_abs_diff(a, b):
    """The largest difference between the floating-point leaves of two pytrees."""
    la = jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_inexact_array))
    lb = jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_inexact_array))
    return max(float(jnp.abs(x - y).max()) for x, y in zip(la, lb, strict=True))


# the package's step, in float32 like ours (on a GPU or TPU it would otherwise compute in bfloat16)
train_step = train.make_train_step(config.replace(train={"compute_dtype": "float32"}))
ours, pkg = copy_tree(state0), copy_tree(state0)
thetas, losses_ours, losses_pkg = [eqx.filter(copy_tree(state0.model), eqx.is_inexact_array)], [], []
for _ in range(5):  # the warmup makes step 1's learning rate 0: compare a few steps
    ours, loss = train_step_inline(data, ours)
    pkg, metrics = train_step(data, pkg)
    losses_ours, losses_pkg = losses_ours + [float(loss)], losses_pkg + [float(metrics["loss"])]
    thetas.append(eqx.filter(copy_tree(pkg.model), eqx.is_inexact_array))  # theta_0 .. theta_n
d, n = tc.ema_decay, len(thetas) - 1
closed_form = jax.tree_util.tree_map(
    lambda *th: d**n * th[0] + (1 - d) * sum(d ** (n - k) * th[k] for k in range(1, n + 1)), *thetas)
print(f"losses, inline: {np.round(losses_ours, 5)}; package: {np.round(losses_pkg, 5)}\n"
      f"after {n} steps with d = {d}: |EMA - closed form| = {max_abs_diff(pkg.ema, closed_form):.1e}")

# %%
np.testing.assert_allclose(losses_ours, losses_pkg, rtol=1e-5)
assert max_abs_diff(ours.model, pkg.model) < 1e-5 and max_abs_diff(ours.ema, pkg.ema) < 1e-5
assert bool(jnp.array_equal(ours.key, pkg.key))  # the same key for the next step
assert max_abs_diff(pkg.model, state0.model) > 1e-5  # the weights did move: the comparisons mean something
assert max_abs_diff(pkg.ema, closed_form) < 1e-6 and max_abs_diff(pkg.ema, pkg.model) > 1e-5  # the EMA lags behind

# %% [markdown]
# ## 6. Training, live
#
# `train.fit` runs the loop for real: `steps_per_call` steps per jitted `jax.lax.scan`, a progress bar, and every
# `log_every` steps a row of metrics handed to a callback `on_log(step, row)`: here, a loss curve redrawn live. The
# preset's full run is 3000 steps, many minutes on a laptop CPU, and the course ships its result
# (`pretrained.load("digits")`: the same preset and seed, trained to the end). So this run stops after `live_steps`;
# set `TRAIN_FROM_SCRATCH = True` to run all 3000. Checkpoints, resuming and experiment tracking: notebook 06.

# %%
TRAIN_FROM_SCRATCH = False  # True: the preset's full run, here and now
live_steps = tc.steps if (TRAIN_FROM_SCRATCH or SMOKE) else 1000

fig, ax = plt.subplots(figsize=(7, 3))
(curve,) = ax.plot([], [], ".-")
ax.set(xlabel="step", ylabel=r"$L_\mathrm{simple}$ (mean over log interval)", yscale="log", title="training loss")
handle, live_rows = display(fig, display_id=True), []  # a figure we redraw in place at every log


def on_log(step, row):
    live_rows.append(row)
    curve.set_data([r["step"] for r in live_rows], [r["loss"] for r in live_rows])
    ax.relim(), ax.autoscale_view(), handle.update(fig)


start = time.perf_counter()
state, history = train.fit(config, images, state=copy_tree(state0), steps=live_steps, on_log=on_log)
plt.close(fig)  # already shown above
print(f"{live_steps} steps of batch {tc.batch_size} in {time.perf_counter() - start:.0f} s on {BACKEND} "
      f"(compilation included); loss {history[0]['loss']:.3f} over the first {tc.log_every} steps, "
      f"{history[-1]['loss']:.3f} over the last {tc.log_every}")

# %%
assert history[-1]["loss"] < (0.8 if SMOKE else 0.5) * history[0]["loss"]  # it learns (smoke: 40 steps, less far)

# %% [markdown]
# ## 7. Samples: the last weights, the EMA, and the shipped model
#
# Your run's last iterate $\theta$, its average $\bar\theta$, and the shipped model (its EMA after 3000 steps) draw
# samples from the **same** noise, so any difference comes from the weights; with DDIM, 50 steps instead of $T$
# (notebook 08; notebook 05 derives Algorithm 2), to draw many quickly. Small classifiers trained on real digits
# judge them (notebook 07 explains them): how confidently they recognise each sample, how many of the ten digits
# appear, the Fréchet distance between their features of samples and of real digits (lower is better), precision
# and recall (how many samples look like real digits; how much of the real digits the samples cover), beside real
# digits the judges never saw and uniform noise.

# %%
models = {f"last weights, step {live_steps}": (config, state.model), f"EMA, step {live_steps}": (config, state.ema),
          "shipped model": (shipped_config, shipped_model)}
n_score = 64 if SMOKE else 256
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
rows = {}
for ax, (name, (cfg, m)) in zip(axes, models.items()):
    imgs = to_uint8(sample.sample_images(cfg, m, jax.random.key(6), n_score, sampler="ddim"))
    ax.imshow(image_grid(imgs[:64])[..., 0], cmap="gray", vmin=0, vmax=255)
    ax.set(title=name), ax.axis("off")
    table = digits_quality_table(imgs)
    rows[name] = table["samples"]
plt.show()
rows.update({"real digits (held out)": table["real (held out)"], "uniform noise": table["noise"]})
print(f"{n_score} images each{'':9s}confidence  digits present  Frechet  precision  recall")
for name, r in rows.items():
    print(f"{name:32s}{r['confidence']:>10.3f}{r['classes_present']:>16d}{r['frechet']:>9.2f}{r['precision']:>11.2f}{r['recall']:>8.2f}")
frechet = {name: r["frechet"] for name, r in rows.items()}

# %%
assert frechet["shipped model"] < 2 * frechet["real digits (held out)"] and rows["shipped model"]["classes_present"] == 10
if not SMOKE:  # the average of the last ~200 steps' weights beats the last weights
    assert frechet[f"EMA, step {live_steps}"] < frechet[f"last weights, step {live_steps}"], frechet

# %% [markdown]
# At this learning rate the last weights still jump from step to step; the EMA averages the jitter away (lagging
# about $1/(1-d) = 200$ steps behind a run still improving), and after 1000 steps its Fréchet distance is far lower.
# Precision and recall can move apart, and the Fréchet distance mixes both (notebook 07 takes the judges apart).
#
# ## Exercise
#
# **How long does the EMA remember?** After $n$ steps the initial weights $\theta_0$ still carry the share $d^{\,n}$
# of $\bar\theta_n$. Write the fewest steps after which that share is below `share` (the cell below checks it; a
# worked solution is at the end). For $d = 0.995$ and 1%, is a 500-step run long enough? And for $d = 0.9999$?

# %%
def steps_to_forget(d, share):
    """The exercise: the fewest steps n with d**n < share. Replace None with your formula."""
    return None


def check_exercise(steps_to_forget):
    if steps_to_forget(0.995, 0.01) is None:
        return print("exercise: not attempted yet")
    for d_, share in ((0.995, 0.01), (0.9999, 0.01), (0.9, 0.5)):
        n = steps_to_forget(d_, share)
        assert d_**n < share <= d_ ** (n - 1), (d_, share, n)
    print(f"exercise: correct ({steps_to_forget(0.995, 0.01)} steps for d = 0.995)")


check_exercise(steps_to_forget)

# %% [markdown]
# ## Solution
#
# $d^{\,n} < s \iff n > \log s / \log d$ (both logs negative), so $n = \lfloor \log s/\log d \rfloor + 1$: 919 steps for
# $d = 0.995$. After 500 steps the random initial weights still make up $0.995^{500} \approx 8\%$ of the EMA, which is
# why the live run above takes 1000. The paper's $d = 0.9999$ needs 46,050 steps, of its 800,000.

# %%
def steps_to_forget_solution(d, share):
    return int(np.floor(np.log(share) / np.log(d))) + 1


check_exercise(steps_to_forget_solution)

# %% [markdown]
# ## Go further
#
# - The paper: sections 3.2 (score matching, Langevin dynamics) and 3.4, Table 2 (the bound against $L_\text{simple}$;
#   try it: weigh `loss_inline` by $w_t$), Appendices A (the bound) and B (training).
# - Score matching: Vincent 2011, Song & Ermon 2019; learned variances: Nichol & Dhariwal 2021; loss weights: VDM, EDM.
#
# We sampled with `sample.sample_images` as a black box. **Next**, we derive it: [05 — The reverse process: sampling](05_reverse_sampler.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/05_reverse_sampler.ipynb)
