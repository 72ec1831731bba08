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
# # 04 — Training: the loss, Algorithm 1 and a fast training loop
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/04_training_loop.ipynb)
#
# Part 4 of **nanoJaxDDPM** (DDPM, Ho et al. 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# We have the forward process ([01](01_forward_process.ipynb)), the time embedding ([02](02_sinusoidal_embedding.ipynb))
# and the network $\epsilon_\theta(x_t, t)$ ([03](03_unet.ipynb)). Now we train it, and we make the training
# loop fast.
#
# **What you will learn**
# - the simplified loss $L_\text{simple}$ (the paper's eq. 14) and Algorithm 1, written inline and checked against
#   `nanoddpm_utils.train.batch_loss`;
# - why the whole step (loss, gradients, Adam, EMA) is **one** jitted function: the same step split into separately
#   jitted pieces, measured against it;
# - the exponential moving average (EMA) of the weights: its closed form, checked, and samples with and without it;
# - K training steps inside one `jax.lax.scan` versus a Python loop over the jitted step, measured on your backend;
# - why the package computes convolutions as matmuls on a CPU: a native convolution's weight gradient inside a loop
#   is slow on XLA:CPU ([jax-ml/jax#12868](https://github.com/jax-ml/jax/issues/12868)), measured live;
# - training the `digits` preset with a progress bar and a live loss curve, logged to Weights & Biases (offline
#   without a key) and to a `metrics.jsonl` file.
#
# On a 2-core CPU the full notebook takes about a quarter of an hour (most of it training); on a Colab GPU or TPU,
# a few minutes.

# %%
# Colab only: fetch the course repository and install its package (does nothing anywhere else).
import sys

if "google.colab" in sys.modules:
    import importlib
    import os
    import subprocess

    REPO_DIR = "/content/nanoJaxDDPM"
    if not os.path.isdir(REPO_DIR):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", "main",
                        "https://github.com/suvadityamuk/nanoJaxDDPM", REPO_DIR], check=True)
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
from IPython.display import display

from nanoddpm_utils import checkpoint, sample, train
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import get_batch, load_digits, to_model_range, to_uint8
from nanoddpm_utils.evaluate import digits_quality_table, format_table
from nanoddpm_utils.layers import conv2d_matmul
from nanoddpm_utils.tracking import Tracker, image_grid, read_metrics, resolve_mode

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
# Keep compiled programs on disk: `fit` (section 6) builds its own jitted steps and finds them already compiled
# by the cells before it; a restarted kernel finds them too.
jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/nanoddpm/jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
BACKEND = jax.default_backend()
print(f"jax {jax.__version__} on {BACKEND} ({jax.devices()[0].device_kind}); smoke mode: {SMOKE}")

# %% [markdown]
# ## 1. The loss: $L_\text{simple}$
#
# Training maximises a variational bound on the log-likelihood. Section 3 of the paper reduces it, term by term,
# to comparing the reverse step $p_\theta(x_{t-1} \mid x_t)$ with the posterior $q(x_{t-1} \mid x_t, x_0)$ of
# notebook 01, and with the $\epsilon$-parameterisation (eq. 11) each term becomes a weighted squared error between
# the true noise and the predicted one (eq. 12). Dropping the weights gives the **simplified objective** (eq. 14):
#
# $$L_\text{simple}(\theta) = \mathbb{E}_{t, x_0, \epsilon}\Big[\big\lVert \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0
#   + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big) \big\rVert^2\Big], \qquad t \sim \mathcal{U}\{1, \dots, T\},\
#   \epsilon \sim \mathcal{N}(0, I).$$
#
# The paper reports that this unweighted version trains better samples than the true bound: it down-weights the
# easy small-$t$ terms so that the network spends its capacity on the harder large-$t$ denoising. Training is then
# **Algorithm 1**:
#
# > **repeat**  $x_0 \sim q(x_0)$;  $t \sim \mathrm{Uniform}(\{1, \dots, T\})$;  $\epsilon \sim \mathcal{N}(0, I)$;
# > take a gradient step on $\nabla_\theta \lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon, t)\rVert^2$
# > **until** converged
#
# We average the squared error over pixels rather than summing it (as the official code does): the gradient
# direction is the same, only its scale differs. Each example of a batch gets its own $t$ and $\epsilon$.
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
# the EMA starts as an exact copy of the weights
assert all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(state0.model, eqx.is_array)),
                                                        jax.tree_util.tree_leaves(eqx.filter(state0.ema, eqx.is_array))))

# %% [markdown]
# Lines 2–5 of Algorithm 1, for a batch, written inline. `t` is 0-indexed in code (see notebook 01), so
# `randint(0, T)` draws the paper's $t \in \{1, \dots, T\}$. Dropout needs a key per example.

# %%
def loss_inline(model, x0, key):
    """L_simple (eq. 14) for a batch x0 of shape (B, H, W, C) in [-1, 1]."""
    B = x0.shape[0]
    k_t, k_eps, k_drop = jax.random.split(key, 3)
    t = jax.random.randint(k_t, (B,), 0, T)  # t ~ Uniform{1..T}
    eps = jax.random.normal(k_eps, x0.shape)  # eps ~ N(0, I)
    abar = schedule.alphas_cumprod[t][:, None, None, None]  # (B, 1, 1, 1)
    x_t = jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * eps  # eq. 4
    eps_pred = jax.vmap(lambda x, s, k: model(x, s, key=k))(x_t, t, jax.random.split(k_drop, B))
    return jnp.mean((eps - eps_pred) ** 2)  # eq. 14, averaged over pixels and the batch


@eqx.filter_jit
def check_losses(model, x0, key):
    """Our loss, the package's, and the untrained model's noise prediction for four images."""
    eps_pred = jax.vmap(model)(x0[:4], jnp.arange(4))
    return loss_inline(model, x0, key), train.batch_loss(model, schedule, x0, key), eps_pred


x0 = to_model_range(data[:128])  # (128, 8, 8, 1) in [-1, 1]
key = jax.random.key(1)
loss_ours, loss_pkg, eps_at_init = check_losses(state0.model, x0, key)
print(f"L_simple at initialisation: {float(loss_ours):.4f} (inline), {float(loss_pkg):.4f} (package)")

# %%
np.testing.assert_allclose(loss_ours, loss_pkg, rtol=1e-5)  # the same random t, eps and dropout keys
# The UNet's last convolution starts at (almost) zero (notebook 03), so eps_theta ~ 0 and the loss starts at
# E[eps^2] = 1.
assert float(jnp.abs(eps_at_init).max()) < 1e-3
assert abs(float(loss_ours) - 1.0) < 0.1  # 8192 squared normals: their mean is 1 +- 0.016

# %% [markdown]
# ## 2. One training step, one jitted function
#
# A training step draws a batch, computes the loss and its gradient, clips the gradient's global norm to 1,
# applies Adam (learning rate warmed up linearly, as the paper's 5000 warmup steps) and updates the EMA of the weights
# (section 3). `train.make_train_step(config)` returns all of that as **one** `eqx.filter_jit` function
# `step(data, state) -> (state, metrics)`. The `TrainState` holds everything that changes (weights, EMA, Adam's
# moments, the step counter and the PRNG key), so the step is a pure function, and the old state is *donated*: XLA
# may write the new weights into the old ones' memory (so copy a state before a step if you still need it).
#
# Why one jit? Written as separately jitted pieces (batch, loss + gradient, optimiser, EMA), the same computation
# crosses the Python/device boundary four times per step: each call flattens the model's pytree, dispatches, and
# materialises its outputs, and XLA cannot fuse the optimiser's element-wise updates with the EMA's. Here are the
# pieces, written inline; the next cell checks that they compute exactly the package's step.

# %%
optimizer = train.make_optimizer(config)  # clip_by_global_norm(1.0), then Adam with linear warmup


def copy_tree(tree):
    """A copy of every array in a pytree: the train step donates its input state."""
    return jax.tree_util.tree_map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, tree)


@eqx.filter_jit
def piece_batch(data, raw_key):
    key, k_batch, k_loss = jax.random.split(jax.random.wrap_key_data(raw_key), 3)
    return get_batch(k_batch, data, tc.batch_size, tc.random_flip), k_loss, jax.random.key_data(key)


@eqx.filter_jit
def piece_grad(model, x0, k_loss):
    return eqx.filter_value_and_grad(train.batch_loss)(model, schedule, x0, k_loss)


@eqx.filter_jit
def piece_adam(model, grads, opt_state):
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
    return eqx.apply_updates(model, updates), opt_state


@eqx.filter_jit
def piece_ema(ema, model):
    return train.ema_update(ema, model, tc.ema_decay)


def split_step(data, state):
    """Algorithm 1, one step, as four separately jitted calls."""
    x0, k_loss, next_key = piece_batch(data, state.key)
    loss, grads = piece_grad(state.model, x0, k_loss)
    model, opt_state = piece_adam(state.model, grads, state.opt_state)
    ema = piece_ema(state.ema, model)
    return train.TrainState(model, ema, opt_state, state.step + 1, next_key), loss


train_step = train.make_train_step(config)  # the package's: ONE jitted function
fused, split = copy_tree(state0), copy_tree(state0)
fused_losses, split_losses = [], []
for _ in range(3):  # (the warmup makes step 1's learning rate 0: compare a few steps)
    fused, metrics = train_step(data, fused)
    split, split_loss = split_step(data, split)
    fused_losses.append(float(metrics["loss"]))
    split_losses.append(float(split_loss))
print(f"losses, one jit: {np.round(fused_losses, 5)}; four pieces: {np.round(split_losses, 5)}")
print(f"the step also reports: {sorted(metrics)}")

# %%
def max_abs_diff(a, b):
    """The largest difference between the floating-point leaves of two pytrees."""
    la = jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_inexact_array))
    lb = jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_inexact_array))
    assert len(la) == len(lb)
    return max(float(jnp.abs(x - y).max()) for x, y in zip(la, lb))


np.testing.assert_allclose(fused_losses, split_losses, rtol=1e-5)
assert max_abs_diff(fused.model, split.model) < 1e-5 and max_abs_diff(fused.ema, split.ema) < 1e-5
assert max_abs_diff(fused.model, state0.model) > 1e-5  # the weights did move
assert int(fused.step) == int(split.step) == 3 and bool(jnp.array_equal(fused.key, split.key))

# %% [markdown]
# Now time them: the same number of steps each, after both are compiled. `block_until_ready` waits for the device,
# since JAX dispatches work asynchronously.

# %%
def seconds_per_step(step_fn, state, n):
    state, _ = step_fn(data, state)  # warm up (both are compiled already; this also fills caches)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(n):
        state, _ = step_fn(data, state)
    jax.block_until_ready(state)
    return (time.perf_counter() - start) / n, state


n_time = 10 if SMOKE else 20
t_fused, fused_after = seconds_per_step(train_step, fused, n_time)
t_split, split_after = seconds_per_step(split_step, split, n_time)
print(f"one jit: {1e3 * t_fused:.1f} ms/step; four jitted pieces: {1e3 * t_split:.1f} ms/step "
      f"({t_split / t_fused:.2f}x) on {BACKEND}")

fig, ax = plt.subplots(figsize=(6, 2))
ax.barh(["four jitted pieces", "one jit"], [1e3 * t_split, 1e3 * t_fused], color=["C1", "C0"])
ax.set(xlabel="ms per training step", title=f"the same step, {config.name} preset, batch {tc.batch_size}, {BACKEND}")
plt.show()

# %%
# Timings depend on the machine, so they are printed, not asserted. What must hold: both timed the same work.
assert int(fused_after.step) == int(split_after.step) == 3 + 1 + n_time
assert max_abs_diff(fused_after.model, split_after.model) < 1e-4

# %% [markdown]
# How large the gap is depends on the backend and the model. The pieces pay a fixed cost per call (flattening the
# model's pytree, dispatching, handing buffers back to Python) four times per step instead of once, XLA cannot fuse
# across them (Adam's element-wise update and the EMA become separate passes over the weights), and the old weights
# cannot be donated. On a CPU with a small model a step is mostly arithmetic, so the two can come out close (as
# above, perhaps); on a GPU or TPU, where the same step takes well under a millisecond, the fixed costs are a large
# share of it. One jit region costs nothing and can save much, and it is what lets the next sections put many steps
# into one `lax.scan`.
#
# ## 3. The exponential moving average of the weights
#
# After every step the package updates a second copy of the weights,
#
# $$\bar\theta \leftarrow d\,\bar\theta + (1-d)\,\theta, \qquad \bar\theta_0 = \theta_0,$$
#
# with decay $d$ = 0.9999 in the paper (`ema_decay` in the config above: a run of a few thousand steps needs a
# shorter window). The samples are drawn with $\bar\theta$. Unrolled,
# after $n$ steps
#
# $$\bar\theta_n = d^{\,n}\,\theta_0 + (1-d)\sum_{k=1}^{n} d^{\,n-k}\,\theta_k,$$
#
# a weighted average of the recent weights with weights that sum to 1, over a window of about $1/(1-d)$ steps. SGD
# with a constant learning rate keeps jittering around a good solution; the average sits closer to its middle, so
# the EMA weights usually give better samples than the last iterate of the same run (section 7 compares them). The
# paper uses the EMA for all its samples. Let us check the closed form against a few real steps.

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
assert abs(d**n_ema + (1 - d) * sum(d ** (n_ema - k) for k in range(1, n_ema + 1)) - 1.0) < 1e-12  # weights sum to 1
assert max_abs_diff(state.ema, state.model) > 1e-5  # the average lags behind the weights

# %% [markdown]
# ## 4. K steps in one `lax.scan`
#
# Even one jitted step returns to Python after every step. `train.make_train_steps(config, K)` puts K steps inside
# one jitted `jax.lax.scan`: the loop runs on the device, batches are drawn there from the dataset in device
# memory, and the per-step metrics come back stacked, `(K,)` each. `fit` (section 6) uses it with
# `K = config.train.steps_per_call`. A Python `for` loop inside `jit` would be unrolled into K copies of the step
# (long compiles); `scan` compiles the body once.
#
# It must compute exactly what K single steps compute:

# %%
K = tc.steps_per_call
train_steps = train.make_train_steps(config, K)
loop_state, loop_losses = copy_tree(state0), []
for _ in range(K):
    loop_state, m = train_step(data, loop_state)
    loop_losses.append(m["loss"])
scan_state, scan_metrics = train_steps(data, copy_tree(state0))
print(f"K = {K}: metrics {jax.tree_util.tree_map(jnp.shape, scan_metrics)}, "
      f"largest weight difference {max_abs_diff(loop_state, scan_state):.1e}")

# %%
np.testing.assert_allclose(scan_metrics["loss"], jnp.stack(loop_losses), rtol=1e-4, atol=1e-6)
assert max_abs_diff(loop_state.model, scan_state.model) < 1e-4 and max_abs_diff(loop_state.ema, scan_state.ema) < 1e-4
assert int(scan_state.step) == int(loop_state.step) == K

# %% [markdown]
# What does it save? Time both on your backend, K steps each (after compiling).

# %%
def time_k_steps(fn, state, repeats=2):
    """Seconds per step of fn(state) -> state, which runs K steps (best of `repeats`), and the final state."""
    state = jax.block_until_ready(fn(state))  # warm up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        state = jax.block_until_ready(fn(state))
        best = min(best, (time.perf_counter() - start) / K)
    return best, state


def python_loop(state):
    for _ in range(K):
        state, _ = train_step(data, state)
    return state


t_loop, loop_after = time_k_steps(python_loop, loop_state)
t_scan, scan_after = time_k_steps(lambda s: train_steps(data, s)[0], scan_state)
print(f"{config.name}, batch {tc.batch_size}, K = {K} on {BACKEND}: Python loop {1e3 * t_loop:.1f} ms/step, "
      f"lax.scan {1e3 * t_scan:.1f} ms/step ({t_loop / t_scan:.2f}x)")

# %%
# Both ran the same 4K steps from the same state, and still agree.
assert int(loop_after.step) == int(scan_after.step) == 4 * K
assert max_abs_diff(loop_after.model, scan_after.model) < 1e-4

# %% [markdown]
# The scan saves K−1 returns to Python per call and lets XLA keep the state in place between steps. On a GPU or
# TPU, where a small model's step is short, that is a large share of the time; on a CPU the step itself dominates.
# That the scan is *not slower* on a CPU took some work, which is the next section.
#
# ## 5. Loops on XLA:CPU: channels first or last, convolution or matmul
#
# A loop body is compiled differently from a top-level function, and XLA:CPU has a known weakness there
# ([jax-ml/jax#12868](https://github.com/jax-ml/jax/issues/12868), still open): inside a `scan`/`while` body, a
# convolution, and above all the *weight gradient* of a convolution, which training needs, falls off the fast path.
# Notebook 03 timed a forward convolution; here is the training case. Each form below takes gradient steps
# $w \leftarrow w - \eta\,\nabla_w \lVert \mathrm{conv}(x, w) - x \rVert^2$ on one 3×3 convolution, K times,
# as a Python loop over a jitted step and as one `lax.scan`:
#
# - XLA's convolution, channels-first `(N, C, H, W)` (PyTorch's and Equinox's layout);
# - XLA's convolution, channels-last `(N, H, W, C)` (ours);
# - the same channels-last convolution as **one matmul** (im2col, as `nanoddpm_utils.layers.conv2d_matmul`:
#   stack the 9 shifted copies of the image along channels, multiply by the weights reshaped to $(9C, C)$), which the
#   package uses on CPU (`conv_impl="auto"`).

# %%
def conv_fn(form):
    """A batched 3x3 'SAME' convolution x, w -> y in one of three forms."""
    if form == "native, channels-first":
        return lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    if form == "native, channels-last":
        return lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return lambda x, w: jax.vmap(lambda xi: conv2d_matmul(xi, w, 1))(x)  # im2col: one matmul per image


def conv_training(form, batch, size, ch, steps):
    """Seconds per gradient step in a Python loop and inside lax.scan, and both final weights (channels-last)."""
    kx, kw = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, (batch, size, size, ch))
    w = jax.random.normal(kw, (3, 3, ch, ch)) / (3 * ch**0.5)  # HWIO
    first = form == "native, channels-first"
    if first:
        x, w = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)  # NCHW, OIHW
    conv = conv_fn(form)

    def step(w):
        return w - 0.1 * jax.grad(lambda w: jnp.mean((conv(x, w) - x) ** 2))(w)

    one = jax.jit(step)
    many = jax.jit(lambda w: jax.lax.scan(lambda w, _: (step(w), None), w, length=steps)[0])
    one(w).block_until_ready(), many(w).block_until_ready()  # compile both
    start = time.perf_counter()
    w_loop = w
    for _ in range(steps):
        w_loop = one(w_loop)
    w_loop.block_until_ready()
    t_loop = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    w_scan = many(w).block_until_ready()
    t_scan = (time.perf_counter() - start) / steps
    if first:
        w_loop, w_scan = w_loop.transpose(2, 3, 1, 0), w_scan.transpose(2, 3, 1, 0)  # back to HWIO
    return t_loop, t_scan, w_loop, w_scan


sizes = dict(batch=8, size=8, ch=32, steps=5) if SMOKE else dict(batch=32, size=16, ch=64, steps=5)
forms = ["native, channels-first", "native, channels-last", "im2col matmul, channels-last"]
conv_results = {form: conv_training(form, **sizes) for form in forms}
print(f"one 3x3 conv, {sizes}, on {BACKEND}:")
print(f"{'form':32}{'Python loop':>14}{'lax.scan':>12}{'scan / loop':>13}")
for form, (t_loop_c, t_scan_c, _, _) in conv_results.items():
    print(f"{form:32}{1e3 * t_loop_c:>11.2f} ms{1e3 * t_scan_c:>9.2f} ms{t_scan_c / t_loop_c:>12.1f}x")

fig, ax = plt.subplots(figsize=(8, 2.8))
ypos = np.arange(len(forms))
ax.barh(ypos + 0.2, [1e3 * conv_results[f][0] for f in forms], 0.4, label="Python loop over a jitted step")
ax.barh(ypos - 0.2, [1e3 * conv_results[f][1] for f in forms], 0.4, label="inside one lax.scan")
ax.set(yticks=ypos, yticklabels=forms, xscale="log", xlabel="ms per gradient step (log scale)",
       title=f"the weight gradient of a convolution, in and out of a loop ({BACKEND})")
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# All forms and both loop styles take the same gradient steps (the timings are printed, not asserted). On a GPU or
# TPU, float32 matmuls and convolutions run with reduced-precision (TF32 / bfloat16) passes by default, so two
# *different* forms of the same convolution agree to about 1e-2 there, to about 1e-6 on a CPU.
tol = 1e-4 if BACKEND == "cpu" else 3e-2
reference = conv_results[forms[1]][2]
for form, (_, _, w_loop, w_scan) in conv_results.items():
    np.testing.assert_allclose(w_loop, reference, rtol=tol, atol=tol / 10)
    np.testing.assert_allclose(w_scan, reference, rtol=tol, atol=tol / 10)

# %% [markdown]
# On a CPU the native convolution's rows show the problem: in the loop body its weight gradient runs 10–100×
# slower than the very same step called from Python, in either layout (measured on a 2-core machine at the full
# sizes: 16 ms per step called from Python, 1.9 s inside `scan`). The matmul form is slower than the native one
# when called alone, but it stays fast inside `scan` (matmuls are on XLA:CPU's fast path everywhere). So on a CPU
# the package picks the matmul (`conv_impl="auto"` → `"matmul"`), and on a GPU or TPU XLA's convolution
# (`"xla"`), where neither problem exists; `bench/bench_train_loop.py` measures the whole UNet both ways.
# Channels-last is also the TPU's native layout, which is why the whole course keeps images `(H, W, C)`.
#
# ## 6. Training the digits model, live
#
# `train.fit` runs the loop for real: `steps_per_call` steps per `lax.scan` call, a `tqdm` progress bar, and every
# `log_every` steps one row of metrics (mean loss, gradient norm, learning rate, images per second), handed to a
# callback `on_log(step, row)` (here: a live loss curve) and to a tracker. With a `run_dir` it also writes sample
# grids and checkpoints.
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

# %%
assert wandb_mode in ("online", "offline", "disabled")
if not os.environ.get("WANDB_API_KEY") and not os.environ.get("WANDB_MODE"):
    assert wandb_mode == "offline"  # no key: offline, never a login prompt

# %% [markdown]
# The run goes to `runs/digits` (beside this notebook; notebook 05 samples from it). If it already holds a
# checkpoint, training **resumes** from it (and does nothing if it is finished): delete the folder to train again
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
assert 0 <= int(state.step) <= tc.steps and state.model.config == config.model

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
print(f"{len(history)} log rows in {time.perf_counter() - start:.0f} s; W&B mode: {tracker_mode}")

# %%
assert int(state.step) == tc.steps
assert checkpoint.latest(RUN_DIR) is not None and (RUN_DIR / "config.json").exists()
assert live_rows == history  # on_log saw every row fit returned
assert all(np.isfinite(r["loss"]) for r in history)

# %% [markdown]
# What the tracker wrote: one JSON line per log row in `metrics.jsonl` (the run's numbers never depend on W&B),
# and, unless W&B is disabled, W&B's own files under `wandb/`.

# %%
for path in sorted(RUN_DIR.iterdir()):
    print(f"{path.name}{'/' if path.is_dir() else ''}")
rows = read_metrics(RUN_DIR)
print(*(RUN_DIR / "metrics.jsonl").read_text().splitlines()[:3], sep="\n")

steps_logged = np.array([r["step"] for r in rows])
losses = np.array([r["loss"] for r in rows])
fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
axes[0].plot(steps_logged, losses, ".-")
axes[0].set(xlabel="step", ylabel=r"$L_\mathrm{simple}$", yscale="log", title="loss (from metrics.jsonl)")
axes[1].plot(steps_logged, [r["lr"] for r in rows], label="learning rate")
axes[1].set(xlabel="step", title="learning rate: linear warmup, then constant")
fig.tight_layout()
plt.show()

# %%
if history:  # (empty when a finished run was resumed)
    assert rows[-len(history):] == history  # metrics.jsonl holds exactly what fit logged
assert rows[-1]["step"] == tc.steps
assert losses[-1] < 0.8 * losses[0], (losses[0], losses[-1])  # the loss falls
np.testing.assert_allclose(rows[-1]["lr"], tc.lr, rtol=1e-6)  # warmup is over

# %% [markdown]
# ## 7. Samples, with and without the EMA
#
# Notebook 05 derives the sampler; here we just use it (`sample.sample_images`, the paper's Algorithm 2 with all
# $T$ steps). Both grids start from the **same** noise and draw the same random numbers, so any difference comes
# from the weights alone: the last iterate $\theta$ on the left, its moving average $\bar\theta$ on the right.

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

# %%
for imgs in (raw_samples, ema_samples):
    assert imgs.shape == (num, 8, 8, 1) and bool(jnp.all(jnp.isfinite(imgs)))
assert float(jnp.abs(raw_samples - ema_samples).max()) > 0  # different weights, different samples

# %% [markdown]
# The model never saw these images: they are 8×8 digits drawn from noise. How good are they? A small classifier
# trained on real digits judges them (`nanoddpm_utils.evaluate`): how confidently it recognises each sample
# (confidence), whether all ten digits appear (coverage, in nats: $\log 10 \approx 2.30$ is all ten equally often)
# and the Fréchet distance between the classifier's features of samples and of real digits (lower is better),
# next to real digits the classifier never saw (the best one can do) and uniform noise.
#
# A Fréchet distance depends on how many images it is computed from: a 64-dimensional covariance estimated from 64
# images is poor, which inflates the distance (the trained digits preset scores about 2-3 from 64 samples, about 0.6
# from 360). So the table scores the real digits on sets of the same size as the samples, 64 here: compare rows, not
# these numbers with the README's, which come from 360 samples (notebook 07 says more).

# %%
tables = {name: digits_quality_table(to_uint8(imgs)) for name, imgs in (("last weights", raw_samples),
                                                                       ("EMA", ema_samples))}
for name, table in tables.items():
    print(f"--- {name}\n{format_table(table)}")
print(f"Frechet distance to real digits: last weights {tables['last weights']['samples']['frechet']:.2f}, "
      f"EMA {tables['EMA']['samples']['frechet']:.2f} (lower is better)")

# %%
for table in tables.values():
    # the judge is sane: real digits are far closer to real digits than noise is
    assert table["real (held out)"]["frechet"] < table["noise"]["frechet"]
if not SMOKE:  # a trained model: EMA samples are real-looking digits, closer to the data than noise by far
    ema_row = tables["EMA"]["samples"]
    assert ema_row["frechet"] < 0.5 * tables["EMA"]["noise"]["frechet"] and ema_row["classes_present"] >= 8

# %% [markdown]
# ## Summary
#
# - $L_\text{simple}$ (eq. 14) is a mean squared error between the noise that was added and the noise the network
#   predicts, at a random $t$ per example: Algorithm 1 is "noise a batch, regress the noise".
# - The whole step (batch, loss, gradient, clipping, Adam, EMA) is one jitted, pure function of a `TrainState`;
#   split into separately jitted pieces it computes the same thing, slower.
# - The EMA $\bar\theta_n = d^n\theta_0 + (1-d)\sum_k d^{n-k}\theta_k$ averages the recent weights; sample with it.
# - `make_train_steps` runs K steps in one `lax.scan`, equal to K single steps; on XLA:CPU that only stays fast
#   because convolutions are computed as matmuls (jax-ml/jax#12868).
# - `fit` trains with a progress bar, logs to `metrics.jsonl` and W&B (offline without a key), writes samples and
#   checkpoints, and resumes from them.
#
# We sampled with `sample.sample_images` as a black box. Next, we derive it.
#
# **Next:** [05 — The reverse process: sampling](05_reverse_sampler.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/05_reverse_sampler.ipynb)
