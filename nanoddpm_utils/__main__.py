"""The command line: ``python -m nanoddpm_utils train|sample|eval …`` (see ``--help`` of each).

User errors (bad data, a bad flag value, an unusable checkpoint) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import PRESETS


def _int_at_least(lowest: int):
    """An argparse type: a whole number >= ``lowest``, with a message that says so."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if n < lowest:
            raise argparse.ArgumentTypeError(f"must be >= {lowest}, got {n}")
        return n
    return parse


_positive, _nonnegative = _int_at_least(1), _int_at_least(0)


def _minutes(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not x >= 0.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 turns it off), got {value}")
    return x


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gets one line (what is wrong, where the help is), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; `{self.prog} --help` lists every flag\n")


def _eta(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {x}")
    return x


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m nanoddpm_utils",
                     description="Train and sample denoising diffusion models (DDPM) in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a preset and write a run directory",
                       description="Train a DDPM. Writes RUN_DIR/config.json, checkpoints/, samples/ and "
                                   "metrics.jsonl (and W&B logs: online when WANDB_API_KEY is set, else offline).")
    t.add_argument("--preset", default="digits", choices=sorted(PRESETS),
                   help="model + training preset (default: digits, which trains on a CPU in minutes)")
    t.add_argument("--out", required=True, type=Path, help="run directory to write (created if missing)")
    t.add_argument("--data", default=None,
                   help="'digits' (scikit-learn, no download), 'cifar10' (kagglehub) or a folder of images; "
                        "default: the preset's dataset")
    t.add_argument("--steps", type=_positive, default=None, help="total training steps (default: the preset's)")
    t.add_argument("--batch-size", type=_positive, default=None, help="global batch size (default: the preset's)")
    t.add_argument("--seed", type=int, default=None, help="random seed: same seed and config, same run (default 0)")
    t.add_argument("--ckpt-every", type=_positive, default=None, help="checkpoint every N steps (default: preset's)")
    t.add_argument("--ckpt-minutes", type=_minutes, default=10.0,
                   help="also checkpoint every M minutes of wall time (default 10; 0 turns it off)")
    t.add_argument("--keep", type=_positive, default=3, help="keep the newest K checkpoints (default 3)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    t.add_argument("--devices", type=_positive, default=None,
                   help="train data-parallel on the first N devices (default: all; the batch size must be a "
                        "multiple of N)")
    t.add_argument("--distributed", action="store_true",
                   help="multi-host run (a TPU pod slice, a GPU cluster): call jax.distributed.initialize() first")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    s = sub.add_parser("sample", help="draw samples from a trained run",
                       description="Sample with the run's EMA weights (the paper's Algorithm 2, or DDIM with "
                                   "--sampler ddim). Writes FILE.npz "
                                   "holding `samples` (float32, N x H x W x C, in [0, 1]) and a PNG grid beside it.")
    s.add_argument("--run", required=True, type=Path, help="run directory written by `train`")
    s.add_argument("--num", type=_positive, default=64, help="number of images (default 64)")
    s.add_argument("--out", required=True, type=Path, help="output .npz file; the grid goes to the same name .png")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--sampler", choices=("ddpm", "ddim", "dpm++2m"), default="ddpm",
                   help="ddpm: ancestral sampling over all T steps (Algorithm 2, default); ddim: DDIM (Song et al. "
                        "2021) on --steps steps; dpm++2m: DPM-Solver++(2M) (Lu et al. 2022) on --steps steps")
    s.add_argument("--steps", type=_positive, default=None,
                   help="ddim and dpm++2m: number of denoising steps, 1 .. T (default 50, or T if smaller)")
    s.add_argument("--spacing", choices=("uniform", "quadratic", "trailing"), default="uniform",
                   help="ddim and dpm++2m: where the steps fall; uniform (default), quadratic (dense near t = 0, "
                        "DDIM paper) or trailing (Lin et al. 2023)")
    s.add_argument("--eta", type=_eta, default=0.0,
                   help="DDIM only: noise scale in [0, 1]; 0 is deterministic given the seed (default), 1 is "
                        "DDPM-like noise")

    e = sub.add_parser("eval", help="bits/dim on the test split, and sample quality for digits",
                       description="Evaluate a run's EMA weights: the variational bound on the negative "
                                   "log-likelihood in bits/dim on the test split (the paper's Table 1: prior L_T, "
                                   "the KL terms L_1 .. L_{T-1}, decoder L_0) and, for digits, a sample-quality "
                                   "table against real held-out digits and noise.")
    e.add_argument("--run", required=True, type=Path, help="run directory written by `train`")
    e.add_argument("--num-samples", type=_nonnegative, default=None,
                   help="digits only: samples for the quality table (default: as many as the test split holds, "
                        "360; 0 skips the table; at least 2 otherwise)")
    e.add_argument("--batch-size", type=_positive, default=128, help="images per batch for bits/dim (default 128)")
    e.add_argument("--seed", type=int, default=0, help="random seed for the bound's noise and the samples (default 0)")
    e.add_argument("--bpd-examples", type=_nonnegative, default=None,
                   help="test images for bits/dim, a seeded random subset (default: all for digits, 1000 for other "
                        "datasets; the bound costs T model calls per image; 0 skips it)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    return parser


def _check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove it takes a new file (a fresh temporary name: no user file is touched)."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a directory; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write_test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write to {folder} ({e.strerror or type(e).__name__}); choose another --out "
                         "in a folder you can write to") from None


def cmd_train(args) -> None:
    import jax

    from . import checkpoint
    from .config import get_preset
    from .data import load_dataset
    from .tracking import Tracker
    from .parallel import check_batch_size, initialize_distributed, make_mesh
    from .train import fit, init_state

    if args.distributed:
        initialize_distributed()
    train_overrides = {k: v for k, v in {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed,
                                         "ckpt_every": args.ckpt_every}.items() if v is not None}
    has_run = bool(checkpoint.list_checkpoints(args.out))
    if args.resume:
        state, config = checkpoint.restore(args.out)
        if config.name != args.preset:
            raise ValueError(f"{args.out} holds a {config.name!r} run, not {args.preset!r}; pass --preset "
                             f"{config.name} to resume it")
        config = config.replace(train=train_overrides, dataset=args.data or config.dataset)
        print(f"resuming {args.out} at step {int(state.step)}")
    else:
        if has_run:
            raise ValueError(f"{args.out} already holds a run; pass --resume to continue it, or choose another --out")
        config = get_preset(args.preset).replace(train=train_overrides, dataset=args.data or get_preset(args.preset).dataset)
        state = None
    mesh = make_mesh(args.devices)
    check_batch_size(config.train.batch_size, mesh)
    _check_writable(args.out)  # after the checks above, so a refused command creates nothing
    m = config.model
    data = load_dataset(config.dataset, split="train", image_size=m.image_size, channels=m.in_channels)
    if state is None:
        state = init_state(config, jax.random.key(config.train.seed))
    print(f"{config.name}: {len(data)} training images of {data.shape[1:]}, {config.train.steps} steps of batch "
          f"{config.train.batch_size} on {mesh.size} {jax.devices()[0].platform.upper()} device(s)")
    with Tracker(args.out, config.to_dict(), name=f"{config.name}-{args.out.name}") as tracker:
        fit(config, data, state=state, run_dir=args.out, tracker=tracker, progress=not args.no_progress,
            ckpt_minutes=args.ckpt_minutes or None, keep=args.keep, devices=args.devices)
    print(f"done: {args.out}")


def cmd_sample(args) -> None:
    import jax
    import numpy as np

    from . import checkpoint
    from .sample import sample_images
    from .tracking import save_png

    state, config = checkpoint.restore(args.run)
    if args.out.suffix != ".npz":
        raise ValueError(f"--out must name a .npz file, got {args.out}")
    _check_writable(args.out.parent)
    images = sample_images(config, state.ema, jax.random.key(args.seed), args.num, sampler=args.sampler,
                           steps=args.steps, eta=args.eta, spacing=args.spacing)
    samples = np.asarray((images + 1.0) / 2.0, dtype=np.float32).clip(0.0, 1.0)
    tmp = args.out.with_name(args.out.stem + ".tmp.npz")
    np.savez(tmp, samples=samples)
    os.replace(tmp, args.out)
    png = save_png(images, args.out.with_suffix(".png"))
    print(f"wrote {args.out} ({samples.shape}, float32 in [0, 1]) and {png}")


def cmd_eval(args) -> None:
    import jax
    import numpy as np

    from . import checkpoint
    from .bpd import bits_per_dim
    from .data import load_dataset, load_digits, to_uint8
    from .sample import sample_images
    from .train import schedule_for

    if args.num_samples == 1:
        raise ValueError("--num-samples 1 is too few for a Frechet distance; give 0 (no table) or at least 2")
    state, config = checkpoint.restore(args.run)
    m, T = config.model, config.diffusion.num_timesteps
    digits = config.dataset == "digits"
    k_bpd, k_samples = jax.random.split(jax.random.key(args.seed))
    wanted = args.bpd_examples if args.bpd_examples is not None else (None if digits else 1000)
    if wanted != 0:
        test = load_digits("test") if digits else load_dataset(config.dataset, split="test", image_size=m.image_size,
                                                               channels=m.in_channels)
        if wanted is not None and wanted < len(test):
            test = test[np.sort(np.random.default_rng(args.seed).choice(len(test), wanted, replace=False))]
        r = bits_per_dim(state.ema, schedule_for(config), test, key=k_bpd, batch_size=args.batch_size,
                         variance=config.diffusion.variance, progress=not args.no_progress)
        print(f"bits/dim on {r['num_examples']} {config.dataset} test images (T = {T}, sigma^2 "
              f"{config.diffusion.variance}, EMA weights, step {int(state.step)}):")
        print(f"  total (NLL bound)        {r['total']:8.4f} +- {r['total_sem']:.4f}")
        print(f"  prior L_T                {r['prior']:8.4f}")
        print(f"  L_1 + ... + L_{{T-1}}      {r['kl']:8.4f}")
        print(f"  decoder L_0              {r['decoder']:8.4f}")
    if digits:
        num = args.num_samples if args.num_samples is not None else len(load_digits("test"))
        if num > 0:
            from .evaluate import NUM_JUDGES, digits_judge, digits_quality_table, format_table

            images = sample_images(config, state.ema, k_samples, num)
            table = digits_quality_table(to_uint8(images), seed=args.seed)
            print(f"sample quality of {num} samples (DDPM, {T} steps), the mean of {NUM_JUDGES} judges, each against "
                  f"{min(num, len(digits_judge().held_out))} real digits it never saw:")
            print(format_table(table))
    elif args.num_samples:
        print("(no sample-quality table: it is defined for the digits dataset only)")


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError
    from .train import DivergenceError

    args = build_parser().parse_args(argv)
    try:
        {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval}[args.command](args)
    except DivergenceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (DataError, CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the newest checkpoint is kept (resume with --resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
