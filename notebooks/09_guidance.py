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
# # 09 — Draw me a 7: class-conditional diffusion and classifier-free guidance
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/09_guidance.ipynb)
#
# Our DDPM draws *some* digit. How do we tell it *which* one? We give the network the label as a third input,
# $\epsilon_\theta(x_t, t, c)$, and we train the same network, now and then, without the label, so that it also knows
# $\epsilon_\theta(x_t, t)$. Mixing the two at sampling time is **classifier-free guidance** (Ho & Salimans 2022,
# [arXiv:2207.12598](https://arxiv.org/abs/2207.12598)): one knob, the guidance scale $w$, trades variety for
# faithfulness to the label.
#
# **What you will learn**
# - how a label enters the UNet: a learned embedding added to the time embedding, with one extra row meaning "no label";
# - label dropout: one network, two models;
# - the guidance formula from Bayes' rule: the difference of the two predictions is an implicit classifier's gradient,
#   and why the guided field is not the score of the sharpened distribution, noised;
# - a grid of digits by class and guidance scale, and a widget to explore it;
# - the trade-off measured with the judges of [notebook 07](07_evaluation.ipynb): how often the requested digit is
#   read, how far each digit's samples are from the real ones, and precision against recall, as $w$ grows.
#
# The samples are drawn with DDIM, the fast sampler of [notebook 08](08_fast_sampling.ipynb). Every code cell is
# followed by a cell that checks it.

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

from nanoddpm_utils import guidance, pretrained, train, widgets
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_dataset
from nanoddpm_utils.images import to_uint8
from nanoddpm_utils.unet import count_params, make_model

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"
TRAIN_FROM_SCRATCH = False  # True: train the conditional digits model here instead of loading the shipped one
config = get_preset("digits_cond")
print(config.model)
print("label_dropout:", config.train.label_dropout)

# %% [markdown]
# ## 1. A label as a third input
#
# The UNet already turns $t$ into a vector (the sinusoidal embedding and two dense layers of
# [notebook 02](02_sinusoidal_embedding.ipynb)) that every ResBlock adds to its feature maps. A label $c$ gets the same
# treatment, as cheaply as possible: a table of learned vectors, one row per class, looked up and **added** to the time
# embedding. One more row, index `num_classes`, means "no label". Nothing else in the network changes.

# %%
cond = make_model(config, key=jax.random.key(0))
plain = make_model(get_preset("digits"), key=jax.random.key(0))
print(f"label table: {cond.label_emb.weight.shape} (10 digits + 'no label', x the time embedding's width)")
print(f"parameters: {count_params(cond):,} conditional, {count_params(plain):,} unconditional")

# %%
assert count_params(cond) - count_params(plain) == (10 + 1) * 4 * config.model.ch  # only the table is new
x = jax.random.normal(jax.random.key(1), (8, 8, 1))
moved = jax.tree_util.tree_map(lambda a: a + 0.05 * jnp.sin(jnp.arange(a.size).reshape(a.shape))
                               if eqx.is_inexact_array(a) else a, cond)  # off the init (the last conv starts at 0)
assert not np.allclose(moved(x, 10, 3), moved(x, 10, 7))  # the label changes the prediction
np.testing.assert_array_equal(moved(x, 10), moved(x, 10, 10))  # no label = the extra row

# %% [markdown]
# ## 2. Label dropout: one network, two models
#
# Training is Algorithm 1 with the label as an extra input, except that each example's label is replaced by "no label"
# with probability $p_\text{uncond}$ (here `label_dropout` = 0.1, as in Ho & Salimans). So the same weights learn the
# conditional $\epsilon_\theta(x_t, t, c)$ on 90% of the examples and the unconditional $\epsilon_\theta(x_t, t)$ on
# the other 10%. Written inline:

# %%
def drop_labels_inline(key, labels, p, null_label):
    keep = ~jax.random.bernoulli(key, p, labels.shape)
    return jnp.where(keep, labels, null_label)


labels = jnp.asarray(np.arange(100_000) % 10)
dropped = drop_labels_inline(jax.random.key(0), labels, 0.1, 10)
print(f"share replaced by 'no label': {float((dropped == 10).mean()):.4f}")

# %%
np.testing.assert_array_equal(dropped, train.drop_labels(jax.random.key(0), labels, 0.1, 10))
assert abs(float((dropped == 10).mean()) - 0.1) < 5 * np.sqrt(0.1 * 0.9 / len(labels))
assert bool(jnp.all((dropped == labels) | (dropped == 10)))  # a label is kept or dropped, never changed

# %% [markdown]
# ## 3. Guidance from Bayes' rule
#
# The network's noise prediction is a scaled **score** (notebook 04): $\epsilon_\theta(x_t, t) \approx
# -\sqrt{1-\bar\alpha_t}\,\nabla_{x_t} \log p(x_t)$, and with the label $\epsilon_\theta(x_t, t, c) \approx
# -\sqrt{1-\bar\alpha_t}\,\nabla_{x_t} \log p(x_t \mid c)$. Bayes' rule, $p(x_t \mid c) = p(c \mid x_t)\,p(x_t)/p(c)$,
# gives, after the log and the gradient in $x_t$ ($p(c)$ does not depend on $x_t$):
#
# $$\nabla \log p(x_t \mid c) = \nabla \log p(x_t) + \nabla \log p(c \mid x_t)
# \quad\Longrightarrow\quad \epsilon_\theta(x_t, t, c) - \epsilon_\theta(x_t, t) \approx -\sqrt{1-\bar\alpha_t}\,
# \nabla \log p(c \mid x_t).$$
#
# The difference of the two predictions is the gradient of an **implicit classifier**, learnt for free. Scaling it by
# $w$ (a sharpened classifier) means following $\nabla \log p(x_t) + w\,\nabla \log p(c \mid x_t)$ at every noise
# level, that is
#
# $$\tilde\epsilon_w(x_t, t, c) = \epsilon_\theta(x_t, t) + w\,\big(\epsilon_\theta(x_t, t, c) - \epsilon_\theta(x_t, t)\big).$$
#
# **Our convention**: $w = 0$ is unconditional sampling, $w = 1$ plain conditional sampling, $w > 1$ follows the class
# harder. The paper writes $(1 + w')\,\epsilon_\theta(x_t, t, c) - w'\,\epsilon_\theta(x_t, t)$: the same line with
# $w' = w - 1$ (its $w' = 0$ is our $w = 1$). $\tilde\epsilon_w$ replaces $\epsilon_\theta$ in any sampler: DDPM, DDIM or
# another. Both predictions come from one forward pass on a batch of two, $(x_t, c)$ and $(x_t, \varnothing)$.

# %%
def guided_eps_inline(model, x_t, t, c, w):
    eps_c = model(x_t, t, c)
    eps_u = model(x_t, t)  # no label
    return eps_u + w * (eps_c - eps_u)


for w in (0.0, 1.0, 3.0):
    print(f"w = {w:g}: mean |guided eps| = {float(jnp.abs(guided_eps_inline(moved, x, 10, 7, w)).mean()):.4f}")

# %%
for w in (0.0, 1.0, 3.0):
    np.testing.assert_allclose(guidance.guided_eps(moved, x, 10, 7, w), guided_eps_inline(moved, x, 10, 7, w),
                               atol=1e-5)
np.testing.assert_allclose(guidance.guided_eps(moved, x, 10, 7, 0.0), moved(x, 10), atol=1e-5)  # w = 0: unconditional
np.testing.assert_allclose(guidance.guided_eps(moved, x, 10, 7, 1.0), moved(x, 10, 7), atol=1e-5)  # w = 1: conditional

# %% [markdown]
# **The guided field is not the score of one distribution.** At $t = 0$ the field
# $\nabla \log p(x) + w\,\nabla \log p(c \mid x)$ is the score of the sharpened data distribution
# $\pi_0(x) \propto p(x)\,p(c \mid x)^w$. One would hope that at every $t$ the guided field is the score of
# $\pi_0$ *noised to level $t$* ($\pi_t = \int \pi_0(x_0)\, q(x_t \mid x_0)\, dx_0$), so that the sampler draws from
# $\pi_0$. It is not, for $w \ne 0, 1$: noising does not commute with raising $p(c \mid x)$ to a power, so
# $\nabla \log p_t(x_t) + w\,\nabla \log p_t(c \mid x_t) \ne \nabla \log \pi_t(x_t)$ (Ho & Salimans 2022,
# section 3.2). Guided sampling follows a different field at each noise level, so nothing guarantees that it draws
# from $\pi_0$: it is a heuristic that works very well. We can see it exactly in one dimension, on two Gaussian classes
# $\mathcal N(\pm m, s^2)$ noised as $x_t = a_t x_0 + b_t \epsilon$ with $a_t = \sqrt{\bar\alpha_t}$,
# $b_t = \sqrt{1 - \bar\alpha_t}$: the guided field in closed form, the score of $\pi_t$ by integrating over $x_0$
# on a grid, using $\nabla \log \pi_t(x) = \mathbb E_{\pi_0(x_0 \mid x_t = x)}[(a_t x_0 - x) / b_t^2]$.

# %%
M, S = 1.0, 0.5  # two classes, N(-M, S^2) and N(+M, S^2), half the data each; we ask for the class at +M


def gauss(x, mean, var):
    return np.exp(-(x - mean) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var)


def guided_field(x, a, b, w):  # grad log p_t(x) + w grad log p_t(c | x), both Gaussian scores in closed form
    var = a**2 * S**2 + b**2
    up, down = gauss(x, a * M, var), gauss(x, -a * M, var)
    score_c = (a * M - x) / var
    score = (up * (a * M - x) + down * (-a * M - x)) / (var * (up + down))
    return score + w * (score_c - score)


x0_grid = np.linspace(-4, 4, 4001)


def tilted_score(x, a, b, w):  # grad log pi_t(x), pi_0 = p(x0) p(c | x0)^w noised to level (a, b)
    p0 = 0.5 * gauss(x0_grid, -M, S**2) + 0.5 * gauss(x0_grid, M, S**2)
    pi0 = p0 * (0.5 * gauss(x0_grid, M, S**2) / p0) ** w
    joint = pi0 * gauss(x[:, None], a * x0_grid, b**2)  # pi_0(x0) q(x_t = x | x0), rows: x, columns: x0
    return (joint * (a * x0_grid - x[:, None])).sum(1) / (b**2 * joint.sum(1))


xs = np.linspace(-2, 2, 81)
a_t = 0.6
b_t = np.sqrt(1 - a_t**2)
fig, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
for ax, w in zip(axes, (0.0, 1.0, 3.0)):
    ax.plot(xs, guided_field(xs, a_t, b_t, w), label="guided field")
    ax.plot(xs, tilted_score(xs, a_t, b_t, w), "--", label="score of the noised $\\pi_0$")
    ax.set_title(f"w = {w:g}, a_t = {a_t}"), ax.set_xlabel("$x_t$")
axes[0].legend()
plt.tight_layout()
plt.show()

# %%
for a_t in (0.9, 0.6, 0.3):
    b_t = np.sqrt(1 - a_t**2)
    gap = {w: np.abs(guided_field(xs, a_t, b_t, w) - tilted_score(xs, a_t, b_t, w)).max() for w in (0.0, 1.0, 3.0)}
    assert gap[0.0] < 1e-5 and gap[1.0] < 1e-5  # w = 0 and w = 1: the field IS the noised distribution's score
    assert gap[3.0] > 0.2 * np.abs(guided_field(xs, a_t, b_t, 3.0)).max()  # w = 3: it is not

# %% [markdown]
# ## 4. A trained conditional model
#
# The shipped `digits_cond` model was trained with `python -m nanoddpm_utils.pretrained digits_cond` (`make
# pretrained`) from its preset and seed. `TRAIN_FROM_SCRATCH = True` trains it here on the digits and their labels.

# %%
if TRAIN_FROM_SCRATCH:
    from nanoddpm_utils.state import init_state
    from nanoddpm_utils.train import fit

    train_config = config.replace(train={"steps": 100}) if SMOKE else config
    data = load_dataset("digits", return_labels=True, image_size=8, channels=1)  # (images, labels)
    state, history = fit(train_config, data, state=init_state(train_config))
    model = state.ema
else:
    config, model = pretrained.load("digits_cond")
model = eqx.nn.inference_mode(model)
SAMPLER = {"sampler": "ddim", "steps": 10 if SMOKE else 50}  # DDIM (notebook 08); guidance works in any sampler
print(f"sampling with DDIM, {SAMPLER['steps']} steps")

# %% [markdown]
# ## 5. Digits by class and guidance scale
#
# Each row asks for one digit; each column is a guidance scale; all the images of a row start from the same noise
# $x_T$, so what changes along a row is $w$ alone.

# %%
WS = [0.0, 1.0, 3.0, 6.0]
PER_CELL = 2 if SMOKE else 4
grid_labels = np.repeat(np.arange(10), PER_CELL)
start = time.perf_counter()
cells = {w: to_uint8(guidance.sample_guided(config, model, jax.random.key(0), grid_labels, w, **SAMPLER)) for w in WS}
print(f"{len(WS) * len(grid_labels)} samples in {time.perf_counter() - start:.1f} s")
fig, axes = plt.subplots(10, len(WS), figsize=(1.1 * PER_CELL * len(WS), 11))
for j, w in enumerate(WS):
    for c in range(10):
        row = cells[w][grid_labels == c][..., 0]
        axes[c, j].imshow(np.concatenate(list(row), axis=1), cmap="gray", vmin=0, vmax=255)
        axes[c, j].set_xticks([]), axes[c, j].set_yticks([])
        if c == 0:
            axes[c, j].set_title(f"w = {w:g}")
        if j == 0:
            axes[c, j].set_ylabel(str(c))
plt.tight_layout()
plt.show()

# %%
from nanoddpm_utils.evaluate import digits_judge

judge = digits_judge()
read = {w: judge.probabilities(cells[w]).argmax(1) for w in WS}
for w in WS:
    print(f"w = {w:g}: the judge reads the requested digit in {np.mean(read[w] == grid_labels):.0%} of the cells")
assert np.mean(read[3.0] == grid_labels) > np.mean(read[0.0] == grid_labels)  # guidance makes the label matter

# %% [markdown]
# Try it: pick a digit and a guidance scale. (In a notebook viewer without widgets you see the figure for 7 and w = 3.)

# %%
def draw(digit=7, w=3.0):
    images = to_uint8(guidance.sample_guided(config, model, jax.random.key(1), [digit] * 16, w, **SAMPLER))
    fig, axes = plt.subplots(2, 8, figsize=(8, 2.2))
    for ax, img in zip(axes.ravel(), images):
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=255)
        ax.axis("off")
    fig.suptitle(f"digit {digit}, w = {w:g}")
    return fig


widgets.interactive_figure(draw, digit=(0, 9, 1, 7), w=([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0], 3.0))

# %% [markdown]
# ## 6. The trade-off, measured
#
# For each $w$ we draw samples of every digit and let the judges of notebook 07 (`evaluate.digits_judges`) score them:
# - **accuracy**: the share of the samples asked to be $c$ that a judge reads as $c$ (averaged over the ten digits and
#   the judges; `evaluate.class_scores`);
# - **Fréchet distance per class**: between the samples of digit $c$ and the real digits of class $c$, in each judge's
#   features, next to the same distance for real digits of class $c$ that the judge never saw (the floor), on sets of
#   the same size;
# - **precision and recall** (notebook 07): the share of samples that land among real digits (fidelity), and the
#   share of real held-out digits that land among the samples (diversity), in each judge's features.
#
# Guidance should raise the accuracy. Past some $w$ the samples of a class become too alike (and too stark): they no
# longer cover the real variety of that class, so recall falls and the Fréchet distance rises again.

# %%
from nanoddpm_utils.evaluate import class_scores, digits_judges, precision_recall

TRADE_WS = [0.0, 1.0, 4.0] if SMOKE else [0.0, 1.0, 2.0, 4.0, 8.0]
PER_CLASS = 20 if SMOKE else 40
JUDGES = digits_judges(2 if SMOKE else 8)
labels_all = np.repeat(np.arange(10), PER_CLASS)
rows = []
for w in TRADE_WS:
    start = time.perf_counter()
    images = to_uint8(guidance.sample_guided(config, model, jax.random.key(2), labels_all, w, **SAMPLER))
    seconds = time.perf_counter() - start
    s = class_scores(images, labels_all, JUDGES)
    pr = np.mean([precision_recall(j.features(j.held_out), j.features(images)) for j in JUDGES], axis=0)
    rows.append({"w": w, "accuracy": s["accuracy"].mean(), "frechet": s["frechet"].mean(),
                 "real": s["frechet_real"].mean(), "precision": pr[0], "recall": pr[1]})
    r = rows[-1]
    print(f"w = {w:3.1f}: accuracy {r['accuracy']:.3f}, Frechet {r['frechet']:5.2f} (real {r['real']:.2f}), "
          f"precision {r['precision']:.2f}, recall {r['recall']:.2f}; {len(images)} samples in {seconds:.0f} s")
ws = [r["w"] for r in rows]
fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(13, 3.5))
a1.plot(ws, [r["accuracy"] for r in rows], "o-")
a1.set_xlabel("guidance scale w"), a1.set_ylabel("judged as the requested digit")
a2.plot(ws, [r["frechet"] for r in rows], "o-", label="samples")
a2.plot(ws, [r["real"] for r in rows], "k--", label="real held-out digits")
a2.set_xlabel("guidance scale w"), a2.set_ylabel("Frechet distance per class"), a2.legend()
a3.plot(ws, [r["precision"] for r in rows], "o-", label="precision (fidelity)")
a3.plot(ws, [r["recall"] for r in rows], "s-", label="recall (diversity)")
a3.set_xlabel("guidance scale w"), a3.set_ylim(0, 1.05), a3.legend()
plt.tight_layout()
plt.show()

# %%
acc = {r["w"]: r["accuracy"] for r in rows}
fre = {r["w"]: r["frechet"] for r in rows}
rec = {r["w"]: r["recall"] for r in rows}
assert acc[0.0] < 0.35  # unconditional: about one sample in ten happens to be the requested digit
assert acc[1.0] > acc[0.0] + 0.3 and acc[4.0] >= acc[1.0] - 0.05  # the label, then guidance, raise accuracy
assert min(fre, key=fre.get) in (1.0, 2.0)  # each digit's samples are closest to its real digits at a moderate w...
assert fre[TRADE_WS[-1]] > 1.5 * min(fre.values())  # ...and move away again as w grows: the distance rises
assert rec[TRADE_WS[-1]] < rec[1.0] - 0.15  # strong guidance covers less of the real variety

# %% [markdown]
# ## Summary
#
# - A label enters the UNet as a learned vector added to the time embedding; one extra row means "no label".
# - Label dropout trains one network as both $\epsilon_\theta(x_t, t, c)$ and $\epsilon_\theta(x_t, t)$.
# - By Bayes' rule their difference is an implicit classifier's gradient; the guided prediction
#   $\epsilon_\theta(x_t, t) + w(\epsilon_\theta(x_t, t, c) - \epsilon_\theta(x_t, t))$ follows
#   $\nabla \log p(x_t) + w\,\nabla \log p(c \mid x_t)$ ($w = 0$ unconditional, $w = 1$ conditional; the paper's
#   $w' = w - 1$), in any sampler. For $w \ne 0, 1$ that field is not the score of $p(x)\,p(c \mid x)^w$ noised to
#   level $t$: guidance is a heuristic, not an exact sampler of that distribution.
# - Larger $w$: the requested digit more often, at the cost of variety within the class (recall falls, the per-class
#   Fréchet distance rises again).
#
# **Exercises**
# 1. Suppose `label_dropout` were 0 during training. What would $w = 0$ produce, and why?
# 2. Sample with $w = 20$. Where do the pixels go? (Hint: `clip_x0` and the DDIM step of notebook 08.)
# 3. Sample the grid with DPM-Solver++(2M) in 20 steps (notebook 08) instead of DDIM. Does guidance still work?
# 4. Guide towards two digits at once: $\epsilon_u + w_a(\epsilon_a - \epsilon_u) + w_b(\epsilon_b - \epsilon_u)$.
#    What do you get for 1 and 7?
#
# **Go further**
# - Classifier guidance with a separately trained noisy classifier: Dhariwal & Nichol 2021,
#   [arXiv:2105.05233](https://arxiv.org/abs/2105.05233).
# - Guidance in a limited interval of noise levels only: Kynkäänniemi et al. 2024,
#   [arXiv:2404.07724](https://arxiv.org/abs/2404.07724).
# - The command line: `python -m nanoddpm_utils train --preset digits_cond --out runs/cond`, then
#   `python -m nanoddpm_utils sample --run runs/cond --label all --guidance 3 --num 8 --out grid.npz`.

# %% [markdown]
# ## Solutions
#
# **1.** The "no label" row of the label table would never be used in training: it keeps its random initial value,
# and $\epsilon_\theta(x_t, t, \varnothing)$ is the network's answer to an input it never saw, not the
# unconditional noise prediction. $w = 0$ samples that untrained branch (blurs, or digits of whatever class that row
# happens to resemble), and every $w \ne 1$ mixes it in: guidance needs both models, hence the dropout.
#
# **2.** At $w = 20$ the guided prediction overshoots: the predicted $x_0$ leaves $[-1, 1]$ and `clip_x0` cuts it
# there at every step, so the pixels pile up at black and white: stark, saturated strokes.

# %%
def saturated(images_uint8):  # the share of pixels at black or white
    return float(np.mean((images_uint8 == 0) | (images_uint8 == 255)))


strong = {w: to_uint8(guidance.sample_guided(config, model, jax.random.key(4), [7] * 16, w, **SAMPLER))
          for w in (1.0, 20.0)}
for w, imgs in strong.items():
    print(f"w = {w:g}: {saturated(imgs):.0%} of the pixels at black or white")
assert saturated(strong[20.0]) > saturated(strong[1.0]) + 0.1

# %% [markdown]
# **3.** Guidance only changes the noise prediction, so any sampler takes it: pass `sampler="dpm++2m", steps=20`.
# The requested digit is read as often as with DDIM.

# %%
fast = to_uint8(guidance.sample_guided(config, model, jax.random.key(0), grid_labels, 3.0, sampler="dpm++2m",
                                       steps=20))
print(f"DPM-Solver++(2M), 20 steps, w = 3: {np.mean(judge.probabilities(fast).argmax(1) == grid_labels):.0%} read "
      "as the requested digit")
assert np.mean(judge.probabilities(fast).argmax(1) == grid_labels) > 0.8

# %% [markdown]
# **4.** One batched pass gives the three predictions; the mix is a model with the plain `model(x_t, t)` signature,
# so the samplers of notebook 08 run it unchanged. The check: with one weight at 0 it is ordinary guidance.
# For 1 and 7 (with $w_a = w_b = 2$) most samples are both at once: a 1's straight stroke under a 7's bar. A few
# become neither: the sum of two guidance directions is not the direction of any one digit.

# %%
from nanoddpm_utils.sample import sampling_loop


class TwoDigits(eqx.Module):
    model: eqx.Module
    a: int = eqx.field(static=True)
    b: int = eqx.field(static=True)
    w_a: float = eqx.field(static=True)
    w_b: float = eqx.field(static=True)

    def __call__(self, x_t, t, *, key=None):
        labels = jnp.array([self.a, self.b, self.model.null_label])
        eps_a, eps_b, eps_u = jax.vmap(lambda c: self.model(x_t, t, c))(labels)
        return eps_u + self.w_a * (eps_a - eps_u) + self.w_b * (eps_b - eps_u)


for w_a, w_b, c in ((3.0, 0.0, 7), (0.0, 3.0, 1)):  # one weight at 0: ordinary guidance towards the other digit
    np.testing.assert_allclose(TwoDigits(model, 7, 1, w_a, w_b)(x, 10), guidance.guided_eps(model, x, 10, c, 3.0),
                               atol=1e-5)
loop, schedule, shape, kwargs = sampling_loop(config, 8, **SAMPLER)
both = to_uint8(loop(TwoDigits(model, 1, 7, 2.0, 2.0), schedule, jax.random.key(5), shape, **kwargs))
plt.figure(figsize=(8, 1.2))
plt.imshow(np.concatenate(list(both[..., 0]), axis=1), cmap="gray", vmin=0, vmax=255)
plt.axis("off"), plt.title("guided towards 1 and 7 at once")
plt.show()

# %% [markdown]
# **Next:** [10 — After DDPM: flow matching and EDM](10_flow_and_edm.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/10_flow_and_edm.ipynb)
