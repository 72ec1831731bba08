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
# # 05 — The reverse process: sampling with Algorithm 2
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/05_reverse_sampler.ipynb)
#
# Part 5 of **nanoJaxDDPM** (DDPM, Ho et al. 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# [Notebook 04](04_training_loop.ipynb) trained $\epsilon_\theta$ and sampled with `sample.sample_images` as a
# black box. Here we open the box: from pure noise $x_T$, the trained network walks the chain back to an image.
#
# **What you will learn**
# - the reverse step derived from the posterior (eqs. 6–7) and the $\epsilon$-parameterisation (eqs. 10–11), and
#   the two choices of its variance, $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$ (section 3.2);
# - Algorithm 2 written inline, one step and a Python loop, checked to draw *exactly* the package's samples
#   (`sample.p_sample`, `sample.p_sample_loop`) from the same keys;
# - a sanity check with a perfect ("oracle") noise predictor: on a one-image dataset, the sampler returns the image;
# - the sampler as one jitted `lax.scan`, and its speed against the Python loop;
# - the denoising trajectory, as a figure and as a slider;
# - $\sigma_t^2 = \beta_t$ versus $\tilde\beta_t$, and clipping the predicted $x_0$, side by side on the trained digits model.

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

from nanoddpm_utils import checkpoint, sample, train, viz
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits, to_model_range, to_uint8
from nanoddpm_utils.diffusion import predict_x0_from_eps, q_sample
from nanoddpm_utils.evaluate import digits_quality_table, format_table
from nanoddpm_utils.tracking import Tracker, image_grid

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/nanoddpm/jax"))  # as in notebook 04
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
BACKEND = jax.default_backend()
print(f"jax {jax.__version__} on {BACKEND} ({jax.devices()[0].device_kind}); smoke mode: {SMOKE}")

# %% [markdown]
# ## 0. A trained model: load it if it exists, otherwise train it
#
# Notebook 04 saved its run in `runs/digits` (beside the notebooks). If it is there we load its newest checkpoint;
# otherwise we train the same `digits` preset now (a few minutes on a GPU or TPU, about ten on a 2-core CPU) and
# load it back from the checkpoint `fit` wrote, so both roads end in the same `checkpoint.restore`. We sample with
# the EMA weights, in inference mode (dropout off). In smoke mode, a few steps of the tiny `smoke` preset in a
# temporary folder stand in for it.

# %%
if SMOKE:
    RUN_DIR = Path(tempfile.mkdtemp()) / "smoke"
    config = get_preset("smoke").replace(train={"steps": 20, "sample_every": 20})
else:
    RUN_DIR = Path("runs") / "digits"
    config = get_preset("digits")

state = None
if checkpoint.latest(RUN_DIR) is not None:
    state, config = checkpoint.restore(RUN_DIR)  # the newest intact checkpoint and the config it was trained with
if state is None or int(state.step) < config.train.steps:  # no run yet, or an unfinished one: (continue to) train
    print(f"training {config.name} in {RUN_DIR} up to step {config.train.steps}")
    with Tracker(RUN_DIR, config.to_dict(), name=f"05-{config.name}") as tracker:  # metrics.jsonl + W&B, as in 04
        train.fit(config, load_digits("train"), state=state, run_dir=RUN_DIR, tracker=tracker)
    state, config = checkpoint.restore(RUN_DIR)
model = eqx.nn.inference_mode(state.ema)
schedule = train.schedule_for(config)
T = schedule.num_timesteps
print(f"{RUN_DIR}: {config.name}, step {int(state.step)}, T = {T}, sigma^2 {config.diffusion.variance}, "
      f"clip x0: {config.diffusion.clip_x0}")

# %%
assert int(state.step) == config.train.steps and config.model.image_size == 8 and config.model.in_channels == 1
assert model.config == config.model

# %% [markdown]
# ## 1. Deriving the reverse step
#
# The reverse process is a Markov chain of Gaussians (eq. 1),
# $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}\big(x_{t-1};\ \mu_\theta(x_t, t),\ \sigma_t^2 I\big)$, trained to match the
# forward posterior of notebook 01 (eqs. 6–7):
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\big(\tilde\mu_t(x_t, x_0), \tilde\beta_t I\big), \qquad
#   \tilde\mu_t = \underbrace{\frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}}_{c_1}\,x_0
#   + \underbrace{\frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}}_{c_2}\,x_t .$$
#
# The mean needs $x_0$, which the sampler does not have. But $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$
# (eq. 4) gives $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$. Substituting, the coefficient of $x_t$
# is $c_1/\sqrt{\bar\alpha_t} + c_2 = \frac{\beta_t + \alpha_t(1-\bar\alpha_{t-1})}{\sqrt{\alpha_t}(1-\bar\alpha_t)}
# = \frac{1}{\sqrt{\alpha_t}}$ (because $\beta_t + \alpha_t - \bar\alpha_t = 1 - \bar\alpha_t$), and the coefficient of
# $\epsilon$ is $-c_1\sqrt{1-\bar\alpha_t}/\sqrt{\bar\alpha_t} = -\frac{\beta_t}{\sqrt{\alpha_t}\sqrt{1-\bar\alpha_t}}$. So (eq. 10)
#
# $$\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon\Big),$$
#
# and the network, which sees $x_t$ but not $\epsilon$, predicts the noise (eq. 11):
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta(x_t, t)\Big).$$
#
# **The variance** is not learned. Section 3.2 tries $\sigma_t^2 = \beta_t$ (optimal if $x_0 \sim \mathcal{N}(0, I)$) and
# $\sigma_t^2 = \tilde\beta_t$ (optimal if $x_0$ is one fixed point): the two extremes, with "similar results". The
# package calls them `"fixedlarge"` and `"fixedsmall"`, as the official code.
#
# **Algorithm 2** samples with it:
#
# > $x_T \sim \mathcal{N}(0, I)$; **for** $t = T, \dots, 1$: $z \sim \mathcal{N}(0, I)$ if $t > 1$, else $z = 0$;
# > $x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{1-\alpha_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta(x_t, t)\big) + \sigma_t z$;
# > **return** $x_0$
#
# First, the two coefficient identities above, in float64 for every $t$:

# %%
betas = np.asarray(schedule.betas, np.float64)  # the identities hold for any betas
alphas, abar = 1.0 - betas, np.cumprod(1.0 - betas)
abar_prev = np.append(1.0, abar[:-1])
c1 = np.sqrt(abar_prev) * betas / (1.0 - abar)
c2 = np.sqrt(alphas) * (1.0 - abar_prev) / (1.0 - abar)
coef_x = c1 / np.sqrt(abar) + c2  # should be 1 / sqrt(alpha_t)
coef_eps = c1 * np.sqrt(1.0 - abar) / np.sqrt(abar)  # should be beta_t / (sqrt(alpha_t) sqrt(1 - abar_t))
print(f"largest deviations: {np.abs(coef_x * np.sqrt(alphas) - 1).max():.1e}, "
      f"{np.abs(coef_eps - betas / np.sqrt(alphas * (1 - abar))).max():.1e}")

# %%
np.testing.assert_allclose(coef_x, 1.0 / np.sqrt(alphas), rtol=1e-12)
np.testing.assert_allclose(coef_eps, betas / np.sqrt(alphas * (1.0 - abar)), rtol=1e-12)
np.testing.assert_allclose(c1, schedule.posterior_mean_coef1, rtol=1e-5)  # the package's c_1, c_2
np.testing.assert_allclose(c2, schedule.posterior_mean_coef2, rtol=1e-5)

# %% [markdown]
# **Clipping.** The official sampler takes a detour with the same result: it computes the predicted
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta)/\sqrt{\bar\alpha_t}$, **clips it to $[-1, 1]$** (the data's
# range), and plugs it into $\tilde\mu_t(x_t, \hat x_0)$. Without the clip this is eq. 11 exactly; with it, a
# prediction that strays outside the data range is pulled back at every step. The package does the same
# (`diffusion.p_mean_variance(..., clip_x0=True)`).
#
# ## 2. One reverse step, inline
#
# One step for ONE image (vmap makes a batch). `t` is the 0-indexed step (the paper's $t+1$): at `t = 0` the step
# produces $x_0$ and adds no noise.

# %%
def p_sample_inline(model, x_t, t, key, variance="fixedlarge", clip_x0=True):
    """x_{t-1} ~ p(x_{t-1} | x_t) for one image (Algorithm 2, line 4)."""
    s = schedule
    eps = model(x_t, t)
    if clip_x0:  # the official code's route: predict x_0, clip it, take the posterior mean (eq. 7)
        x0_hat = jnp.clip((x_t - s.sqrt_one_minus_alphas_cumprod[t] * eps) / s.sqrt_alphas_cumprod[t], -1.0, 1.0)
        mean = s.posterior_mean_coef1[t] * x0_hat + s.posterior_mean_coef2[t] * x_t
    else:  # eq. 11
        mean = (x_t - s.betas[t] / s.sqrt_one_minus_alphas_cumprod[t] * eps) / jnp.sqrt(1.0 - s.betas[t])
    sigma2 = s.betas[t] if variance == "fixedlarge" else s.posterior_variance[t]  # beta_t or beta-tilde_t
    z = jax.random.normal(key, x_t.shape)
    return mean + jnp.where(t > 0, jnp.sqrt(sigma2), 0.0) * z  # no noise on the last step


OPTIONS = [("fixedlarge", True), ("fixedlarge", False), ("fixedsmall", True), ("fixedsmall", False)]


@eqx.filter_jit
def one_step_both_ways(model, x_t, t, keys):
    """For every option: our step and the package's, on a batch that shares one t."""
    out = {}
    for variance, clip in OPTIONS:
        ours = jax.vmap(lambda x, k: p_sample_inline(model, x, t, k, variance, clip))(x_t, keys)
        pkg = jax.vmap(lambda x, k: sample.p_sample(model, schedule, x, t, k, variance=variance, clip_x0=clip))(x_t, keys)
        out[variance, clip] = (ours, pkg)
    return out


x0 = to_model_range(load_digits("test")[:8])  # 8 real digits, noised to three levels
step_checks = {}
for t in (T - 1, T // 2, 0):
    x_t = q_sample(schedule, x0, t, jax.random.normal(jax.random.key(t), x0.shape))
    step_checks[t] = one_step_both_ways(model, x_t, jnp.asarray(t), jax.random.split(jax.random.key(100 + t), 8))
print("checked t =", list(step_checks), "for", OPTIONS)

# %%
for t, out in step_checks.items():
    for option, (ours, pkg) in out.items():
        np.testing.assert_allclose(ours, pkg, rtol=1e-4, atol=1e-5, err_msg=f"t={t} {option}")
# At t = 0 nothing random is added: the result is the mean, so both variances give the same x_0.
np.testing.assert_array_equal(step_checks[0]["fixedlarge", True][0], step_checks[0]["fixedsmall", True][0])

# %% [markdown]
# ## 3. The whole chain: a Python loop
#
# Algorithm 2 is the step above from $t = T$ down to $1$. To draw the same random numbers as the package, we
# split the key once into one for $x_T$ and one for the loop, and at step $t$ derive each image's key from
# `fold_in(loop_key, t)`. The jitted batch step compiles once (`t` is a traced argument); the Python loop calls it
# $T$ times.

# %%
@eqx.filter_jit
def step_batch(model, x, t, keys, variance, clip_x0):
    return jax.vmap(lambda xi, k: p_sample_inline(model, xi, t, k, variance, clip_x0))(x, keys)


def p_sample_loop_inline(model, key, shape, variance="fixedlarge", clip_x0=True):
    k_init, k_loop = jax.random.split(key)
    x = jax.random.normal(k_init, shape)  # x_T ~ N(0, I)
    for t in range(T - 1, -1, -1):  # the paper's t = T, ..., 1
        keys = jax.random.split(jax.random.fold_in(k_loop, t), shape[0])
        x = step_batch(model, x, jnp.asarray(t), keys, variance, clip_x0)
    return x


num = 64
shape = (num, 8, 8, 1)
key = jax.random.key(0)
ours = p_sample_loop_inline(model, key, shape)
pkg = sample.p_sample_loop(model, schedule, key, shape)
print(f"{num} samples with T = {T}: largest difference to the package's {float(jnp.abs(ours - pkg).max()):.1e}")
viz.show_images(ours[:16], ncols=16, size=0.8, suptitle="Algorithm 2, inline Python loop")
viz.show_images(pkg[:16], ncols=16, size=0.8, suptitle="sample.p_sample_loop, same key")
plt.show()

# %%
# Same keys, same samples. (The loop and the scan are compiled separately; on a GPU or TPU their float32 matmuls use
# reduced-precision passes, and tiny differences can grow a little over T steps.)
np.testing.assert_allclose(ours, pkg, atol=1e-4 if BACKEND == "cpu" else 2e-2)
assert float(jnp.abs(pkg).max()) <= 1.0  # with x_0 clipping the last step lands inside [-1, 1]

# %% [markdown]
# ## 4. A sanity check with a perfect denoiser
#
# Take a dataset of **one** image $x^\star$. Then $x_t = \sqrt{\bar\alpha_t}\,x^\star + \sqrt{1-\bar\alpha_t}\,\epsilon$
# determines $\epsilon$ exactly, and the best possible noise predictor, the minimiser of $L_\text{simple}$, is
#
# $$\epsilon^\star(x_t, t) = \frac{x_t - \sqrt{\bar\alpha_t}\,x^\star}{\sqrt{1-\bar\alpha_t}} .$$
#
# With it, every predicted $\hat x_0$ is $x^\star$, and at the last step ($c_1 = 1$, $c_2 = 0$ when $t = 1$) the
# sampler must return $x^\star$ from any starting noise, with either variance. Anything else would be a bug in the
# sampler. The oracle is a tiny `eqx.Module` with the model's call signature.

# %%
class Oracle(eqx.Module):
    """The exact minimiser of L_simple for the dataset {x_star}."""

    x_star: jax.Array

    def __call__(self, x_t, t, *, key=None):
        return (x_t - schedule.sqrt_alphas_cumprod[t] * self.x_star) / schedule.sqrt_one_minus_alphas_cumprod[t]


x_star = x0[3]  # one real digit
oracle_samples = {v: sample.p_sample_loop(Oracle(x_star), schedule, jax.random.key(1), (8, 8, 8, 1), variance=v,
                                          clip_x0=False) for v in ("fixedlarge", "fixedsmall")}
for v, s in oracle_samples.items():
    print(f"{v}: largest distance from x_star {float(jnp.abs(s - x_star).max()):.1e}")
viz.show_images(jnp.concatenate([x_star[None], oracle_samples["fixedlarge"]]), ["x*"] + [f"sample {i}" for i in range(8)],
                suptitle="the oracle's samples, from 8 different noises")
plt.show()

# %%
for s in oracle_samples.values():
    np.testing.assert_allclose(s, jnp.broadcast_to(x_star, s.shape), atol=1e-4)

# %% [markdown]
# ## 5. The sampler as one `lax.scan`
#
# `sample.p_sample_loop` (used above) is the same loop written as `jax.lax.scan` over $t = T-1, \dots, 0$ inside one
# `eqx.filter_jit`: the $T$ steps run on the device without returning to Python, and the loop body compiles once.
# Both are compiled now; time them again, warm.

# %%
def timed(fn):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


t_python = timed(lambda: p_sample_loop_inline(model, jax.random.key(5), shape))
t_scan = timed(lambda: sample.p_sample_loop(model, schedule, jax.random.key(5), shape))
print(f"{num} samples, T = {T}, on {BACKEND}: Python loop {t_python:.2f} s ({1e3 * t_python / T:.2f} ms/step), "
      f"lax.scan {t_scan:.2f} s ({1e3 * t_scan / T:.2f} ms/step): {t_python / t_scan:.2f}x")

# %%
assert t_scan > 0 and np.isfinite(t_python / t_scan)

# %% [markdown]
# The Python loop pays a dispatch and a round trip per step; on a GPU or TPU, where one step of this small model
# takes tens of microseconds, that overhead is most of the time. On a CPU the steps themselves dominate and the two
# are closer. Sampling is expensive either way: $T = 1000$ network evaluations per image, the main cost of DDPM
# (DDIM, in [notebook 07](07_evaluation.ipynb), cuts it to a few dozen).
#
# ## 6. Watching an image appear
#
# `p_sample_loop(..., trajectory_steps=...)` also returns the intermediate $x_t$ (`-1` stands for $x_T$, `t` for
# the output of the step at 0-indexed `t`, i.e. the paper's $x_t$). Next to each $x_t$ we show the network's current
# guess of the final image, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t))/\sqrt{\bar\alpha_t}$ (clipped):
# the guess settles long before the noise is gone. Coarse shape first, details last.

# %%
n_traj = 8
every = tuple(range(T)) + (-1,)  # x_0, x_1, ..., x_{T-1}, then x_T
final, traj = sample.p_sample_loop(model, schedule, jax.random.key(7), (n_traj, 8, 8, 1), trajectory_steps=every)
# traj[s] is the paper's x_s: traj[0] = x_0, ..., traj[T] = x_T


@eqx.filter_jit
def predicted_x0(model, x_t, t):
    """The network's guess of x_0 from x_t (x_t: paper's x_{t}, predicted with the 0-indexed step t - 1)."""
    s = jnp.maximum(t - 1, 0)
    eps = jax.vmap(lambda x: model(x, s))(x_t)
    return jnp.clip(jax.vmap(lambda x, e: predict_x0_from_eps(schedule, x, s, e))(x_t, eps), -1.0, 1.0)


show = sorted({T, int(T * 0.8), int(T * 0.6), int(T * 0.4), int(T * 0.25), int(T * 0.1), int(T * 0.05), 0}, reverse=True)
fig, axes = plt.subplots(2 * n_traj // 4, len(show), figsize=(1.2 * len(show), 1.25 * 2 * n_traj // 4))
for col, s in enumerate(show):
    x0_hat = predicted_x0(model, traj[s], jnp.asarray(s))
    for row in range(n_traj // 4):
        axes[2 * row, col].imshow(to_uint8(traj[s][row])[..., 0], cmap="gray", vmin=0, vmax=255)
        axes[2 * row + 1, col].imshow(to_uint8(x0_hat[row])[..., 0], cmap="gray", vmin=0, vmax=255)
    axes[0, col].set_title(f"t = {s}", fontsize=9)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
for row in range(n_traj // 4):
    axes[2 * row, 0].set_ylabel("$x_t$")
    axes[2 * row + 1, 0].set_ylabel(r"$\hat x_0$")
fig.suptitle("reverse trajectories: the sample x_t and the network's guess of x_0")
fig.tight_layout()
plt.show()

# %%
np.testing.assert_array_equal(traj[0], final)  # the trajectory ends at the returned sample
np.testing.assert_allclose(traj[T], jax.random.normal(jax.random.split(jax.random.key(7))[0], (n_traj, 8, 8, 1)),
                           atol=1e-6)  # x_T: the sampler's first draw
stds = [float(traj[s].std()) for s in show]
print("std of x_t along the chain:", np.round(stds, 3))
assert abs(stds[0] - 1.0) < 0.2  # x_T ~ N(0, I)

# %% [markdown]
# ### Try it: a slider over $t$
#
# Drag it from $T$ down to 0 to watch eight samples appear (top: $x_t$, bottom: the guess $\hat x_0$).

# %%
drawn = []


def show_step(t):
    drawn.append(t)
    x0_hat = predicted_x0(model, traj[t], jnp.asarray(t))
    return viz.show_images(jnp.concatenate([traj[t], x0_hat]), [f"x_{t}"] * n_traj + ["x0 guess"] * n_traj,
                           ncols=n_traj, size=1.1)


widget = viz.slider(show_step, min=0, max=T, value=T, description="t")
widget

# %%
slider_, image = widget.children
assert (slider_.min, slider_.max, slider_.value) == (0, T, T) and drawn == [T]
first = bytes(image.value)
slider_.value = T // 4  # what dragging does
assert drawn == [T, T // 4] and bytes(image.value).startswith(b"\x89PNG") and bytes(image.value) != first

# %% [markdown]
# ## 7. $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$? Clip $\hat x_0$ or not?
#
# Four samplers, the same trained model, the same keys: only the variance and the clipping differ. The paper found
# both variances about as good (section 3.2; it reports $\beta_t$ for CIFAR-10), and the official sampler always
# clips. First, how different are the two variances? Their ratio is
#
# $$\frac{\tilde\beta_t}{\beta_t} = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t},$$
#
# 0 at $t = 1$ and close to 1 as soon as $1-\bar\alpha_t \gg \beta_t$: they differ only in the first steps of the
# forward process, the last steps of sampling, where the noise added is tiny anyway.

# %%
ratio = np.asarray(schedule.posterior_variance, np.float64) / np.asarray(schedule.betas, np.float64)
plt.figure(figsize=(6, 2.8))
plt.semilogx(np.arange(1, T + 1), ratio)
plt.xlabel("t (log scale)")
plt.ylabel(r"$\tilde\beta_t / \beta_t$")
plt.title("the two choices of sigma^2 differ only at small t")
plt.show()
print("ratio at", {t: round(float(ratio[t - 1]), 3) for t in sorted({1, 2, 10, T // 10, T})})

# %%
assert ratio[0] == 0.0 and ratio[-1] > 0.9
assert np.all(np.diff(ratio) > -1e-6)  # it only grows with t (up to float32 rounding near 1)

# %% [markdown]
# So with the same random numbers the two variances should draw nearly the same images, and clipping should change
# little beyond keeping pixels inside $[-1, 1]$. Let us see. The classifier of notebook 04 judges each set.

# %%
num_cmp = 64 if SMOKE else 128
variants = {}
for variance, clip in OPTIONS:
    variants[variance, clip] = sample.p_sample_loop(model, schedule, jax.random.key(11), (num_cmp, 8, 8, 1),
                                                    variance=variance, clip_x0=clip)
fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
for ax, ((variance, clip), imgs) in zip(axes, variants.items()):
    outside = float(jnp.mean(jnp.abs(imgs) > 1.0))
    ax.imshow(image_grid(imgs[:64])[..., 0], cmap="gray", vmin=0, vmax=255)
    ax.set_title(f"{variance} ({'beta' if variance == 'fixedlarge' else 'beta-tilde'}), clip {clip}\n"
                 f"{100 * outside:.1f}% of pixels outside [-1, 1]", fontsize=10)
    ax.axis("off")
fig.tight_layout()
plt.show()
quality = {option: digits_quality_table(to_uint8(imgs))["samples"] for option, imgs in variants.items()}
print(format_table({f"{v[5:]}, clip {c}": row for (v, c), row in quality.items()}
                   | {"real (held out)": digits_quality_table(to_uint8(variants[OPTIONS[0]]))["real (held out)"]}))
base = variants["fixedlarge", True]
gap_variance = float(jnp.mean(jnp.abs(base - variants["fixedsmall", True])))
gap_clip = float(jnp.mean(jnp.abs(jnp.clip(variants["fixedlarge", False], -1, 1) - base)))
gap_noise = float(jnp.mean(jnp.abs(base[:num] - pkg)))  # section 3's samples: same sampler, other keys
print(f"mean |difference| per pixel from (beta, clip): other variance {gap_variance:.3f}, no clipping "
      f"{gap_clip:.3f} (after clipping the result), other random numbers {gap_noise:.3f}")

# %%
for (variance, clip), imgs in variants.items():
    assert bool(jnp.all(jnp.isfinite(imgs)))
    if clip:
        assert float(jnp.abs(imgs).max()) <= 1.0  # a clipped guess keeps x_0 inside the data range
# the random numbers decide the image far more than the choice of variance does
assert gap_variance < 0.5 * gap_noise, (gap_variance, gap_noise)
if not SMOKE:  # the trained model's default sampler draws recognisable digits of (nearly) every class
    assert quality["fixedlarge", True]["classes_present"] >= 8
    assert quality["fixedlarge", True]["confidence"] > 0.8

# %% [markdown]
# On the trained model the four grids are hard to tell apart: from the same noise, $\beta_t$ and $\tilde\beta_t$
# draw almost the same digits, as the paper found on CIFAR-10. Without clipping, some pixels overshoot the data
# range (the background of a digit is exactly $-1$, so an overshoot there is common), which converting to 8-bit
# pixels clips anyway. Clipping matters more where the model is worse: in the first steps of sampling, and for
# models trained briefly.

# %% [markdown]
# ## Summary
#
# - The reverse step's mean is the forward posterior's mean with $x_0$ predicted from $\epsilon_\theta$ (eqs. 7,
#   10–11); its variance is fixed, $\beta_t$ or $\tilde\beta_t$; Algorithm 2 applies it $T$ times from pure noise and
#   adds no noise at the last step.
# - Our inline step and loop draw exactly the package's samples from the same keys; with the perfect denoiser of a
#   one-image dataset the sampler returns that image.
# - The package runs the loop as one jitted `lax.scan`, with the trajectory on request: the coarse shape is decided
#   early, details last.
# - DDPM needs $T = 1000$ network calls per sample. DDIM (Song, Meng & Ermon 2021) reuses the same trained network
#   on a few dozen steps (`sample.sample_images(..., sampler="ddim")`): [notebook 07](07_evaluation.ipynb).
#
# Next, the real thing: CIFAR-10, on whatever accelerator you have.
#
# **Next:** [06 — Training on CIFAR-10](06_train_cifar10.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/06_train_cifar10.ipynb)
