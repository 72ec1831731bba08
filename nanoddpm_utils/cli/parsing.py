"""The command line's flags, each value checked while parsing; no jax (nor numpy), so ``--help`` answers at once."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..config import PRESETS, SAMPLERS, SPACINGS

MAX_SEED = 2**32 - 1  # a seed is 32 bits of a PRNG key
MAX_NUM = 50_000  # samples per command: enough for an FID-50k set
CHUNK = 512  # images per call of the sampler, so memory does not grow with --num (eval's 360 digits: one call)


def whole_number(lowest: int, highest: int | None = None):
    """An argparse type: a whole number in ``lowest .. highest``, with a message that says so."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if n < lowest:
            raise argparse.ArgumentTypeError(f"must be >= {lowest}, got {n}")
        if highest is not None and n > highest:
            raise argparse.ArgumentTypeError(
                f"must be <= {highest:,}, got {n:,}" if n < 10**30 else f"must be <= {highest:,}"
            )
        return n

    return parse


def number(lowest: float, highest: float | None = None, meaning: str = ""):
    """An argparse type: a finite number in ``lowest .. highest`` (``meaning`` explains the scale when refused)."""

    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if highest is not None and not lowest <= x <= highest:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must lie in [{lowest}, {highest}]{meaning}, got {value}")
        if not (lowest <= x and math.isfinite(x)):
            raise argparse.ArgumentTypeError(f"must be >= {lowest}{meaning}, got {value}")
        return x

    return parse


def labels(value: str):
    """An argparse type for --label: "7", a comma list "0,3,5", or "all" (checked against the run's classes later)."""
    if value.strip().lower() == "all":
        return "all"
    try:
        classes = [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a class number, a comma list of them (0,3,5) or 'all'"
        ) from None
    if any(v < 0 for v in classes):
        raise argparse.ArgumentTypeError(f"class numbers are >= 0, got {value!r}")
    return classes


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gets one line (what is wrong, where the help is), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; `{self.prog} --help` lists every flag\n")


def build_parser() -> argparse.ArgumentParser:
    positive, seed = whole_number(1), whole_number(0, MAX_SEED)
    parser = Parser(
        prog="python -m nanoddpm_utils", description="Train and sample denoising diffusion models (DDPM) in JAX."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="on an internal error (a bug), print the full traceback for a bug report"
    )

    t = sub.add_parser(
        "train",
        parents=[common],
        help="train a preset and write a run directory",
        description="Train a DDPM. Writes RUN_DIR/config.json, checkpoints/, samples/ and "
        "metrics.jsonl (and W&B logs: online when WANDB_API_KEY is set, else offline).",
    )
    t.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="model + training preset (default: digits, which trains on a CPU in minutes; with "
        "--resume, the run's own)",
    )
    t.add_argument("--out", required=True, type=Path, help="run directory to write (created if missing)")
    t.add_argument(
        "--data",
        help="'digits' (scikit-learn, no download), 'cifar10' (kagglehub) or a folder of images; "
        "default: the preset's dataset",
    )
    t.add_argument("--steps", type=positive, help="total training steps (default: the preset's)")
    t.add_argument("--batch-size", type=positive, help="global batch size (default: the preset's)")
    t.add_argument(
        "--seed", type=seed, help=f"random seed in 0 .. {MAX_SEED}: same seed and config, same run (default 0)"
    )
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="any config field, after the preset (or the resumed run) and the flags above; repeatable: "
        "--set train.lr=2e-4 --set model.ch_mult=1,2,2 (sections: model, diffusion, train)",
    )
    t.add_argument("--ckpt-every", type=positive, help="checkpoint every N steps (default: preset's)")
    t.add_argument(
        "--ckpt-minutes",
        type=number(0, meaning=" (0 turns it off)"),
        default=10.0,
        help="also checkpoint every M minutes of wall time (default 10; 0 turns it off)",
    )
    t.add_argument("--keep", type=positive, default=3, help="keep the newest K checkpoints (default 3)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    t.add_argument(
        "--devices",
        type=positive,
        help="train data-parallel on the first N devices (default: all; the batch size must be a multiple of N)",
    )
    t.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host run (a TPU pod slice, a GPU cluster): call jax.distributed.initialize() first",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    s = sub.add_parser(
        "sample",
        parents=[common],
        help="draw samples from a trained run",
        description="Sample with the run's EMA weights (the paper's Algorithm 2, or DDIM with --sampler ddim). Writes "
        "FILE.npz holding `samples` (float32, N x H x W x C, in [0, 1]) and a PNG grid beside it.",
    )
    s.add_argument("--run", required=True, type=Path, help="run directory written by `train`")
    s.add_argument(
        "--num",
        type=whole_number(1, MAX_NUM),
        default=64,
        help=f"number of images, 1 .. {MAX_NUM:,}, drawn {CHUNK} at a time (default 64)",
    )
    s.add_argument("--out", required=True, type=Path, help="output .npz file; the grid goes to the same name .png")
    s.add_argument("--seed", type=seed, default=0, help=f"random seed in 0 .. {MAX_SEED} (default 0)")
    s.add_argument(
        "--sampler",
        choices=SAMPLERS,
        help="a noise-predicting run: ddpm, ancestral sampling over all T steps (Algorithm 2, its default); ddim, "
        "DDIM (Song et al. 2021); dpm++2m, DPM-Solver++(2M) (Lu et al. 2022); edm, EDM's Heun sampler (Karras et "
        "al. 2022; 2 --steps - 1 network calls). A flow-matching run: euler (its default) or heun (2 calls a step)",
    )
    s.add_argument(
        "--steps",
        type=positive,
        help="every sampler but ddpm: the number of steps (defaults: ddim and dpm++2m 50, or T if smaller; "
        "edm 18; euler 20; heun 10); ddim and dpm++2m take 1 .. T",
    )
    s.add_argument(
        "--spacing",
        choices=SPACINGS,
        default="uniform",
        help="ddim and dpm++2m: where the steps fall; uniform (default), quadratic (dense near t = 0, "
        "DDIM paper) or trailing (Lin et al. 2023)",
    )
    s.add_argument(
        "--eta",
        type=number(0, 1),
        default=0.0,
        help="DDIM only: noise scale in [0, 1]; 0 is deterministic given the seed (default), 1 is DDPM-like noise",
    )
    s.add_argument(
        "--churn",
        type=number(0),
        default=0.0,
        help="edm only: S_churn >= 0, the fresh noise each step adds (Algorithm 2); 0 is deterministic (default)",
    )
    s.add_argument(
        "--label",
        type=labels,
        help="class-conditional runs: the class to draw (7), a comma list (0,3,5: --num images of each, "
        "one grid row per class) or 'all' (one row per class)",
    )
    s.add_argument(
        "--guidance",
        type=number(0, meaning=" (0: unconditional, 1: conditional, more: guided)"),
        help="with --label: the classifier-free guidance scale w >= 0; eps = eps(x, t) + w (eps(x, t, c) - "
        "eps(x, t)): 1 is plain conditional sampling (default), 0 unconditional, more follows the "
        "class more closely (Ho & Salimans 2022 write it with their w = this w - 1)",
    )

    e = sub.add_parser(
        "eval",
        parents=[common],
        help="bits/dim on the test split, and sample quality for digits",
        description="Evaluate a run's EMA weights: the variational bound on the negative log-likelihood in bits/dim on "
        "the test split (the paper's Table 1: prior L_T, the KL terms L_1 .. L_{T-1}, decoder L_0) and, for digits, a "
        "sample-quality table against real held-out digits and noise.",
    )
    e.add_argument("--run", required=True, type=Path, help="run directory written by `train`")
    e.add_argument(
        "--num-samples",
        type=whole_number(0, MAX_NUM),
        help="digits only: samples for the quality table (default: as many as the test split holds, "
        "360; 0 skips the table; at least 2 otherwise)",
    )
    e.add_argument("--batch-size", type=positive, default=128, help="images per batch for bits/dim (default 128)")
    e.add_argument("--seed", type=seed, default=0, help="random seed for the bound's noise and the samples (default 0)")
    e.add_argument(
        "--bpd-examples",
        type=whole_number(0),
        help="test images for bits/dim, a seeded random subset (default: all for digits, 1000 for other "
        "datasets; the bound costs T model calls per image; 0 skips it)",
    )
    e.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    return parser
