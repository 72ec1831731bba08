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
# # 00 — Diffusion in two dimensions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/00_diffusion_in_2d.ipynb)
#
# Part 0 of **nanoJaxDDPM**, a course that rebuilds *Denoising Diffusion Probabilistic Models*
# (Ho, Jain & Abbeel 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)) from scratch in JAX.
#
# Before images, points. Here the data are a thousand points in the plane, so every quantity of a diffusion
# model can be *drawn*, and the best possible answer the network could learn is known in closed form. The rest of
# the course does the same things on images, where neither is possible.
#
# **What you will learn**
# - the forward process $q(x_t \mid x_0)$ as a cloud of points that melts into a Gaussian;
# - the training objective $L_\text{simple}$: a small network learns to predict the noise that was added;
# - the **score** $\nabla_x \log q_t(x)$: exact for a finite data set, learned by the network, both drawn as arrows;
# - the reverse process (the paper's Algorithm 2): points that follow the learned field from noise into the data;
# - how to check a generative model: its samples against data it never saw.

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
from IPython.display import Image, display
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm

from nanoddpm_utils import viz, widgets
from nanoddpm_utils.embedding import timestep_embedding
from nanoddpm_utils.schedule import make_schedule

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: fewer training steps
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 1. The data: a spiral
#
# A thousand points along a spiral, scaled so that each coordinate has a spread of about 1 (the noise we will add
# has spread 1 too). Two more sets of 1000 points, drawn the same way with other seeds, are **held out**: the model
# never sees them, and at the end we compare its samples with them.

# %%
def spiral(n, seed):
    """n points along a spiral arm, each coordinate with a spread of about 1; returns (points, position on the arm)."""
    rng = np.random.default_rng(seed)
    u = np.sqrt(rng.uniform(0.05, 1.0, n))  # position along the arm (more points on the longer outer turns)
    angle = 3.5 * np.pi * u
    x = np.stack([u * np.cos(angle), u * np.sin(angle)], axis=1) + 0.03 * rng.standard_normal((n, 2))
    return jnp.asarray(x / 0.5, jnp.float32), u


x_train, u_train = spiral(1000, seed=0)
x_held_a, _ = spiral(1000, seed=1)
x_held_b, _ = spiral(1000, seed=2)
print("training set:", x_train.shape, "std per coordinate:", np.round(x_train.std(axis=0), 2))

# %% [markdown]
# ## 2. The forward process: a cloud that melts into noise
#
# The forward process adds a little Gaussian noise at each of $T$ steps, $q(x_t \mid x_{t-1}) =
# \mathcal N(\sqrt{\alpha_t}\, x_{t-1}, \beta_t I)$ with $\alpha_t = 1 - \beta_t$. Composing $t$ such steps gives a
# closed form (the paper's eq. 4; notebook 01 derives it):
# $$q(x_t \mid x_0) = \mathcal N\big(a_t x_0,\; b_t^2 I\big), \qquad a_t = \sqrt{\bar\alpha_t},\quad
#   b_t = \sqrt{1 - \bar\alpha_t},\quad \bar\alpha_t = \textstyle\prod_{s \le t} \alpha_s,$$
# that is, $x_t = a_t x_0 + b_t \varepsilon$ with $\varepsilon \sim \mathcal N(0, I)$: shrink the data, add noise.
#
# **How many steps?** The paper uses $T = 1000$, $\beta_t$ rising linearly from $10^{-4}$ to $0.02$. Sampling
# walks back in $T$ steps, one network call each: fewer steps are cheaper, but each is bigger and harder to undo
# with a Gaussian. In two dimensions $T = 200$ is plenty. With $5\times$ fewer steps we take $5\times$ bigger
# $\beta_t$ (as Nichol & Dhariwal 2021 do), so that $\bar\alpha_t \approx e^{-\sum_s \beta_s}$ follows the
# paper's curve against $t/T$ and ends as close to pure noise.

# %%
T = 200
schedule = make_schedule("linear", T, beta_start=1e-4 * 1000 / T, beta_end=0.02 * 1000 / T)
betas, alphas = schedule.betas, 1.0 - schedule.betas
a, b = schedule.sqrt_alphas_cumprod, schedule.sqrt_one_minus_alphas_cumprod  # a_t, b_t for t = 0 .. T-1
print(f"beta from {betas[0]:.4f} to {betas[-1]:.2f};  alphabar_T = {schedule.alphas_cumprod[-1]:.1e}")

# %% [markdown]
# The code counts steps from 0, as the official code does: index `t` is the paper's step $t + 1$. Each point is
# coloured by where it sits on the arm; watch the colours mix as the cloud melts.

# %%
def noised(x0, t, key):
    """x_t ~ q(x_t | x_0) for every row of x0 at the code's step t (paper step t + 1)."""
    return a[t] * x0 + b[t] * jax.random.normal(key, x0.shape)


shown = [0, 5, 10, 20, 40, 70, 100, 200]  # paper steps; 0 is the data itself
fig, axes = plt.subplots(1, len(shown), figsize=(2 * len(shown), 2.3))
for ax, k in zip(axes, shown):
    x = x_train if k == 0 else noised(x_train, k - 1, jax.random.key(k))
    ax.scatter(x[:, 0], x[:, 1], c=u_train, s=2, cmap="viridis")
    ax.set(xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[], aspect="equal", title=f"$x_{{{k}}}$")
fig.suptitle("The forward process $q$: the spiral melts into $\\mathcal{N}(0, I)$", y=1.02)
plt.show()

# %% [markdown]
# Since $x_0$ and $\varepsilon$ are independent, the covariance of $x_t$ is $a_t^2\,\mathrm{Cov}(x_0) + b_t^2 I$:
# it moves from the data's covariance to $I$. Check it on 20 noisy copies of the training set (a wrong $a_t$ or
# $b_t$, say a missing square root, moves it by far more than the sampling error of about 0.01):

# %%
copies = jnp.tile(x_train, (20, 1))  # 20 000 points
for t in [9, 49, 99, 199]:
    x_t = noised(copies, t, jax.random.key(t))
    expected = a[t] ** 2 * jnp.cov(x_train.T) + b[t] ** 2 * jnp.eye(2)
    assert jnp.abs(jnp.cov(x_t.T) - expected).max() < 0.05, (t, jnp.cov(x_t.T), expected)
print("Cov(x_t) = a_t^2 Cov(x_0) + b_t^2 I at paper steps 10, 50, 100, 200")

# %% [markdown]
# ## 3. Learning to predict the noise
#
# The paper's training objective (its eq. 14, notebook 04 derives it from the likelihood) draws a data point, a
# step and a noise, and asks a network $\varepsilon_\theta$ to recover the noise from the noisy point:
# $$L_\text{simple}(\theta) = \mathbb E_{x_0,\, t,\, \varepsilon}\Big[\big\lVert \varepsilon -
#   \varepsilon_\theta(a_t x_0 + b_t \varepsilon,\; t)\big\rVert^2\Big].$$
# For points in the plane the network can be tiny: a multi-layer perceptron that reads the point $x_t$ and the
# step $t$ (as the sinusoidal features of notebook 02) and returns two numbers.

# %%
class EpsMLP(eqx.Module):
    """eps_theta(x_t, t): a point (2,) and its step (code's t) in, the predicted noise (2,) out."""

    layers: list
    emb_dim: int = eqx.field(static=True)

    def __init__(self, key, width=128, emb_dim=32):
        sizes = [2 + emb_dim, width, width, width, 2]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = [eqx.nn.Linear(i, o, key=k) for i, o, k in zip(sizes[:-1], sizes[1:], keys)]
        self.emb_dim = emb_dim

    def __call__(self, x, t):
        h = jnp.concatenate([x, timestep_embedding(t, self.emb_dim)])
        for layer in self.layers[:-1]:
            h = jax.nn.silu(layer(h))
        return self.layers[-1](h)


BATCH, STEPS = 512, 3000 if SMOKE else 6000
optimizer = optax.adam(optax.cosine_decay_schedule(5e-3, STEPS))


def loss_simple(model, key):
    k_i, k_t, k_e = jax.random.split(key, 3)
    x0 = x_train[jax.random.randint(k_i, (BATCH,), 0, len(x_train))]  # (B, 2)
    t = jax.random.randint(k_t, (BATCH,), 0, T)  # (B,) a step for each point
    eps = jax.random.normal(k_e, x0.shape)
    x_t = a[t, None] * x0 + b[t, None] * eps
    return jnp.mean(jnp.sum((eps - jax.vmap(model)(x_t, t)) ** 2, axis=-1))


@eqx.filter_jit
def train_step(model, opt_state, key):
    loss, grads = eqx.filter_value_and_grad(loss_simple)(model, key)
    updates, opt_state = optimizer.update(grads, opt_state, model)
    return eqx.apply_updates(model, updates), opt_state, loss


model = EpsMLP(jax.random.key(0))
opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
losses, key, start = [], jax.random.key(1), time.perf_counter()
for step in range(STEPS):
    model, opt_state, loss = train_step(model, opt_state, jax.random.fold_in(key, step))
    losses.append(loss)
losses = np.asarray(jnp.stack(losses))
print(f"{STEPS} steps in {time.perf_counter() - start:.1f} s; "
      f"loss {losses[:100].mean():.3f} (first 100 steps) -> {losses[-500:].mean():.3f} (last 500)")

# %% [markdown]
# The loss falls, then stays well above zero. It must: a noisy point $x_t$ could have come from many
# $(x_0, \varepsilon)$ pairs, so the noise cannot be read off it exactly. The best any network can do is the
# *average* noise given $x_t$, $\varepsilon^*(x_t, t) = \mathbb E[\varepsilon \mid x_t]$ (the minimiser of a
# squared error is a conditional mean). For a finite data set we can compute it exactly, and it has another name.
#
# ## 4. The score, exact and learned
#
# Noising the $N$ training points $x_i$ gives a mixture of $N$ Gaussians, one around each shrunk point:
# $q_t(x) = \frac1N \sum_i \mathcal N(x;\, a_t x_i,\, b_t^2 I)$. Its **score** (the gradient of its log density)
# takes three lines. Write $n_i(x) = \mathcal N(x; a_t x_i, b_t^2 I)$, so $\nabla_x n_i = n_i\,(a_t x_i - x)/b_t^2$:
# $$\nabla_x \log q_t(x) = \frac{\sum_i \nabla_x n_i(x)}{\sum_j n_j(x)}
#   = \sum_i w_i(x)\, \frac{a_t x_i - x}{b_t^2}, \qquad
#   w_i(x) = \frac{n_i(x)}{\sum_j n_j(x)} = \operatorname{softmax}_i\Big(-\frac{\lVert x - a_t x_i\rVert^2}{2 b_t^2}\Big)$$
# (the Gaussians' normalising constants are all the same and cancel in $w_i$). Each training point pulls $x$
# towards itself, weighted by how likely it is to have produced $x$. And since $x_t = a_t x_0 + b_t\varepsilon$,
# the average noise is $\mathbb E[\varepsilon \mid x_t] = \sum_i w_i\,(x_t - a_t x_i)/b_t$, which is
# $$\varepsilon^*(x, t) = -\,b_t\, \nabla_x \log q_t(x), \qquad\text{so the network learns}\qquad
#   s_\theta(x, t) = -\,\varepsilon_\theta(x, t)\,/\,b_t \;\approx\; \nabla_x \log q_t(x).$$

# %%
def exact_score(x, t, points=x_train):
    """grad_x log q_t(x) for q_t the training points noised to the code's step t; x: (2,)."""
    d2 = jnp.sum((x - a[t] * points) ** 2, axis=-1)  # (N,) squared distance to each shrunk point
    w = jax.nn.softmax(-d2 / (2 * b[t] ** 2))  # (N,) how likely each point is to have produced x
    return w @ (a[t] * points - x) / b[t] ** 2


def exact_eps(x, t):
    return -b[t] * exact_score(x, t)


# %% [markdown]
# Check the three lines: differentiate $\log q_t$ itself, written independently as a log-sum-exp of Gaussian log
# densities, with automatic differentiation. A wrong sign, a $b_t$ instead of $b_t^2$, or $x_i$ instead of
# $a_t x_i$ breaks the agreement.

# %%
def log_q(x, t, points=x_train):
    log_n = jnp.sum(norm.logpdf(x, loc=a[t] * points, scale=b[t]), axis=-1)  # (N,) log n_i(x)
    return logsumexp(log_n) - jnp.log(len(points))


xs = jax.random.normal(jax.random.key(2), (50, 2)) * 1.5
for t in [4, 19, 49, 99, 199]:
    autodiff = jax.vmap(jax.grad(log_q), in_axes=(0, None))(xs, t)
    closed = jax.vmap(exact_score, in_axes=(0, None))(xs, t)
    err = jnp.linalg.norm(closed - autodiff, axis=-1) / jnp.linalg.norm(autodiff, axis=-1)
    assert err.max() < 1e-3, (t, err.max())
print("closed-form score = gradient of log q_t, at paper steps 5, 20, 50, 100, 200")

# %% [markdown]
# Now the network against the best possible answer. On points drawn from $q_t$ (noised training points), the
# relative error $\sum\lVert\varepsilon_\theta - \varepsilon^*\rVert^2 / \sum\lVert\varepsilon^*\rVert^2$:

# %%
def relative_eps_error(t, n=2000):
    k_i, k_e = jax.random.split(jax.random.key(100 + t))
    x_t = noised(x_train[jax.random.randint(k_i, (n,), 0, len(x_train))], t, k_e)
    learned = jax.vmap(model, in_axes=(0, None))(x_t, t)
    exact = jax.vmap(exact_eps, in_axes=(0, None))(x_t, t)
    return float(jnp.sum((learned - exact) ** 2) / jnp.sum(exact**2))


rel = {k: relative_eps_error(k - 1) for k in [5, 10, 20, 50, 100, 200]}  # paper steps
print("paper step t:       " + "".join(f"{k:>7}" for k in rel))
print("relative error (%): " + "".join(f"{100 * r:7.2f}" for r in rel.values()))
assert all(rel[k] < 0.05 for k in [50, 100, 200]), rel

# %% [markdown]
# From step 50 on, the network's noise is within 5% of the best possible one. At the smallest steps it is further
# off: there $\varepsilon^*$ changes over distances of about $b_t$, and a small network fits such sharp detail
# last (train longer and these errors keep falling). Not all of it is worth learning, though: $\varepsilon^*$
# describes *these* 1000 points and nothing else; exercise 1 shows what following it exactly would produce.
#
# Here are the two fields as arrows. The score itself grows like $1/b_t^2$, so we draw $b_t^2 \nabla_x \log q_t(x) =
# -b_t\,\varepsilon$ instead: since $x = a_t x_0 + b_t \varepsilon$, it is the arrow from $x$ to $a_t \hat x_0$, the
# average position of the (shrunk) clean point given $x$; drawn at a third of its length. The grey cloud is $q_t$.
# Move the slider in a live notebook.

# %%
grid = jnp.stack(jnp.meshgrid(jnp.linspace(-2.6, 2.6, 15), jnp.linspace(-2.6, 2.6, 15)), -1).reshape(-1, 2)


def draw_fields(steps):
    """Learned (top row) and exact (bottom row) -b_t eps on the grid, one column per paper step."""
    fig, axes = plt.subplots(2, len(steps), figsize=(2.8 * len(steps), 5.6), squeeze=False)
    for col, k in zip(axes.T, steps):
        cloud = noised(x_train, k - 1, jax.random.key(k))
        for ax, eps_fn, name in [(col[0], model, "learned $-b_t\\varepsilon_\\theta$"),
                                 (col[1], exact_eps, "exact $-b_t\\varepsilon^*$")]:
            arrows = -b[k - 1] * jax.vmap(eps_fn, in_axes=(0, None))(grid, k - 1)  # from x to a_t x0_hat
            ax.scatter(cloud[:500, 0], cloud[:500, 1], s=1, color="0.7")
            ax.quiver(grid[:, 0], grid[:, 1], arrows[:, 0], arrows[:, 1], angles="xy", scale_units="xy", scale=3,
                      width=0.006, color="C0")
            ax.set(xlim=(-2.9, 2.9), ylim=(-2.9, 2.9), xticks=[], yticks=[], aspect="equal", title=f"{name}, t = {k}")
    return fig


widgets.interactive_figure(lambda t: draw_fields([t]), static=lambda: draw_fields([3, 8, 20, 50]),
                       t=([1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 60, 100, 200], 5))

# %% [markdown]
# At large $t$ both fields point to the middle: the data are a blur, and the best guess of $x_0$ is their mean. As
# $t$ falls, the arrows bend towards the arm. Near the data the two fields agree; far from it, at small $t$, the
# learned arrows shrink to almost nothing. No noised training point ever lands there at those steps, so
# $L_\text{simple}$ never teaches the network anything about those places. That is one reason to train on many
# noise levels (Song & Ermon 2019): at large $t$ the noise carries points everywhere, and sampling starts there.
# On images the field lives in 64 (digits) or 3072 (CIFAR-10) dimensions and cannot be drawn, but it is the same
# object: notebooks 03 and 04 build and train the network that learns it.
#
# ## 5. The reverse process: following the field back
#
# The paper's Algorithm 2 starts from pure noise and takes $T$ steps back, each one the mean of the reverse step
# (notebook 05 derives it) plus fresh noise:
# $$x_T \sim \mathcal N(0, I), \qquad x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 -
#   \bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\Big) + \sigma_t z, \quad z \sim \mathcal N(0, I)\ (z = 0 \text{ at the
#   last step}),$$
# with $\sigma_t^2 = \beta_t$. In score terms the mean is $\big(x_t + \beta_t\, s_\theta(x_t, t)\big)/\sqrt{\alpha_t}$:
# a small step *up* the score, a slight stretch, and some noise.

# %%
def p_sample_loop(eps_fn, key, n):
    """Algorithm 2 for n points; returns the whole trajectory (T + 1, n, 2): x_T, x_{T-1}, ..., x_0."""
    k_T, key = jax.random.split(key)

    def step(x, inputs):  # x_t -> x_{t-1}, with the code's t
        t, k = inputs
        eps = jax.vmap(eps_fn, in_axes=(0, None))(x, t)
        mean = (x - betas[t] / b[t] * eps) / jnp.sqrt(alphas[t])
        z = jnp.where(t > 0, jax.random.normal(k, x.shape), 0.0)
        x = mean + jnp.sqrt(betas[t]) * z
        return x, x

    x_T = jax.random.normal(k_T, (n, 2))
    _, xs = jax.lax.scan(step, x_T, (jnp.arange(T - 1, -1, -1), jax.random.split(key, T)))
    return jnp.concatenate([x_T[None], xs])


start = time.perf_counter()
trajectory = eqx.filter_jit(p_sample_loop)(model, jax.random.key(3), 1000)
samples = trajectory[-1]
print(f"1000 samples, {T} steps each, in {time.perf_counter() - start:.1f} s")

# %%
shown = [200, 100, 50, 20, 10, 5, 2, 0]  # paper steps
final_angle = np.arctan2(samples[:, 1], samples[:, 0])  # colour each point by where it ends up
fig, axes = plt.subplots(1, len(shown), figsize=(2 * len(shown), 2.3))
for ax, k in zip(axes, shown):
    ax.scatter(trajectory[T - k, :, 0], trajectory[T - k, :, 1], c=final_angle, s=2, cmap="twilight")
    ax.set(xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[], aspect="equal", title=f"$x_{{{k}}}$")
fig.suptitle("The reverse process $p_\\theta$, from noise to data (each point coloured by where it ends)", y=1.02)
plt.show()

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 4))
ax1.scatter(x_held_a[:, 0], x_held_a[:, 1], s=2, color="0.6")
for i in range(6):  # 6 trajectories (every 10th step), from x_T (circle) to their sample x_0 (dot)
    path = trajectory[::10, i]
    ax1.plot(path[:, 0], path[:, 1], lw=1, color=f"C{i}")
    ax1.scatter(*path[0], s=25, facecolor="none", edgecolor=f"C{i}")
    ax1.scatter(*path[-1], s=25, color=f"C{i}", zorder=3)
ax1.set_title("6 reverse paths over the held-out data")
ax2.scatter(samples[:, 0], samples[:, 1], s=2, color="C3")
ax2.set_title("1000 samples")
for ax in (ax1, ax2):
    ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", xticks=[], yticks=[])
plt.show()

# %%
fig, ax = plt.subplots(figsize=(3.2, 3.2))  # the same chain, 300 points, as an animated image
ax.scatter(x_held_a[:, 0], x_held_a[:, 1], s=1, color="0.85")
dots = ax.scatter(trajectory[0, :300, 0], trajectory[0, :300, 1], s=4, c=final_angle[:300], cmap="twilight",
                  antialiased=False)  # few distinct colours: a smaller animated image
ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", xticks=[], yticks=[])
frames = []
for k in list(range(T, 40, -16)) + list(range(40, -1, -3)):  # paper step k; slower near the end, where it happens
    dots.set_offsets(np.asarray(trajectory[T - k, :300]))
    ax.set_title(f"$x_{{{k}}}$")
    frames.append(viz.frame_png(fig, dpi=64))
plt.close(fig)
display(Image(data=viz.animated_png(frames, duration=110), format="png"))

# %% [markdown]
# Do the samples look like the data? Eyes are easily fooled, so we measure. The **energy distance** between two
# samples $X$ and $Y$ (Székely & Rizzo), $\;2\,\mathbb E\lVert X - Y\rVert - \mathbb E\lVert X - X'\rVert -
# \mathbb E\lVert Y - Y'\rVert$, is zero only when both come from the same distribution. A number alone means
# little, so we score three sets of 1000 points against held-out set A: the samples, held-out set B (what a perfect
# model would score: the luck of the draw) and pure noise (a model that learned nothing). The mean distance from
# each point to its nearest held-out point is a second judge: blurred samples show up there first.

# %%
def energy_distance(x, y):
    def mean_dist(p, q):
        return jnp.mean(jnp.linalg.norm(p[:, None] - q[None], axis=-1))

    return float(2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y))


def nearest_distance(x, y):
    return float(jnp.mean(jnp.sqrt(jnp.min(jnp.sum((x[:, None] - y[None]) ** 2, axis=-1), axis=1))))


noise = jax.random.normal(jax.random.key(4), (1000, 2))
judged = {"samples": samples, "held-out B": x_held_b, "noise": noise}
energy = {name: energy_distance(x, x_held_a) for name, x in judged.items()}
nearest = {name: nearest_distance(x, x_held_a) for name, x in judged.items()}
for name in judged:
    print(f"{name:>11}: energy distance {energy[name]:.4f}   nearest held-out point {nearest[name]:.3f}")

# %%
assert energy["samples"] < energy["held-out B"] + 0.2 * (energy["noise"] - energy["held-out B"]), energy
assert nearest["samples"] < nearest["held-out B"] + 0.15 * (nearest["noise"] - nearest["held-out B"]), nearest

# %% [markdown]
# The samples are a little further from set A than set B is (a slightly thicker arm, a few points between the
# turns), and far closer than noise. The checks accept samples up to 20% (energy) or 15% (nearest point) of the
# way from B's score to the noise's; break a coefficient in `p_sample_loop` and run these cells again to see
# how far a small mistake moves them. Notebook 05 runs this chain on digits, and notebook 07 judges image samples
# against held-out images in the same spirit.
#
# ## Exercises
#
# 1. **The exact score only copies.** Run Algorithm 2 with the exact $\varepsilon^*$ in place of the network
#    (`p_sample_loop` takes any function of $(x, t)$) and keep its 1000 samples in `exact_samples`. How far is
#    each from its nearest *training* point, compared with the network's samples and with held-out set B?
# 2. **The score of a Gaussian.** If the data were one Gaussian, $x_0 \sim \mathcal N(\mu, s^2 I)$, what are
#    $q_t$ and $\varepsilon^*(x, t)$? Write `gaussian_eps(x, t, mu, s)`.

# %%
exact_samples = None  # exercise 1: 1000 samples of Algorithm 2 driven by exact_eps
gaussian_eps = None  # exercise 2: a function (x, t, mu, s) -> eps*, x of shape (2,)


def check_exercises():
    if exact_samples is not None:
        to_train = {name: nearest_distance(x, x_train) for name, x in
                    [("exact score", exact_samples), ("network", samples), ("held-out B", x_held_b)]}
        print("mean distance to the nearest training point:", {k: round(v, 4) for k, v in to_train.items()})
        assert to_train["exact score"] < 0.7 * to_train["held-out B"], "not quite: use exact_eps, not the network"
    if gaussian_eps is not None:  # against -b_t times the gradient of log N(x; a_t mu, (a_t^2 s^2 + b_t^2) I)
        mu, s, t = jnp.array([0.5, -1.0]), 0.7, 30
        score_gauss = jax.grad(lambda x: jnp.sum(norm.logpdf(x, a[t] * mu, jnp.sqrt(a[t] ** 2 * s**2 + b[t] ** 2))))
        for x in xs[:10]:
            assert jnp.allclose(gaussian_eps(x, t, mu, s), -b[t] * score_gauss(x), atol=1e-5), "not quite"
        print("gaussian_eps: correct")


check_exercises()

# %% [markdown]
# ## Solutions
#
# **1.** The exact $\varepsilon^*$ describes the training set and nothing more. At the last steps its softmax
# weights fall on the few training points nearest to $x_t$, and the chain ends on a blend of them: its samples sit
# about half as far from the training points as fresh points of the same spiral do (printed above); as the last
# step's $b_t$ goes to 0 they would land on the training points themselves. The network's samples do not. Copying
# is the best possible fit of $L_\text{simple}$ and a failure as a generative model; notebook 07 asks whether
# the image model copies its training digits.
#
# **2.** $x_t = a_t x_0 + b_t\varepsilon$ is a sum of independent Gaussians, so $q_t = \mathcal N(a_t\mu,\,
# (a_t^2 s^2 + b_t^2) I)$, whose score is $-(x - a_t\mu)/(a_t^2 s^2 + b_t^2)$; multiply by $-b_t$. With $s = 0$
# (one data point) it is $(x - a_t\mu)/b_t$: exactly the noise that was added.

# %%
exact_samples = eqx.filter_jit(p_sample_loop)(exact_eps, jax.random.key(5), 1000)[-1]


def gaussian_eps(x, t, mu, s):
    return b[t] * (x - a[t] * mu) / (a[t] ** 2 * s**2 + b[t] ** 2)

check_exercises()

# %% [markdown]
# ## Go further
#
# - The paper, section 3.2 and Algorithms 1–2: the same training and sampling, on images.
# - Song & Ermon (2019), *Generative Modeling by Estimating Gradients of the Data Distribution*
#   ([arXiv:1907.05600](https://arxiv.org/abs/1907.05600)): the score view, with Langevin sampling.
# - Song et al. (2021), *Score-Based Generative Modeling through SDEs*
#   ([arXiv:2011.13456](https://arxiv.org/abs/2011.13456)): the forward and reverse processes in continuous time.
# - MIT 6.S184, *An Introduction to Flow Matching and Diffusion Models*
#   ([arXiv:2506.02070](https://arxiv.org/abs/2506.02070)): lecture notes and labs that also start in 2-D.
#
# **Next:** [01 — The forward process: turning images into noise](01_forward_process.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/01_forward_process.ipynb)
