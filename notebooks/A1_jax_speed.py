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
# # A1 — Appendix: making the JAX code fast
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/A1_jax_speed.ipynb)
#
# An appendix to **nanoJaxDDPM**. The main notebooks teach diffusion; this one collects the engineering choices
# behind the package's speed, each as an experiment you run on your own machine:
#
# 1. the whole training step as **one** jitted function, against the same step split into jitted pieces;
# 2. K training steps inside one `jax.lax.scan`, against a Python loop over the jitted step;
# 3. the sampler (Algorithm 2) as one `lax.scan`, against a Python loop;
# 4. convolutions inside a loop on XLA:CPU: channels-first or channels-last, XLA's convolution or a matmul
#    (im2col), and the open issue [jax-ml/jax#12868](https://github.com/jax-ml/jax/issues/12868);
# 5. buffer donation: the training step writes the new state into the old state's memory;
# 6. the persistent compilation cache: compiled programs kept on disk, so a restarted kernel skips compiling;
# 7. how the package compares with a PyTorch implementation of the same model.
#
# Every timing below is measured live, in the cell, on whatever you run it on (a laptop CPU, a Colab GPU or TPU),
# and every comparison first checks that both forms computed the same numbers: a faster wrong answer is no answer.
# Timings vary from run to run and machine to machine, so they are printed and plotted, not asserted.

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

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from nanoddpm_utils import sample, train
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import get_batch, load_digits
from nanoddpm_utils.layers import conv2d_matmul
from nanoddpm_utils.state import TrainState, init_state, make_optimizer

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
BACKEND = jax.default_backend()
print(f"jax {jax.__version__} on {BACKEND} ({jax.devices()[0].device_kind}); smoke mode: {SMOKE}")

config = get_preset("smoke" if SMOKE else "digits")
tc, T = config.train, config.diffusion.num_timesteps
schedule = train.schedule_for(config)
data = jnp.asarray(load_digits("train"))  # uint8 (1437, 8, 8, 1), on the device
state0 = init_state(config, tc.seed)


def copy_tree(tree):
    """A copy of every array in a pytree: the package's train step donates (reuses) its input state."""
    return jax.tree_util.tree_map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, tree)


def max_abs_diff(a, b):
    """The largest difference between the floating-point leaves of two pytrees."""
    la = jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_inexact_array))
    lb = jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_inexact_array))
    assert len(la) == len(lb)
    return max(float(jnp.abs(x - y).max()) for x, y in zip(la, lb))


def bar_chart(labels, ms, title, xlabel="ms"):
    fig, ax = plt.subplots(figsize=(7, 1.0 + 0.45 * len(labels)))
    ax.barh(labels, ms, color=[f"C{i}" for i in range(len(labels))])
    ax.set(xlabel=xlabel, title=title)
    fig.tight_layout()
    plt.show()


print(f"{config.name} preset, batch {tc.batch_size}, T = {T}")

# %% [markdown]
# ## 1. One jit region for the whole training step
#
# A training step (notebook 04) draws a batch, computes $L_\text{simple}$ and its gradient, clips it, applies Adam
# and updates the EMA. `train.make_train_step(config)` returns all of it as one `eqx.filter_jit` function. Written
# as four separately jitted pieces, the same computation crosses the Python/device boundary four times per step:
# each call flattens the model's pytree, dispatches, and hands its outputs back; XLA cannot fuse Adam's
# element-wise update with the EMA's; and the old weights cannot be donated (reused in place).

# %%
optimizer = make_optimizer(config)


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
    """One training step as four separately jitted calls."""
    x0, k_loss, next_key = piece_batch(data, state.key)
    loss, grads = piece_grad(state.model, x0, k_loss)
    model, opt_state = piece_adam(state.model, grads, state.opt_state)
    ema = piece_ema(state.ema, model)
    return TrainState(model, ema, opt_state, state.step + 1, next_key), {"loss": loss}


def seconds_per_step(step_fn, state, n):
    """Mean seconds per call of step_fn over n calls (after one warm-up call), and the final state."""
    state, _ = step_fn(data, state)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(n):
        state, _ = step_fn(data, state)
    jax.block_until_ready(state)  # JAX dispatches asynchronously: wait for the device before stopping the clock
    return (time.perf_counter() - start) / n, state


train_step = train.make_train_step(config)  # the package's: one jitted function
n_time = 5 if SMOKE else 20
t_fused, fused = seconds_per_step(train_step, copy_tree(state0), n_time)
t_split, split = seconds_per_step(split_step, copy_tree(state0), n_time)
print(f"one jit: {1e3 * t_fused:.1f} ms/step; four jitted pieces: {1e3 * t_split:.1f} ms/step "
      f"({t_split / t_fused:.2f}x) on {BACKEND}")
bar_chart(["four jitted pieces", "one jit"], [1e3 * t_split, 1e3 * t_fused],
          f"the same training step, {config.name}, batch {tc.batch_size}, {BACKEND}", "ms per step")

# %%
# Both ran the same n_time + 1 steps from the same state and key: the same weights, EMA and key.
assert int(fused.step) == int(split.step) == n_time + 1
assert max_abs_diff(fused.model, split.model) < 1e-4 and max_abs_diff(fused.ema, split.ema) < 1e-4
assert bool(jnp.array_equal(fused.key, split.key))
assert max_abs_diff(fused.model, state0.model) > 1e-4  # and they did train

# %% [markdown]
# How large the gap is depends on the backend and the model. On a CPU with a small model a step is mostly
# arithmetic, so the two can come out close; on a GPU or TPU, where a step of this model takes well under a
# millisecond, the fixed cost of each call is a large share of it. One jit region costs nothing and can save much,
# and it is what lets the next section put many steps in one `lax.scan`.
#
# ## 2. K training steps in one `lax.scan`
#
# Even one jitted step returns to Python after every step. `train.make_train_steps(config, K)` puts K steps inside
# one jitted `jax.lax.scan`: the loop runs on the device, batches are drawn there, the state stays in device memory
# between steps, and the per-step metrics come back stacked. (A Python `for` loop *inside* `jit` would be unrolled
# into K copies of the step: long compiles. `scan` compiles the body once.) `train.fit` uses it with
# `K = steps_per_call`.

# %%
K = tc.steps_per_call
train_steps = train.make_train_steps(config, K)


def time_k_steps(fn, state, repeats=2):
    """Seconds per step of fn(state) -> state, which runs K steps (best of `repeats`, after a warm-up)."""
    state = jax.block_until_ready(fn(state))
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


t_loop, loop_after = time_k_steps(python_loop, copy_tree(state0))
t_scan, scan_after = time_k_steps(lambda s: train_steps(data, s)[0], copy_tree(state0))
print(f"K = {K} on {BACKEND}: Python loop {1e3 * t_loop:.1f} ms/step, lax.scan {1e3 * t_scan:.1f} ms/step "
      f"({t_loop / t_scan:.2f}x)")
bar_chart(["Python loop over the jitted step", "one lax.scan"], [1e3 * t_loop, 1e3 * t_scan],
          f"K = {K} training steps, {config.name}, {BACKEND}", "ms per step")

# %%
# Both ran the same 3K steps from the same state: the same weights.
assert int(loop_after.step) == int(scan_after.step) == 3 * K
assert max_abs_diff(loop_after.model, scan_after.model) < 1e-4
assert max_abs_diff(loop_after.ema, scan_after.ema) < 1e-4

# %% [markdown]
# The scan saves K−1 returns to Python per call. On a GPU or TPU, where a small model's step is short, that is a
# large share of the time; on a CPU the step itself dominates, and the scan is only *not slower* because of the
# convolution form chosen in section 4.
#
# ## 3. The sampler: one `lax.scan` over $T$ steps
#
# Sampling (Algorithm 2, notebook 05) calls the network $T$ times in sequence. `sample.p_sample_loop` runs the $T$
# reverse steps as one `lax.scan` inside one jitted function; here is the same chain as a Python loop over a jitted
# reverse step, drawing the same random numbers (the package folds $t$ into the key at each step).

# %%
@eqx.filter_jit
def reverse_step(model, x, t, keys):
    return jax.vmap(lambda xi, k: sample.p_sample(model, schedule, xi, t, k))(x, keys)


def p_sample_loop_python(model, key, shape):
    k_init, k_loop = jax.random.split(key)
    x = jax.random.normal(k_init, shape)  # x_T
    for t in range(T - 1, -1, -1):
        x = reverse_step(model, x, jnp.asarray(t), jax.random.split(jax.random.fold_in(k_loop, t), shape[0]))
    return x


def timed(fn):
    """(seconds of one call of fn after a warm-up call, its result)."""
    jax.block_until_ready(fn())
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - start, out


# a model that has trained a little, so that its noise prediction is not ~0
sampler_model = eqx.nn.inference_mode(train_steps(data, copy_tree(state0))[0].model)
n_img = 16 if SMOKE else 64
shape, key = (n_img, 8, 8, 1), jax.random.key(5)
t_python, x_python = timed(lambda: p_sample_loop_python(sampler_model, key, shape))
t_scan_s, x_scan = timed(lambda: sample.p_sample_loop(sampler_model, schedule, key, shape))
print(f"{n_img} samples, T = {T}, on {BACKEND}: Python loop {t_python:.2f} s ({1e3 * t_python / T:.2f} ms/step), "
      f"lax.scan {t_scan_s:.2f} s ({1e3 * t_scan_s / T:.2f} ms/step): {t_python / t_scan_s:.2f}x")
bar_chart(["Python loop", "one lax.scan"], [t_python, t_scan_s], f"{n_img} samples, T = {T}, {BACKEND}", "seconds")

# %%
# The same chain: the same images, step for step (float32 rounding differs a little between the two programs).
np.testing.assert_allclose(x_python, x_scan, atol=1e-3)

# %% [markdown]
# ## 4. Convolutions inside a loop on XLA:CPU
#
# A loop body is compiled differently from a top-level function, and XLA:CPU has a known weakness there
# ([jax-ml/jax#12868](https://github.com/jax-ml/jax/issues/12868), open): inside a `scan`/`while` body a
# convolution can fall off the fast path. It was reported for channels-first forward convolutions.
#
# ### 4a. The forward convolution: channels-first against channels-last
#
# Apply one 3×3 convolution $n$ times, as $n$ separate calls and as a `lax.scan` whose body is the convolution,
# in each layout: `(N, C, H, W)` (PyTorch's and Equinox's) and `(N, H, W, C)` (the package's).

# %%
def conv_timings(layout, batch, size, channels, steps):
    """Seconds per convolution, called alone and inside a lax.scan, for 'NCHW' or 'NHWC'; both outputs (NHWC)."""
    kx, kw = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, (batch, size, size, channels))
    w = jax.random.normal(kw, (3, 3, channels, channels)) / (3 * channels**0.5)  # HWIO
    dims = ("NHWC", "HWIO", "NHWC")
    if layout == "NCHW":
        x, w, dims = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1), ("NCHW", "OIHW", "NCHW")

    def apply(h):
        return jax.lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=dims)

    alone = jax.jit(apply)
    scanned = jax.jit(lambda h: jax.lax.scan(lambda c, _: (apply(c), None), h, length=steps)[0])
    alone(x).block_until_ready(), scanned(x).block_until_ready()  # compile both first
    start = time.perf_counter()
    out_alone = x
    for _ in range(steps):
        out_alone = alone(out_alone)
    out_alone.block_until_ready()
    t_alone = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    out_scan = scanned(x).block_until_ready()
    t_scan = (time.perf_counter() - start) / steps
    if layout == "NCHW":
        out_alone, out_scan = out_alone.transpose(0, 2, 3, 1), out_scan.transpose(0, 2, 3, 1)
    return t_alone, t_scan, out_alone, out_scan


shape_fwd = dict(batch=2, size=16, channels=32, steps=3) if SMOKE else dict(batch=8, size=32, channels=64, steps=10)
fwd = {layout: conv_timings(layout, **shape_fwd) for layout in ("NCHW", "NHWC")}
for layout, (ta, ts, _, _) in fwd.items():
    print(f"{layout}: {1e3 * ta:7.2f} ms per conv alone, {1e3 * ts:7.2f} ms inside lax.scan ({ts / ta:.1f}x)")

# %%
# All four computed the same n convolutions in a row (NCHW against NHWC, alone against scanned).
ref = fwd["NHWC"][2]
for layout, (_, _, out_alone, out_scan) in fwd.items():
    np.testing.assert_allclose(out_alone, ref, rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(out_scan, ref, rtol=2e-3, atol=1e-4)

# %% [markdown]
# ### 4b. Training: the weight gradient, and the matmul form
#
# Training needs the gradient with respect to the weights, and that is where the loop hurts most on XLA:CPU, in
# either layout. Each form below takes gradient steps $w \leftarrow w - \eta\,\nabla_w \lVert \mathrm{conv}(x, w) -
# x \rVert^2$ on one 3×3 convolution, K times, as a Python loop over a jitted step and as one `lax.scan`:
#
# - XLA's convolution, channels-first;
# - XLA's convolution, channels-last;
# - the channels-last convolution as **one matmul** (im2col: stack the 9 shifted copies of the image along the
#   channel axis, multiply by the weights reshaped to $(9C, C)$; `nanoddpm_utils.layers.conv2d_matmul`).

# %%
def conv_fn(form):
    """A batched 3x3 'SAME' convolution x, w -> y in one of three forms."""
    if form == "XLA conv, channels-first":
        return lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    if form == "XLA conv, channels-last":
        return lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return lambda x, w: jax.vmap(lambda xi: conv2d_matmul(xi, w, 1))(x)  # im2col: one matmul per image


def conv_training(form, batch, size, ch, steps):
    """Seconds per gradient step in a Python loop and inside lax.scan, and both final weights (HWIO)."""
    kx, kw = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, (batch, size, size, ch))
    w = jax.random.normal(kw, (3, 3, ch, ch)) / (3 * ch**0.5)  # HWIO
    first = form == "XLA conv, channels-first"
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
forms = ["XLA conv, channels-first", "XLA conv, channels-last", "im2col matmul, channels-last"]
conv_results = {form: conv_training(form, **sizes) for form in forms}
print(f"one 3x3 conv, {sizes}, on {BACKEND}:")
print(f"{'form':32}{'Python loop':>14}{'lax.scan':>12}{'scan / loop':>13}")
for form, (tl, ts, _, _) in conv_results.items():
    print(f"{form:32}{1e3 * tl:>11.2f} ms{1e3 * ts:>9.2f} ms{ts / tl:>12.1f}x")

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
# All forms and both loop styles took the same gradient steps. On a GPU or TPU, float32 matmuls and convolutions
# run with reduced-precision (TF32 / bfloat16) passes by default, so two *different* forms of the same convolution
# agree to about 1e-2 there, to about 1e-6 on a CPU.
tol = 1e-4 if BACKEND == "cpu" else 3e-2
reference = conv_results[forms[1]][2]
for form, (_, _, w_loop, w_scan) in conv_results.items():
    np.testing.assert_allclose(w_loop, reference, rtol=tol, atol=tol / 10)
    np.testing.assert_allclose(w_scan, reference, rtol=tol, atol=tol / 10)

# %% [markdown]
# On a CPU the XLA-convolution rows show the problem: inside the loop body its weight gradient runs many times
# slower than the very same step called from Python, in either layout. The matmul form can be slower than XLA's
# convolution when called alone, but it stays fast inside `scan` (matmuls are on XLA:CPU's fast path everywhere).
# So the package's `Conv2d` picks the matmul on a CPU (`conv_impl="auto"` → `"matmul"`) and XLA's convolution on a
# GPU or TPU (`"xla"`), where neither problem exists; the two are tested equal, values and gradients.
# `bench/bench_train_loop.py` measures the whole UNet both ways:
#
# ```bash
# python bench/bench_train_loop.py --preset digits --batch-size 128 --steps 10
# ```
#
# The package keeps images channels-last throughout (`(H, W, C)` per example): section 4a shows it is the layout
# whose forward convolution stays fast in a loop, and im2col stacks its shifted copies along the last axis.
#
# ## 5. Buffer donation
#
# A training step reads the state (weights, EMA, Adam's two moments: four copies of the weights) and returns a new
# one of the same shapes. Without help, XLA allocates the new state beside the old, and the old lives on until
# Python drops it: twice the memory at the peak, and fresh allocations at every step. `train.make_train_step`
# **donates** its state argument (`eqx.filter_jit(donate="all-except-first")`): XLA may write the outputs into the
# inputs' buffers, and JAX marks the donated arrays as deleted, so that nobody reads memory that now holds the new
# state. That is why the cells above copy `state0` (`copy_tree`) before each call: the step would otherwise consume
# it. Here is what donation does to one call:

# %%
def arrays(tree):
    return [x for x in jax.tree_util.tree_leaves(tree) if isinstance(x, jax.Array)]


state_in = copy_tree(state0)
pointers_in = {x.unsafe_buffer_pointer() for x in arrays(state_in)}  # where each input array lives in memory
state_out, _ = train_step(data, state_in)
deleted = sum(x.is_deleted() for x in arrays(state_in))
reused = sum(x.unsafe_buffer_pointer() in pointers_in for x in arrays(state_out))
print(f"{deleted} of the {len(arrays(state_in))} input arrays were donated (deleted); "
      f"{reused} of the {len(arrays(state_out))} output arrays live in their memory")
try:
    float(jnp.sum(arrays(state_in)[0]))
except RuntimeError as e:
    print("reading a donated array:", str(e).splitlines()[0])

# %%
assert deleted == len(arrays(state_in))  # the whole state was handed over ...
assert reused > len(arrays(state_out)) // 2  # ... and most of the new state was written in place

# %% [markdown]
# ## 6. The persistent compilation cache
#
# The first call of a jitted function traces it and has XLA compile it: seconds for this small model, minutes for
# the paper's UNet. The program is kept in memory for later calls, but a restarted kernel starts with nothing. JAX
# can also keep compiled programs in a **cache on disk**, keyed by the program, the device and the versions, and
# load them instead of compiling. Two settings turn it on: the folder, and the shortest compilation worth keeping
# (notebook 06 sets them for its long runs). Here it goes to a fresh folder: a cold compilation, then
# `jax.clear_caches()` empties the memory as a restart would, and the same step, built anew, is loaded from disk.

# %%
cache_dir = tempfile.mkdtemp(prefix="jax-cache-")
jax.config.update("jax_compilation_cache_dir", cache_dir)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # keep every program, for this experiment
cache_events = []  # JAX reports each cache lookup as an event: a miss (compile, then write) or a hit (load)
jax.monitoring.register_event_listener(lambda name, **kwargs: cache_events.append(name.split("/")[-1]))
step_copy = copy_tree(state0)


def first_call_seconds():
    """Seconds of the first call of a newly built training step (compile or load, then one step); cache events."""
    state = copy_tree(step_copy)  # (copying compiles small programs too: outside the count)
    n, start = len(cache_events), time.perf_counter()
    jax.block_until_ready(train.make_train_step(config)(data, state))
    return time.perf_counter() - start, cache_events[n:]


t_cold, events_cold = first_call_seconds()
jax.clear_caches()  # forget every compiled program held in memory, as a restarted kernel would
t_disk, events_disk = first_call_seconds()
jax.config.update("jax_compilation_cache_dir", None)  # no disk cache for the rest of this notebook
print(f"first call, compiled: {t_cold:.1f} s ({events_cold.count('cache_misses')} programs compiled and written); "
      f"after clearing the memory: {t_disk:.1f} s ({events_disk.count('cache_hits')} loaded from disk, "
      f"{events_disk.count('cache_misses')} compiled)")
print("programs on disk:", sorted({name.split("-")[0] for name in os.listdir(cache_dir)}))

# %%
assert any(name.startswith("jit_train_step") for name in os.listdir(cache_dir))  # the step's program was kept ...
assert events_disk.count("cache_hits") >= events_cold.count("cache_misses") >= 1  # ... and loaded, not compiled

# %% [markdown]
# ## 7. Against PyTorch
#
# `make bench` (`bench/run_all.py`) times the package's train step and sampler beside the model a PyTorch user
# would pick instead: diffusers' `UNet2DModel` in the same architecture (the same parameter count for every preset,
# 35,746,307 for `paper_cifar10`), doing the same work per step (batch, $q$-sample, forward, MSE on $\epsilon$,
# backward, clipping, Adam, EMA) and sampling through `DDPMScheduler`. It installs `torch` and `diffusers` into the
# project's environment first:
#
# ```bash
# make bench                                      # everything, minutes on a CPU
# python bench/bench_peer.py --help               # the PyTorch peer alone
# ```
#
# On a CPU, PyTorch's oneDNN convolutions outrun our im2col matmuls (which we need inside `lax.scan`, section 4);
# on a GPU or TPU the package uses XLA's convolutions. The tables measured so far, with the machine and the
# command, are in [docs/performance.md](../docs/performance.md), together with the XLA flags and other options
# tried on a CPU.
#
# ## Exercises
#
# 1. **Donation costs a copy when you keep the input.** Section 5's step consumed its input. Time 20 calls of
#    `train_step` on one state passed along (`state, _ = train_step(data, state)`) against 20 calls that keep
#    their input alive (`train_step(data, copy_tree(state))`). What does keeping the old state cost per step?
# 2. **Where the loop pays.** Rerun section 2 with `K` = 1, 5, 25 and 100 (`train.make_train_steps(config, K)`)
#    and plot ms per step against K. Where does the curve flatten on your machine, and what is the fixed cost
#    per call that it reveals?
# 3. **Unrolling.** Write the sampler as a Python `for` loop *inside* one `jax.jit` (JAX then unrolls it into T
#    copies of the reverse step), for T = 50 and T = 200 (`train.schedule_for(config.replace(diffusion={...}))`).
#    Time the first call (the compilation) of each: how does it grow with T, and how does `sample.p_sample_loop`'s
#    grow? Check your loop's images against `sample.p_sample_loop`'s as section 3 does.
#
# ## Go further
#
# - JAX's guide to [asynchronous dispatch](https://docs.jax.dev/en/latest/async_dispatch.html) and
#   [buffer donation](https://docs.jax.dev/en/latest/faq.html#buffer-donation).
# - [jax-ml/jax#12868](https://github.com/jax-ml/jax/issues/12868): the convolution-in-a-loop issue.
# - `jax.jit(f).lower(...).compile().cost_analysis()` gives XLA's FLOP count of a step: divide by the measured time
#   to see how close to your machine's peak a step runs.
# - Mixed precision: `TrainConfig.compute_dtype` (bfloat16 activations on GPU/TPU) in `nanoddpm_utils/train.py`.
#
# ## Solutions
#
# 1. ```python
#    state = copy_tree(state0)
#    passed, _ = seconds_per_step(train_step, state, 20)  # each call consumes the state the last one returned
#    kept, _ = seconds_per_step(lambda d, s: (s, train_step(d, copy_tree(s))[1]), copy_tree(state0), 20)
#    print(f"{1e3 * passed:.1f} ms/step passing the state along, {1e3 * kept:.1f} ms/step keeping the input")
#    ```
#    The second form copies the whole state (four copies of the weights) before every step; the difference is the
#    cost of that copy and of the fresh allocations, small for this model on a CPU, larger relative to a step for
#    big models on an accelerator, where memory is also what limits the batch size.
# 2. ```python
#    Ks, ms = [1, 5, 25, 100], []
#    for k in Ks:
#        steps_k = train.make_train_steps(config, k)
#        best = min(timed(lambda: steps_k(data, copy_tree(state0)))[0] for _ in range(3))  # timed: section 3
#        ms.append(1e3 * best / k)
#    plt.plot(Ks, ms, "o-"), plt.xscale("log"), plt.xlabel("K"), plt.ylabel("ms per step"), plt.show()
#    ```
#    If a call costs $c$ (dispatch, the return to Python) plus $s$ per step, a step costs $s + c/K$: the curve falls
#    as $1/K$ and flattens at $s$, and $c \approx$ (ms per step at K = 1) − (at K = 100).
# 3. ```python
#    def unrolled(model, schedule, key, shape):
#        k_init, k_loop = jax.random.split(key)
#        x = jax.random.normal(k_init, shape)
#        for t in range(schedule.num_timesteps - 1, -1, -1):  # a Python loop: T copies in the traced program
#            keys = jax.random.split(jax.random.fold_in(k_loop, t), shape[0])
#            x = jax.vmap(lambda xi, k: sample.p_sample(model, schedule, xi, t, k))(x, keys)
#        return x
#    for T_ in (50, 200):
#        sch = train.schedule_for(config.replace(diffusion={"num_timesteps": T_}))
#        f = eqx.filter_jit(unrolled)
#        start = time.perf_counter(); x_u = jax.block_until_ready(f(sampler_model, sch, key, shape))
#        print(T_, f"{time.perf_counter() - start:.1f} s")
#        np.testing.assert_allclose(x_u, sample.p_sample_loop(sampler_model, sch, key, shape), atol=1e-3)
#    ```
#    The unrolled program's compile time grows about in proportion to $T$ (XLA compiles $T$ copies of the network);
#    `p_sample_loop`'s scan compiles the body once, so its compile time barely depends on $T$.
#
# **Back to the course:** [00 — Diffusion in two dimensions](00_diffusion_in_2d.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/00_diffusion_in_2d.ipynb)
