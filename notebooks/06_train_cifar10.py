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
# # 06 — Training on CIFAR-10
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/06_train_cifar10.ipynb)
#
# Part 6 of **nanoJaxDDPM** (DDPM, Ho et al. 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239)).
# Notebooks 01–05 built every piece and checked it against the package `nanoddpm_utils`. This one writes no model
# code at all: it uses the package to train **your own** CIFAR-10 model from scratch on the paper's dataset
# (50,000 colour images of 32×32 in ten classes), on whatever accelerator you have. No trained CIFAR-10 model comes
# with the course: the weights you get are the ones this notebook trains.
#
# **What you will learn**
# - how to get CIFAR-10 with `kagglehub`, and where your Kaggle API token goes (Colab Secrets or the environment);
# - the `nano_cifar10` preset, and that the paper's 35.7M-parameter setup is one preset name away (`paper_cifar10`);
# - training on the devices `jax.devices()` reports (a Colab TPU runtime is **one** chip, a v5e-1; a GPU runtime one
#   GPU; or your CPU), with compiled programs kept on disk, logging to Weights & Biases (online, offline or off);
# - checkpoints on Google Drive, and a "resume if a checkpoint exists" cell, so a disconnected Colab session loses
#   minutes, not hours;
# - drawing a grid of samples from the EMA weights.
#
# **Runtime.** In Colab choose *Runtime → Change runtime type → TPU (v5e-1) or GPU*. The `nano_cifar10` preset
# trains for 30,000 steps of batch 128, 3.84 million images: divide by the images per second that the training cell
# prints (or that `python bench/accelerator.py` measures) to know how long yours will take.

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
import json
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
from nanoddpm_utils.cifar10 import CIFAR10_CLASSES, load_cifar10
from nanoddpm_utils.images import image_grid, save_png
from nanoddpm_utils.state import init_state
from nanoddpm_utils.tracking import Tracker, read_metrics, resolve_mode
from nanoddpm_utils.unet import count_params, make_model

SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"  # smoke mode: a tiny model, a few steps (a quick trial run)
print(f"jax {jax.__version__}; smoke mode: {SMOKE}")

# %% [markdown]
# ## 1. The devices
#
# JAX runs on whatever backend it finds. On a Colab TPU runtime `jax.devices()` lists one TPU chip (v5e-1), on a
# GPU runtime one GPU, and otherwise the CPU; a TPU v3-8 lists eight. `train.fit` trains data-parallel on all of
# them with JAX's own SPMD (`nanoddpm_utils/parallel.py`): a 1-D mesh named `"data"`, the model, EMA and optimizer
# state replicated on every device, and each step's global batch split along the mesh; XLA adds the all-reduce
# that averages the gradients. Nothing below assumes a number of devices; the batch size must be a multiple of it.

# %%
from nanoddpm_utils import parallel

devices = jax.devices()
mesh = parallel.make_mesh()
print(f"backend {jax.default_backend()}: {len(devices)} device(s): {[d.device_kind for d in devices]}")
print(f"mesh {dict(mesh.shape)}: each device gets {128 // mesh.size} of a batch of 128")

# %%
assert mesh.size == len(devices) and mesh.axis_names == ("data",)
parallel.check_batch_size(128, mesh)  # raises if 128 did not split over these devices

# %% [markdown]
# **Compiled programs on disk.** The first call of a jitted function traces it and has XLA compile it for your
# device: for the training step of a big UNet, that can take minutes. JAX can keep compiled programs in a
# persistent cache on disk, keyed by the program and the device, so that a restarted kernel (or a resumed run, or
# the sampler you call again tomorrow) loads them instead of compiling again. Two settings turn it on: where the
# cache lives, and the shortest compilation worth keeping. On Colab the folder is wiped with the runtime; point it
# at your Drive to keep it longer.

# %%
jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/nanoddpm/jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)  # keep programs that took 1 s or more

# %% [markdown]
# ## 2. Kaggle credentials
#
# The package downloads CIFAR-10 with [`kagglehub`](https://github.com/Kaggle/kagglehub) from the Kaggle dataset
# `pankrzysiu/cifar10-python`, which holds the official `cifar-10-batches-py` files (170 MB, cached after the first
# download; on Colab, `kagglehub` serves it from Colab's own dataset cache under `/kaggle/input/`). Public datasets
# download without logging in, but with credentials the download is never refused.
#
# **The API token (Kaggle's current form).** On kaggle.com → *Settings* → *API* → *Generate New Token*, copy the
# token. Then either
#
# - **on Colab**: open the *Secrets* panel (the key icon on the left), add a secret named `KAGGLE_API_TOKEN` with
#   the token as its value, and allow this notebook to read it (add `WANDB_API_KEY` too, to log to W&B online);
# - **anywhere else**: `export KAGGLE_API_TOKEN=...` in the shell that starts Jupyter.
#
# **The legacy pair** still works: the `kaggle.json` of an older key holds `{"username": ..., "key": ...}`; use the
# two secrets (or environment variables) `KAGGLE_USERNAME` and `KAGGLE_KEY`, or save the file as
# `~/.kaggle/kaggle.json` with `chmod 600 ~/.kaggle/kaggle.json`.
#
# The next cell copies the secrets into the environment, where `kagglehub` (and the command line of the summary)
# looks for them. The values are never printed and never written into the run directory.

# %%
if "google.colab" in sys.modules:
    from google.colab import userdata

    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "WANDB_API_KEY"):
        if not os.environ.get(name):
            try:
                os.environ[name] = userdata.get(name).strip()
            except Exception:  # no such secret, or access not granted
                pass

kaggle_json = Path("~/.kaggle/kaggle.json").expanduser()
print("Kaggle API token:", bool(os.environ.get("KAGGLE_API_TOKEN")),
      "| legacy pair:", bool(os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")),
      f"| {kaggle_json}: {kaggle_json.is_file()} | W&B key: {bool(os.environ.get('WANDB_API_KEY'))}")

# %%
# The usual mistake with the legacy form is half a pair: set both or neither (the token needs no username).
assert bool(os.environ.get("KAGGLE_USERNAME")) == bool(os.environ.get("KAGGLE_KEY")), \
    "set both KAGGLE_USERNAME and KAGGLE_KEY (Colab: Secrets panel), or neither and KAGGLE_API_TOKEN instead"
if kaggle_json.is_file():
    assert {"username", "key"} <= set(json.loads(kaggle_json.read_text())), f"{kaggle_json} lacks 'username' or 'key'"

# %% [markdown]
# ## 3. CIFAR-10
#
# `load_cifar10("train")` calls `kagglehub.dataset_download("pankrzysiu/cifar10-python")` (a no-op once it is
# cached), finds the `cifar-10-batches-py` folder inside, and reads the batches with a restricted unpickler that
# only admits NumPy arrays (a pickle can name any function to run; a crafted file could run code). Each row of
# 3072 bytes becomes a channels-last `(32, 32, 3)` uint8 image. If you already have CIFAR-10 on disk, in any of
# the three Kaggle layouts, set the environment variable `NANODDPM_CIFAR10_DIR` to its folder and nothing is
# downloaded. On CIFAR-10 the next cell prints 50,000 training images of shape (32, 32, 3) (150 MiB) and shows
# sixteen of them with their class names.

# %% tags=["needs-real-data"]
start = time.perf_counter()
images, labels = load_cifar10("train", return_labels=True)
print(f"{len(images)} training images {images.shape[1:]} {images.dtype} in {time.perf_counter() - start:.1f} s; "
      f"{images.nbytes / 2**20:.0f} MiB")
viz.show_images(images[:16], [CIFAR10_CLASSES[i] for i in labels[:16]], ncols=8, size=1.3)
plt.show()

# %%
assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
assert labels.shape == (len(images),) and set(np.unique(labels)) <= set(range(10))
assert np.all(images.reshape(len(images), -1).std(axis=1) > 0)  # no blank image (a failed decode)
if not SMOKE:
    assert len(images) == 50_000
    assert np.all(np.bincount(labels, minlength=10) == 5000)  # CIFAR-10 is balanced: 5000 per class

# %% [markdown]
# ## 4. The preset
#
# `nano_cifar10` is the paper's network, narrower (`ch = 64` instead of 128) and one level shallower
# (`ch_mult = (1, 2, 2)`), trained for 30,000 steps instead of 800,000, with a shorter warmup and EMA to match. The
# paper's exact setup is `paper_cifar10`: change `PRESET` below and everything else follows (it needs days on one
# accelerator; the sampler and the checkpoints do not care). In smoke mode an even smaller version trains for a
# few steps, with $T = 10$.

# %%
PRESET = "nano_cifar10"  # or "paper_cifar10": the paper's 35.7M-parameter model and 800k steps
config = get_preset(PRESET)
if SMOKE:  # a tiny stand-in: 16 channels, two levels, one ResBlock each, T = 10, 40 steps of batch 8, a short EMA
    config = config.replace(
        model={"ch": 16, "ch_mult": (1, 2), "num_res_blocks": 1, "dropout": 0.0, "num_groups": 8},
        diffusion={"num_timesteps": 10},
        train={"steps": 40, "batch_size": 8, "lr": 2e-3, "warmup_steps": 2, "ema_decay": 0.9, "steps_per_call": 5,
               "log_every": 5, "sample_every": 40, "ckpt_every": 20})

for name in (PRESET, "paper_cifar10"):
    c = get_preset(name)
    n = count_params(eqx.filter_eval_shape(make_model, c, key=jax.random.key(0)))  # shapes only, nothing allocated
    print(f"{name:14} {n / 1e6:5.1f}M parameters, ch {c.model.ch}, ch_mult {c.model.ch_mult}, "
          f"{c.train.steps:,} steps of batch {c.train.batch_size}, lr {c.train.lr}, EMA {c.train.ema_decay}")
print("this run:", config)

# %%
assert config.model.image_size == 32 and config.model.in_channels == 3 and config.dataset == "cifar10"
assert count_params(eqx.filter_eval_shape(make_model, "paper_cifar10", key=jax.random.key(0))) == 35_746_307
if not SMOKE:
    assert config == get_preset(PRESET)

# %% [markdown]
# ## 5. Resume if a checkpoint exists
#
# A run lives in one folder: `config.json`, `checkpoints/step_N.eqx` (model, EMA, Adam state, step and PRNG key,
# with a SHA-256 beside each), sample grids, `metrics.jsonl` and W&B's files. On Colab everything under `/content`
# is wiped when the runtime is recycled; only Google Drive survives. So on Colab the run goes to your Drive, in
# `MyDrive/nanoJaxDDPM/runs/` (Colab asks once for permission to mount it; set `USE_DRIVE = False` to keep the
# run in `/content` instead).
#
# If the folder already holds a checkpoint (say, Colab disconnected an hour in and you ran the notebook again),
# we continue from the newest intact one; otherwise we start at step 0. Continuing gives the same weights as
# never stopping, since the data order and every random number come from the `TrainState`'s key.

# %%
USE_DRIVE = True  # on Colab: keep the run on Google Drive, which outlives the runtime
if "google.colab" in sys.modules and USE_DRIVE:
    from google.colab import drive

    drive_root = Path(os.environ.get("NANODDPM_DRIVE_MOUNT", "/content/drive"))  # Colab's usual mountpoint
    drive.mount(str(drive_root))  # a no-op when it is already mounted
    RUNS = drive_root / "MyDrive" / "nanoJaxDDPM" / "runs"
else:
    RUNS = Path(tempfile.mkdtemp()) if SMOKE else Path("runs")  # a smoke run leaves nothing behind here
RUN_DIR = RUNS / (f"{PRESET}_smoke" if SMOKE else PRESET)
if checkpoint.latest(RUN_DIR) is not None:
    state, _ = checkpoint.restore(RUN_DIR, config)  # refuses a checkpoint of another model
    print(f"resuming {RUN_DIR} from {checkpoint.latest(RUN_DIR).name} (step {int(state.step)} of {config.train.steps})")
else:
    state = init_state(config, config.train.seed)
    print(f"new run in {RUN_DIR}")

# %%
assert 0 <= int(state.step) <= config.train.steps
assert state.model.config == config.model

# %% [markdown]
# ## 6. Train
#
# **Weights & Biases.** `tracking.Tracker(run_dir, config)` appends every row of metrics to `run_dir/metrics.jsonl`
# (the run's numbers never depend on W&B) and sends it to W&B: **online** when an API key is set (`WANDB_API_KEY`
# from the Secrets panel, the environment, or `wandb login`), **offline** otherwise (the run is kept in
# `run_dir/wandb/`; upload it later with `wandb sync <RUN_DIR>/wandb/offline-run-*`), and **disabled** with
# `WANDB_MODE=disabled`. It never prompts and never stops training.

# %%
print("W&B key set:", bool(os.environ.get("WANDB_API_KEY")), "| WANDB_MODE:", os.environ.get("WANDB_MODE", "(unset)"),
      "| the tracker will run W&B:", resolve_mode())

# %% [markdown]
# `train.fit` runs `steps_per_call` steps per jitted `lax.scan` (notebook 04), logs every `log_every` steps, writes
# a grid of 64 samples every `sample_every` steps and a checkpoint every `ckpt_every` steps, every 10 minutes
# (`ckpt_minutes`) and at the end. Interrupting the cell (■) loses at most the steps since the last checkpoint: run
# the cell above, then this one, to continue. On CIFAR-10 you will see a progress bar over the run's steps, then
# the W&B mode, the last loss and your accelerator's images per second.

# %% tags=["needs-real-data"]
with Tracker(RUN_DIR, config.to_dict(), name=f"06-{config.name}") as tracker:
    state, history = train.fit(config, images, state=state, run_dir=RUN_DIR, tracker=tracker, ckpt_minutes=10)
    print(f"W&B mode: {tracker.mode}")
if history:
    print(f"step {history[-1]['step']}: loss {history[-1]['loss']:.4f}, {history[-1]['images_per_sec']:.0f} images/s")

# %%
rows = read_metrics(RUN_DIR)
assert [r["step"] for r in rows][-1] == int(state.step) == config.train.steps
# L_simple starts at 1 (the untrained network predicts eps = 0); a run that learns takes it far below
assert rows[-1]["loss"] < 0.5 * rows[0]["loss"], (rows[0]["loss"], rows[-1]["loss"])
# If the runtime died now, this is what the next session would resume from: the same state, bit for bit.
resumed, _ = checkpoint.restore(RUN_DIR, config)
assert int(resumed.step) == int(state.step)
assert all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(resumed, eqx.is_array)),
                                                        jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array))))

# %% [markdown]
# The run's loss, read back from `metrics.jsonl`. On CIFAR-10 you will see it fall from about 1 (the untrained
# network predicts $\epsilon = 0$) quickly at first, then slowly, with the jitter of each log interval's batches.

# %% tags=["needs-real-data"]
plt.figure(figsize=(7, 3))
plt.plot([r["step"] for r in rows], [r["loss"] for r in rows], ".-")
plt.yscale("log")
plt.xlabel("step")
plt.ylabel(r"$L_\mathrm{simple}$")
plt.title(f"{config.name}: training loss (metrics.jsonl)")
plt.show()

# %% [markdown]
# ## 7. Samples
#
# 64 images drawn with Algorithm 2 (notebook 05) from the EMA weights, $T$ network calls each, saved as a PNG grid
# beside the run (`sampler="ddim"` draws them in fewer steps: notebook 08). On CIFAR-10 you will see your model's
# 64 samples, 32×32 colour images drawn from noise, and how smooth they are next to the training images.

# %% tags=["needs-real-data"]
def neighbour_correlation(x):
    """The correlation between horizontally adjacent pixels: high in photographs, 0 in noise."""
    x = np.asarray(x, np.float64)
    return np.corrcoef(x[:, :, :-1].ravel(), x[:, :, 1:].ravel())[0, 1]


start = time.perf_counter()
samples = jax.block_until_ready(sample.sample_images(config, state.ema, jax.random.key(0), 64))
grid_path = save_png(samples, RUN_DIR / "samples.png")
print(f"64 samples in {time.perf_counter() - start:.1f} s -> {grid_path}")
print("grids written during training:", sorted(p.name for p in (RUN_DIR / "samples").glob("*.png")))
plt.figure(figsize=(6, 6))
plt.imshow(image_grid(samples))
plt.axis("off")
plt.title(f"{config.name}, step {int(state.step)}, EMA weights")
plt.show()
corr = {"samples": neighbour_correlation(samples), "training images": neighbour_correlation(images[:1000] / 127.5 - 1)}
print("correlation of adjacent pixels:", {k: round(v, 3) for k, v in corr.items()})

# %%
# Noise has no spatial structure (correlation 0); a model that learned images draws samples nearly as smooth as
# them. (In smoke mode a tiny model after 40 steps: its samples only have to be smoother than noise.)
assert corr["samples"] > (0.05 if SMOKE else 0.8 * corr["training images"]), corr

# %% [markdown]
# ## Summary
#
# - `load_cifar10` downloads CIFAR-10 with `kagglehub` (your Kaggle API token from Colab Secrets or the environment;
#   the legacy `KAGGLE_USERNAME`/`KAGGLE_KEY` pair or `~/.kaggle/kaggle.json` work too) and reads it safely into a
#   uint8 array.
# - One preset name sets the model and the training: `nano_cifar10` for a first model, `paper_cifar10` for the
#   paper's.
# - `fit` trains on every device (data parallel), logs to W&B and `metrics.jsonl`, and checkpoints; on Colab the run
#   lives on Google Drive and the resume cell continues it from its newest intact checkpoint after a reset.
# - The same run from the command line: `python -m nanoddpm_utils train --preset nano_cifar10 --out runs/nano_cifar10`
#   (add `--resume` to continue it), then `python -m nanoddpm_utils sample --run runs/nano_cifar10 --out samples.npz`.
#
# ## Exercises
#
# 1. **Resume for real.** Train for a few minutes, interrupt the training cell (■), then run the resume cell and
#    the training cell again. Which step does the resume cell report, and which checkpoints are in
#    `RUN_DIR / "checkpoints"`? How many steps did the interruption cost, and how would `ckpt_every` change that?
# 2. **Precision.** Set `config = config.replace(train={"compute_dtype": "float32"})` and compare the images/s
#    printed by the training cell with the default (`"auto"`, which is bfloat16 on a TPU or on a GPU that has
#    bfloat16 units). Does the loss after the same number of steps differ by more than its step-to-step noise?
# 3. **Fewer steps at sampling.** Draw 64 samples with `sample.sample_images(config, state.ema, jax.random.key(0),
#    64, sampler="ddim", steps=50)`, time it against the cell of section 7, and compare the two grids by eye.
#
# ## Go further
#
# - The paper's CIFAR-10 setup (Appendix B): 800k steps of batch 128, dropout 0.1, EMA 0.9999 — `paper_cifar10`.
# - Nichol & Dhariwal, *Improved DDPM* (arXiv:2102.09672): the cosine schedule (`schedule.py`) and learned variances.
# - Karras et al., *EDM* (arXiv:2206.00364): how much of the training recipe matters, measured one change at a time.
# - What else makes the loop fast (one jit, `lax.scan`, buffer donation): [appendix A1](A1_jax_speed.ipynb).
#
# ## Solutions
#
# 1. The resume cell reports the step of the newest intact checkpoint: the last multiple of `ckpt_every` (2000) or
#    the last 10-minute mark (`ckpt_minutes`), whichever came later. `checkpoints/` holds the newest three
#    (`keep=3`), each with its SHA-256 beside it. The interruption cost the steps since that checkpoint, so at most
#    10 minutes of training; a smaller `ckpt_every` loses less, but writes more often (each checkpoint holds the
#    weights four times: model, EMA and Adam's two moments).
# 2. Train the same number of steps in each precision and compare the last rows:
#    ```python
#    for dtype in ("float32", "auto"):
#        cfg = config.replace(train={"compute_dtype": dtype})
#        _, rows = train.fit(cfg, images, steps=500, progress=False)
#        print(dtype, f"{rows[-1]['images_per_sec']:.0f} images/s, loss {rows[-1]['loss']:.4f}")
#    ```
#    On a TPU or a GPU with bfloat16 units, `"auto"` is faster (the matrix units run bfloat16 at a higher rate and
#    the activations take half the memory); on a CPU `"auto"` is float32, so the two rows are the same run. The
#    losses should differ by no more than the jitter between consecutive log rows of one run.
# 3. ```python
#    start = time.perf_counter()
#    fast = jax.block_until_ready(sample.sample_images(config, state.ema, jax.random.key(0), 64, sampler="ddim", steps=50))
#    print(f"{time.perf_counter() - start:.1f} s")
#    plt.imshow(image_grid(fast)), plt.axis("off"), plt.show()
#    ```
#    50 network calls instead of $T = 1000$: about 20 times faster. Notebook 08 measures what the fewer steps cost
#    in quality.
#
# How good is the model? Bits per dimension (the paper's Table 1) and the judges of sample quality are next.
#
# **Next:** [07 — Evaluation: bits/dim and sample quality](07_evaluation.ipynb) ·
# [open in Colab](https://colab.research.google.com/github/suvadityamuk/nanoJaxDDPM/blob/main/notebooks/07_evaluation.ipynb)
