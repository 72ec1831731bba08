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
# # 03 — The UNet that predicts the noise
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/03_unet.ipynb)
#
# Part 3 of **nanoJaxDDPM** (DDPM, Ho et al. 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# The reverse process needs a network $\epsilon_\theta(x_t, t)$ that looks at a noisy image and the step $t$
# ([notebook 02](02_sinusoidal_embedding.ipynb)) and predicts the noise $\epsilon$ in it (the paper's
# $\epsilon$-parameterisation, section 3.2, eq. 11): an array the same shape as the image. (For the 2-D points of
# [notebook 00](00_diffusion_in_2d.ipynb) a small MLP did this job; an image needs a network that sees neighbourhoods
# of pixels at several scales.) Appendix B of the paper describes the network:
#
# > Our neural network architecture follows the backbone of PixelCNN++, which is a U-Net based on a Wide ResNet.
# > We replaced weight normalization with group normalization. Our 32 × 32 models use four feature map
# > resolutions (32 × 32 to 4 × 4) […]. All models have two convolutional residual blocks per resolution level
# > and self-attention blocks at the 16 × 16 resolution between the convolutional blocks. Diffusion time $t$ is
# > specified by adding the Transformer sinusoidal position embedding into each residual block.
#
# **What you will learn**
# - the whole network at a glance, drawn from its configuration;
# - each building block, written out and checked against `nanoddpm_utils.layers` / `nanoddpm_utils.unet`:
#   group normalisation, the residual block with its time input, self-attention, down- and up-sampling;
# - how skip connections join them into a UNet, with every block's output shape traced;
# - where the parameters are: the paper's 35.7M-parameter CIFAR-10 model next to our smaller presets.

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
import dataclasses
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from nanoddpm_utils import viz
from nanoddpm_utils.config import PRESETS, get_preset
from nanoddpm_utils.layers import GroupNorm
from nanoddpm_utils.unet import AttnBlock, Downsample, ResBlock, Upsample, count_params, make_model

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # set by the test suite: shrink the expensive cells
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 1. The whole network, drawn from its config
#
# Before the parts, the whole: here is the UNet of the `digits` preset, the one the course trains on a CPU,
# drawn from its `ModelConfig` by `viz.draw_unet`. The input $x_t$ enters at the top left; each level halves
# the resolution on the way down (left) and doubles it on the way up (right); every output on the way down is
# also handed across (dashed) and concatenated to the input of a block on the way up. Each box shows its
# input → output channels. Every function in the package acts on **one** channels-last image `(H, W, C)`;
# batches are made with `jax.vmap` (why channels-last: [appendix A1](A1_jax_speed.ipynb)).

# %%
digits_config = get_preset("digits").model
print(digits_config)
viz.draw_unet(digits_config)
plt.show()

# %% [markdown]
# Sections 2 to 5 build each kind of box; section 6 joins them exactly as drawn, and checks the drawing's
# channels against the real model's weights.

# %% [markdown]
# ## 2. Group normalisation
#
# The paper replaces PixelCNN++'s weight normalisation with group normalisation (Wu & He 2018). The $C$
# channels are split into $G$ groups; each group is normalised by its own mean and variance over
# $(H, W, C/G)$, then every channel gets a learned scale $\gamma_c$ and shift $\beta_c$:
#
# $$\mathrm{GN}(x)_{hwc} = \gamma_c\,\frac{x_{hwc} - \mu_{g(c)}}{\sqrt{\sigma^2_{g(c)} + \varepsilon}} + \beta_c .$$
#
# Unlike batch norm it uses no statistics across the batch, so one example at a time is fine, which is what
# `vmap` needs. The paper uses $G = 32$.

# %%
def group_norm_inline(x, groups, eps=1e-6):
    """Normalise each of `groups` channel groups of a (H, W, C) image over (H, W, C / groups)."""
    h, w, c = x.shape
    g = x.reshape(h, w, groups, c // groups)
    g = (g - g.mean(axis=(0, 1, 3), keepdims=True)) / jnp.sqrt(g.var(axis=(0, 1, 3), keepdims=True) + eps)
    return g.reshape(h, w, c)  # scale 1 and shift 0: the initial gamma and beta


x = 3.0 + 2.0 * jax.random.normal(jax.random.key(2), (8, 8, 64))
norm = GroupNorm(8, 64)
print(norm(x).shape, f"before: mean {x.mean():.2f} std {x.std():.2f}; after: mean {norm(x).mean():.2f} std {norm(x).std():.2f}")

# %%
np.testing.assert_allclose(group_norm_inline(x, 8), norm(x), atol=1e-5)
# ... and equals Equinox's channels-first GroupNorm on the transposed image
eqx_norm = eqx.nn.GroupNorm(8, 64, eps=1e-6)
np.testing.assert_allclose(eqx_norm(x.transpose(2, 0, 1)).transpose(1, 2, 0), norm(x), atol=1e-5)

# %% [markdown]
# ## 3. The residual block, and where $t$ comes in
#
# A ResBlock (the official code's `resnet_block`) maps `(H, W, C_in)` to `(H, W, C_out)`:
#
# $$h = \mathrm{conv}_1(\mathrm{swish}(\mathrm{GN}(x))) + W_t\,\mathrm{swish}(\mathrm{temb}(t)),\qquad
#   \mathrm{out} = \mathrm{skip}(x) + \mathrm{conv}_2(\mathrm{dropout}(\mathrm{swish}(\mathrm{GN}(h)))).$$
#
# - The time vector $\mathrm{temb}(t)$ (the MLP of notebook 02, size $4\,ch$) is projected to $C_\text{out}$
#   numbers and **added to every pixel**: a per-channel shift that depends on $t$.
# - $\mathrm{skip}$ is the identity, or a 1×1 convolution (a `Linear` on the channel axis) when $C_\text{in} \neq C_\text{out}$.
# - $\mathrm{conv}_2$ starts at zero (as in the official code), so a fresh block is the identity and a deep
#   network starts out well behaved. Dropout (0.1 on CIFAR-10) sits before $\mathrm{conv}_2$.
#
# The sizes below are those of the `digits` preset we build in section 6 (`ch = 32`, so the time vector has
# 128 numbers, and 8 groups).

# %%
temb_dim, groups = 128, 8
block = ResBlock(32, 64, temb_dim, 0.0, groups, key=jax.random.key(3))


def resblock_inline(b, x, temb):
    h = b.conv1(jax.nn.swish(b.norm1(x)))
    h = h + b.temb_proj(jax.nn.swish(temb))[None, None, :]  # (H, W, C_out) + (1, 1, C_out)
    h = b.conv2(jax.nn.swish(b.norm2(h)))  # (dropout omitted: it is off without a key)
    skip = x if b.nin_shortcut is None else b.nin_shortcut(x)
    return skip + h


x = jax.random.normal(jax.random.key(4), (8, 8, 32))
temb = jax.random.normal(jax.random.key(5), (temb_dim,))
print(x.shape, "->", block(x, temb).shape)

# %%
def randomise(module, seed, scale=0.1):
    """Perturb every weight: fresh blocks start near the identity, which would make equality checks too easy."""
    rng = np.random.default_rng(seed)  # NumPy, so that no new weight shape needs compiling
    params, static = eqx.partition(module, eqx.is_inexact_array)
    params = jax.tree_util.tree_map(
        lambda p: jnp.asarray(np.asarray(p) + scale * rng.standard_normal(p.shape, np.float32)), params)
    return eqx.combine(params, static)


rblock = randomise(block, 6)
np.testing.assert_allclose(resblock_inline(rblock, x, temb), rblock(x, temb), rtol=1e-4, atol=1e-4)
# t matters: a different time vector changes the output
assert float(jnp.abs(rblock(x, temb) - rblock(x, 2 * temb)).max()) > 1e-2
# a fresh block whose channels do not change is the identity
same = ResBlock(64, 64, temb_dim, 0.0, groups, key=jax.random.key(7))
x64 = jax.random.normal(jax.random.key(8), (8, 8, 64))
np.testing.assert_allclose(same(x64, temb), x64, atol=1e-4)

# %% [markdown]
# ## 4. Self-attention
#
# Convolutions see a 3×3 neighbourhood; to relate distant parts of the image, the paper inserts
# single-head self-attention at the 16×16 resolution. Every position attends to all $HW$ positions:
#
# $$q, k, v = W_q\,\mathrm{GN}(x),\ W_k\,\mathrm{GN}(x),\ W_v\,\mathrm{GN}(x) \in \mathbb{R}^{HW \times C},\qquad
#   \mathrm{out} = x + W_o\,\mathrm{softmax}\!\Big(\frac{q k^\top}{\sqrt{C}}\Big)\,v .$$
#
# The $HW \times HW$ matrix is why attention stays at low resolution: 256² entries at 16×16, 1024² at 32×32.
# $W_o$ starts at zero, so the block starts as the identity, like the ResBlock.

# %%
attn = AttnBlock(64, groups, key=jax.random.key(9))


def attention_inline(a, x):
    H, W, C = x.shape
    h = a.norm(x).reshape(H * W, C)  # a sequence of HW pixels
    q, k, v = a.q(h), a.k(h), a.v(h)  # (HW, C) each
    weights = jax.nn.softmax(q @ k.T / jnp.sqrt(C), axis=-1)  # (HW, HW), rows sum to 1
    return x + a.proj_out(weights @ v).reshape(H, W, C)


rattn = randomise(attn, 10)
print(x64.shape, "->", rattn(x64).shape)

# %%
np.testing.assert_allclose(attention_inline(rattn, x64), rattn(x64), rtol=1e-4, atol=1e-4)
# Attention alone has no idea where a pixel is: shuffling the pixels shuffles the output the same way.
# (Position information comes from the convolutions around it.)
perm = jax.random.permutation(jax.random.key(11), 64)


def shuffle(img):
    return img.reshape(64, -1)[perm].reshape(img.shape)


np.testing.assert_allclose(rattn(shuffle(x64)), shuffle(rattn(x64)), rtol=1e-4, atol=1e-4)

# %% [markdown]
# ## 5. Changing resolution
#
# Going down, a 3×3 convolution with stride 2 halves $H$ and $W$ ("SAME" padding, as TensorFlow's, which the
# official code used). Going up, every pixel is repeated into a 2×2 square (nearest neighbour), then a 3×3
# convolution smooths the result. Neither changes the number of channels.

# %%
down = Downsample(64, key=jax.random.key(12))
up = Upsample(64, key=jax.random.key(13))
small = down(x64)
print(x64.shape, "-> Downsample ->", small.shape, "-> Upsample ->", up(small).shape)

# %% [markdown]
# Both written with a plain stride-1 "SAME" convolution, whose output pixel $(i, j)$ sees the input pixels $i-1..i+1$,
# $j-1..j+1$. For stride 2, TensorFlow's "SAME" pads only after the image, so output pixel $i$ sees input pixels
# $2i..2i+2$: the stride-1 output at the **odd** positions $2i+1$ (PyTorch's padding would keep the even ones).

# %%
def conv_inline(conv, x):
    """A 3x3 convolution with stride 1 and "SAME" padding, with the weights (HWIO) and bias of `conv`."""
    dims = ("NHWC", "HWIO", "NHWC")
    return jax.lax.conv_general_dilated(x[None], conv.weight, (1, 1), "SAME", dimension_numbers=dims)[0] + conv.bias


np.testing.assert_allclose(down(x64), conv_inline(down.conv, x64)[1::2, 1::2], rtol=1e-4, atol=1e-4)
np.testing.assert_allclose(up(small), conv_inline(up.conv, jnp.repeat(jnp.repeat(small, 2, axis=0), 2, axis=1)),
                           rtol=1e-4, atol=1e-4)

# %% [markdown]
# ## 6. Skip connections: the whole UNet
#
# The UNet (`nanoddpm_utils.unet.UNet`, following the official `models/unet.py`) is these blocks in a "U":
#
# ```
# conv_in ─► [ResBlock (+Attn)] × num_res_blocks, Downsample   at each resolution, widths ch × ch_mult
#         ─► middle: ResBlock, Attn, ResBlock
#         ─► [concat skip, ResBlock (+Attn)] × (num_res_blocks + 1), Upsample   back up, in reverse
#         ─► GroupNorm, swish, conv_out          (output: same shape as the input)
# ```
#
# Every activation on the way down is pushed onto a stack; on the way up each ResBlock pops one and
# concatenates it to its input along the channel axis. These **skip connections** hand the fine detail of
# the input straight to the output side, which the bottleneck alone would have lost.
#
# Here is the forward pass written out, logging every block's output. The model is the `digits` preset, the
# one the course trains on a CPU: 8×8 grey images, `ch = 32`, two levels (8×8 and 4×4), attention at 4×4.

# %%
def unet_forward(model, x, t, log=lambda name, module, h: None):
    """UNet.__call__ written out, without dropout. log(name, module, output) is called after each block."""
    temb = model.temb(t)
    log("time MLP", model.temb, temb)
    hs = [model.conv_in(x)]
    log("conv_in", model.conv_in, hs[-1])
    for level in model.down:
        for block, attn in zip(level.blocks, level.attns):
            h = block(hs[-1], temb)
            log("down ResBlock", block, h)
            if attn is not None:
                h = attn(h)
                log("down Attn", attn, h)
            hs.append(h)
        if level.resample is not None:
            hs.append(level.resample(hs[-1]))
            log("Downsample", level.resample, hs[-1])
    h = model.mid_block1(hs[-1], temb)
    log("mid ResBlock", model.mid_block1, h)
    h = model.mid_attn(h)
    log("mid Attn", model.mid_attn, h)
    h = model.mid_block2(h, temb)
    log("mid ResBlock", model.mid_block2, h)
    for level in model.up:
        for block, attn in zip(level.blocks, level.attns):
            skip = hs.pop()
            h = block(jnp.concatenate([h, skip], axis=-1), temb)
            log(f"up ResBlock (+{skip.shape[-1]} skip ch)", block, h)
            if attn is not None:
                h = attn(h)
                log("up Attn", attn, h)
        if level.resample is not None:
            h = level.resample(h)
            log("Upsample", level.resample, h)
    assert not hs, "every skip is used exactly once"
    out = model.conv_out(jax.nn.swish(model.norm_out(h)))
    log("GroupNorm, swish, conv_out", (model.norm_out, model.conv_out), out)
    return out


def print_table(rows):
    print(f"{'block':30} {'output shape':>16} {'parameters':>12}")
    for name, shape, n in rows:
        print(f"{name:30} {str(tuple(shape)):>16} {n:>12,}")
    print(f"{'total':30} {'':>16} {sum(n for *_, n in rows):>12,}")


model = make_model("digits", key=jax.random.key(14))
rmodel = randomise(model, 15, scale=0.02)
x = jax.random.normal(jax.random.key(16), (8, 8, 1))  # one noisy digit, channels last
rows = []
out = unet_forward(rmodel, x, jnp.array(10), lambda name, module, h: rows.append((name, h.shape, count_params(module))))
print_table(rows)

# %%
np.testing.assert_allclose(out, rmodel(x, jnp.array(10)), rtol=1e-4, atol=1e-4)  # the inline pass is the model's
assert sum(n for *_, n in rows) == count_params(model) == 701_345  # every parameter is in the table
# The drawing of section 1 has the traced network's ResBlocks, in order, with their widths and resolutions.
drawn = [(b.resolution, b.out_ch) for b in viz.unet_layout(digits_config) if b.name == "ResBlock"]
traced = [(shape[0], shape[-1]) for name, shape, _ in rows if "ResBlock" in name and not name.startswith("mid")]
assert drawn == traced, (drawn, traced)

# %% [markdown]
# ## 7. The paper's CIFAR-10 model, without allocating it
#
# The paper's CIFAR-10 network (`paper_cifar10`: `ch = 128`, `ch_mult = (1, 2, 2, 2)`, two ResBlocks per
# level, attention at 16×16, dropout 0.1) has **35.7M** parameters (appendix B). We do not
# need to build it to count them: `eqx.filter_eval_shape` runs the constructor abstractly and returns a model
# whose arrays are only shapes, and `jax.eval_shape` does the same for the forward pass. Nothing is allocated
# or computed, so this is instant even on a laptop.

# %%
def trace(config):
    """The rows (block, output shape, parameters) of a model built and run on shapes only: nothing is allocated."""
    abstract = eqx.filter_eval_shape(make_model, config, key=jax.random.key(0))
    params, static = eqx.partition(abstract, lambda leaf: isinstance(leaf, jax.ShapeDtypeStruct))
    rows, c = [], config.model if hasattr(config, "model") else config
    jax.eval_shape(lambda p, x: unet_forward(eqx.combine(p, static), x, jnp.array(0),
                                             lambda name, module, h: rows.append((name, h.shape, count_params(module)))),
                   params, jax.ShapeDtypeStruct((c.image_size, c.image_size, c.in_channels), jnp.float32))
    return abstract, rows


paper, paper_rows = trace(get_preset("paper_cifar10"))
print(type(paper.conv_in.weight), paper.conv_in.weight.shape)
print_table(paper_rows)

# %%
n_paper = count_params(paper)
assert abs(n_paper - 35.7e6) / 35.7e6 < 0.005, n_paper  # within 0.5% of the paper's 35.7M
assert sum(n for *_, n in paper_rows) == n_paper == 35_746_307
assert [shape[0] for name, shape, _ in paper_rows if "Attn" in name] == [16, 16, 4, 16, 16, 16]  # 16x16 + the middle

# %% [markdown]
# Where do the parameters live? A 3×3 convolution from $C$ to $C$ channels has $9C^2$ weights, so the
# 256-channel levels (16×16 and below) hold most of them, while the 32×32 level, where the compute is,
# holds few.

# %%
by_res = {}
for name, shape, n in paper_rows:
    if len(shape) == 3:
        by_res[shape[0]] = by_res.get(shape[0], 0) + n
plt.figure(figsize=(7, 3.5))
plt.bar([f"{r}×{r}" for r in by_res], [n / 1e6 for n in by_res.values()])
plt.ylabel("parameters (millions)")
plt.title("paper_cifar10: parameters of the blocks whose output has this resolution")
plt.show()

# %%
assert by_res[32] < by_res[16] and by_res[32] < by_res[4]

# %% [markdown]
# ## 8. The presets
#
# The package's presets (`nanoddpm_utils.config`) differ from the paper's model in a few fields. The paper's
# model needs an accelerator for days; `nano_cifar10` is a CIFAR-10 model sized for one Colab accelerator;
# `digits` trains on scikit-learn's 8×8 digits on a CPU (notebook 04); `smoke` only exists for tests.

# %%
print(f"{'preset':14} {'image':>9} {'ch':>4} {'ch_mult':>13} {'blocks':>6} {'attn at':>8} {'dropout':>7} {'parameters':>12}")
counts = {}
for name, cfg in PRESETS.items():
    m = cfg.model
    counts[name] = count_params(eqx.filter_eval_shape(make_model, name, key=jax.random.key(0)))
    image = f"{m.image_size}²×{m.in_channels}"
    print(f"{name:14} {image:>9} {m.ch:>4} {str(m.ch_mult):>13} {m.num_res_blocks:>6} "
          f"{str(m.attn_resolutions):>8} {m.dropout:>7} {counts[name]:>12,}")

# %%
assert counts["paper_cifar10"] > counts["nano_cifar10"] > counts["digits"] > counts["smoke"]

# %% [markdown]
# ## Summary
#
# - The UNet maps $x_t$ (and $t$) to a noise prediction of the same shape: down through levels of halving
#   resolution, a middle at the lowest one, back up, with skip connections across the "U". Every function
#   acts on one channels-last image `(H, W, C)`, batched with `vmap`.
# - A ResBlock is GroupNorm, swish, conv, **plus a per-channel shift from the time embedding**, then GroupNorm,
#   swish, dropout, conv, added to a skip path; self-attention relates all positions at 16×16; strided
#   convolutions and nearest-neighbour upsampling change resolution.
# - The paper's model has 35,746,307 parameters (35.7M), most of them at the low resolutions.
#
# ## Exercises
#
# 1. **Draw and count.** Make a `ModelConfig` with three levels for the 8×8 digits (`ch_mult=(1, 2, 2)`,
#    `attn_resolutions=(2,)`), draw it with `viz.draw_unet`, and predict its parameter count before you build
#    it (`count_params(eqx.filter_eval_shape(make_model, config, key=...))`). Which level holds most of them?
# 2. **The identity at initialisation.** A fresh ResBlock with equal input and output widths is the identity
#    (section 3), because `conv2` starts at zero. Is a fresh *UNet* the identity too? Predict what
#    `model(x, t)` returns for the freshly built `digits` model: `"x"`, `"zeros"` or `"noise"`.
# 3. **A UNet without skips.** Replace the `jnp.concatenate([h, skip])` in `unet_forward` by `h` alone: which
#    weights no longer fit, and what information could the output side no longer see?

# %%
fresh_output = None  # exercise 2: your prediction, "x", "zeros" or "noise"

# %% [markdown]
# ## Solutions
#
# 1. The cell below draws it and counts 1,112,801 parameters (the two-level `digits` model has 701,345): the new
#    2×2 level (with the middle blocks) and the 4×4 level, both 64 channels wide, hold most of them, as the $9C^2$
#    rule predicts.
# 2. `"zeros"`: `conv_out` starts at (almost exactly) zero, its weights scaled by $10^{-10}$ as in the official
#    code, so a fresh UNet predicts $\epsilon \approx 0$ for every input: the mean of the noise, the best guess
#    before any training. Not the identity.
# 3. Every up ResBlock's first convolution (and its 1×1 skip) expects the width of `h` plus the skip's channels, so
#    its weights no longer fit (a shape error). Without the skips the output side would see only what passed
#    through the lowest resolution: the fine, pixel-level detail of $x_t$, which the noise estimate needs, is gone.
#
# The cell below runs solution 1 and checks your answer to 2 (or this one, if you left `None`).

# %%
three_levels = dataclasses.replace(digits_config, ch_mult=(1, 2, 2), attn_resolutions=(2,))
viz.draw_unet(three_levels)
plt.show()
three, three_rows = trace(three_levels)
by_level = {}
for name, shape, n in three_rows:
    if len(shape) == 3:
        by_level[f"{shape[0]}x{shape[0]}"] = by_level.get(f"{shape[0]}x{shape[0]}", 0) + n
print(f"{count_params(three):,} parameters; by the resolution of a block's output: {by_level}")
assert count_params(three) == 1_112_801

fresh_output = fresh_output or "zeros"
expected = {"x": x, "zeros": jnp.zeros_like(x)}.get(fresh_output)
assert expected is not None and np.allclose(model(x, jnp.array(10)), expected, atol=1e-3), \
    "not quite: look at how conv_out is initialised"
print(f"exercise 2: {fresh_output!r} is right")

# %% [markdown]
# ## Go further
#
# - The paper, Appendix B (the architecture) and the official `models/unet.py`.
# - Ronneberger et al. (2015), *U-Net* ([arXiv:1505.04597](https://arxiv.org/abs/1505.04597)); Salimans et al.
#   (2017), *PixelCNN++*, the backbone DDPM adapts.
# - Nichol & Dhariwal (2021), *Improved DDPM*, and Dhariwal & Nichol (2021), *Diffusion models beat GANs*
#   ([arXiv:2105.05233](https://arxiv.org/abs/2105.05233)), section 3: more heads, attention at more
#   resolutions, BigGAN up/down-sampling, adaptive group norm (the time embedding as a scale and a shift).
# - Karras et al. (2022), *EDM*: the network wrapped in input and output scalings ("preconditioning").
# - Why channels-last, and how the convolutions run fast inside loops: [appendix A1](A1_jax_speed.ipynb).
#
# We have the forward process, the time embedding and the network. Next: the loss that trains it.
#
# **Next:** [04 — Training](04_training_loop.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/04_training_loop.ipynb)
