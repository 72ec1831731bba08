"""The command line: ``python -m nanoddpm_utils train|sample|eval …`` (see ``--help`` of each).

Errors, by who can fix them:
- the user's (a bad flag, bad data, an unusable run, a path that cannot be written): one line, exit 2. Each is
  checked where it is made (flags while parsing, data while loading, paths before any work), and a refused
  command creates nothing: the run folder appears only once the data has loaded and the tracker can start;
- the run's or the machine's (divergence, a full disk): one line, exit 1;
- anything else is a bug: one line saying so, exit 1, and the traceback with ``--debug`` (and in
  ``RUN/internal_error.txt`` when a training run was under way).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import PRESETS

MAX_SEED = 2**32 - 1  # a seed is 32 bits of a PRNG key
MAX_NUM = 50_000  # samples per command: enough for an FID-50k set
CHUNK = 512  # images per call of the sampler, so memory does not grow with --num (eval's 360 digits: one call)


class UsageError(ValueError):
    """A command line the user can fix (a path, a combination of flags); one line saying what to do."""


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


def _int_in(lowest: int, highest: int):
    """An argparse type: a whole number in ``lowest .. highest``."""
    at_least = _int_at_least(lowest)

    def parse(value: str) -> int:
        n = at_least(value)
        if n > highest:
            raise argparse.ArgumentTypeError(f"must be <= {highest:,}, got {n:,}" if n < 10**30 else
                                             f"must be <= {highest:,}")
        return n
    return parse


_positive, _nonnegative = _int_at_least(1), _int_at_least(0)
_seed, _num = _int_in(0, MAX_SEED), _int_in(1, MAX_NUM)


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


def _labels(value: str):
    """An argparse type for --label: "7", a comma list "0,3,5", or "all" (checked against the run's classes later)."""
    if value.strip().lower() == "all":
        return "all"
    try:
        labels = [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a class number, a comma list of them (0,3,5) or 'all'") \
            from None
    if any(v < 0 for v in labels):
        raise argparse.ArgumentTypeError(f"class numbers are >= 0, got {value!r}")
    return labels


def _guidance(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not (x >= 0.0 and x != float("inf")):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number >= 0 (0: unconditional, 1: conditional, more: "
                                         f"guided), got {value}")
    return x


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m nanoddpm_utils",
                     description="Train and sample denoising diffusion models (DDPM) in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="on an internal error (a bug), print the full traceback for a bug report")

    t = sub.add_parser("train", parents=[common], help="train a preset and write a run directory",
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
    t.add_argument("--seed", type=_seed, default=None,
                   help=f"random seed in 0 .. {MAX_SEED}: same seed and config, same run (default 0)")
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

    s = sub.add_parser("sample", parents=[common], help="draw samples from a trained run",
                       description="Sample with the run's EMA weights (the paper's Algorithm 2, or DDIM with "
                                   "--sampler ddim). Writes FILE.npz "
                                   "holding `samples` (float32, N x H x W x C, in [0, 1]) and a PNG grid beside it.")
    s.add_argument("--run", required=True, type=Path, help="run directory written by `train`")
    s.add_argument("--num", type=_num, default=64,
                   help=f"number of images, 1 .. {MAX_NUM:,}, drawn {CHUNK} at a time (default 64)")
    s.add_argument("--out", required=True, type=Path, help="output .npz file; the grid goes to the same name .png")
    s.add_argument("--seed", type=_seed, default=0, help=f"random seed in 0 .. {MAX_SEED} (default 0)")
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
    s.add_argument("--label", type=_labels, default=None,
                   help="class-conditional runs: the class to draw (7), a comma list (0,3,5: --num images of each, "
                        "one grid row per class) or 'all' (one row per class)")
    s.add_argument("--guidance", type=_guidance, default=None,
                   help="with --label: the classifier-free guidance scale w >= 0; eps = eps(x, t) + w (eps(x, t, c) - "
                        "eps(x, t)): 1 is plain conditional sampling (default), 0 unconditional, more follows the "
                        "class more closely (Ho & Salimans 2022 write it with their w = this w - 1)")

    e = sub.add_parser("eval", parents=[common], help="bits/dim on the test split, and sample quality for digits",
                       description="Evaluate a run's EMA weights: the variational bound on the negative "
                                   "log-likelihood in bits/dim on the test split (the paper's Table 1: prior L_T, "
                                   "the KL terms L_1 .. L_{T-1}, decoder L_0) and, for digits, a sample-quality "
                                   "table against real held-out digits and noise.")
    e.add_argument("--run", required=True, type=Path, help="run directory written by `train`")
    e.add_argument("--num-samples", type=_int_in(0, MAX_NUM), default=None,
                   help="digits only: samples for the quality table (default: as many as the test split holds, "
                        "360; 0 skips the table; at least 2 otherwise)")
    e.add_argument("--batch-size", type=_positive, default=128, help="images per batch for bits/dim (default 128)")
    e.add_argument("--seed", type=_seed, default=0,
                   help="random seed for the bound's noise and the samples (default 0)")
    e.add_argument("--bpd-examples", type=_nonnegative, default=None,
                   help="test images for bits/dim, a seeded random subset (default: all for digits, 1000 for other "
                        "datasets; the bound costs T model calls per image; 0 skips it)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    return parser


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_can_create(target: Path, what: str) -> None:
    """Refuse (without creating anything) a ``target`` folder that exists as something else or cannot be made.

    The nearest existing ancestor must be a folder that takes a new file: proven with a fresh temporary name,
    removed at once, so no file of the user's is touched.
    """
    import tempfile

    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file, not a directory; choose another {what}")
    base = _nearest_existing(target)
    if not base.is_dir():
        raise UsageError(f"{base} is a file, so {target} cannot be created; choose another {what}")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".write_test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"cannot write to {base} ({e.strerror or type(e).__name__}); choose another {what} in a "
                         "folder you can write to") from None


def _make_folder(folder: Path) -> None:
    """``mkdir -p``, after ``_check_can_create``; refuses the run with one line if the disk says no after all."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {folder} ({e.strerror or type(e).__name__}); choose another --out") from None


def _check_run_folder(out: Path) -> Path:
    """The run folder to write, resolved explicitly if reached through a link; links inside it are refused."""
    _check_can_create(out, "--out")
    real = out.resolve()
    if real != out.absolute():
        print(f"run folder {out} is {real}")
    for name in ("checkpoints", "metrics.jsonl", "config.json"):
        if (real / name).is_symlink():
            raise UsageError(f"{real / name} is a symbolic link; a run writes (and deletes old checkpoints) only in "
                             "real files and folders: replace the link, or choose another --out")
    return real


def cmd_train(args) -> None:
    import jax

    from . import checkpoint
    from .config import get_preset
    from .data import load_dataset
    from .parallel import check_batch_size, initialize_distributed, make_mesh
    from .tracking import Tracker, resolve_mode
    from .train import fit, init_state

    out = args.out = _check_run_folder(args.out)
    try:
        mode = resolve_mode()
    except ValueError as e:
        raise UsageError(f"{e}; set WANDB_MODE to one of them, or unset it") from None
    if args.distributed:
        initialize_distributed()
    train_overrides = {k: v for k, v in {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed,
                                         "ckpt_every": args.ckpt_every}.items() if v is not None}
    if args.resume:
        state, config = checkpoint.restore(out)
        if config.name != args.preset:
            raise UsageError(f"{out} holds a {config.name!r} run, not {args.preset!r}; pass --preset "
                             f"{config.name} to resume it")
        config = config.replace(train=train_overrides, dataset=args.data or config.dataset)
        print(f"resuming {out} at step {int(state.step)}")
    else:
        if checkpoint.list_checkpoints(out):
            raise UsageError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        preset = get_preset(args.preset)
        config = preset.replace(train=train_overrides, dataset=args.data or preset.dataset)
        state = None
    try:
        mesh = make_mesh(args.devices)
        check_batch_size(config.train.batch_size, mesh)
    except ValueError as e:  # more devices than the machine has, a batch that does not split over them
        raise UsageError(str(e)) from None
    m = config.model
    data = load_dataset(config.dataset, split="train", image_size=m.image_size, channels=m.in_channels,
                        return_labels=m.num_classes > 0)  # a class-conditional run trains on (images, labels)
    images = data[0] if m.num_classes > 0 else data
    if m.num_classes > 0 and len(data[1]) and int(data[1].max()) >= m.num_classes:
        raise UsageError(f"{config.dataset} has {int(data[1].max()) + 1} classes but {config.name} draws "
                         f"{m.num_classes}; use a dataset with at most {m.num_classes} classes")
    if state is None:
        state = init_state(config, jax.random.key(config.train.seed))
    print(f"{config.name}: {len(images)} training images of {images.shape[1:]}, {config.train.steps} steps of batch "
          f"{config.train.batch_size} on {mesh.size} {jax.devices()[0].platform.upper()} device(s)")
    _make_folder(out)  # only now: every check that can refuse the command has passed
    with Tracker(out, config.to_dict(), name=f"{config.name}-{out.name}", mode=mode) as tracker:
        fit(config, data, state=state, run_dir=out, tracker=tracker, progress=not args.no_progress,
            ckpt_minutes=args.ckpt_minutes or None, keep=args.keep, devices=args.devices)
    print(f"done: {out}")


def _sample_in_chunks(config, model, key, num: int, **sampler):
    """``num`` images in [-1, 1] as NumPy, drawn ``CHUNK`` at a time (one call, with ``key``, when num <= CHUNK)."""
    import jax
    import numpy as np

    from .sample import sample_images

    if num <= CHUNK:
        return np.asarray(sample_images(config, model, key, num, **sampler))
    keys = jax.random.split(key, -(-num // CHUNK))
    return np.concatenate([np.asarray(sample_images(config, model, k, min(CHUNK, num - i * CHUNK), **sampler))
                           for i, k in enumerate(keys)])


def _check_sampler(config, **sampler) -> None:
    """The sampler's flags against the run (DDIM-only flags need --sampler ddim; --steps <= T), before sampling."""
    from .sample import sampling_loop

    T = config.diffusion.num_timesteps
    if sampler.get("steps") is not None and sampler["steps"] > T:
        raise UsageError(f"--steps {sampler['steps']} is more than this run's T = {T} diffusion steps; use 1 .. {T}")
    try:
        sampling_loop(config, 1, **sampler)  # builds nothing big: it checks the flags and picks the loop
    except ValueError as e:
        raise UsageError(f"{e}; see --help") from None


def _write_npz(path: Path, **arrays) -> None:
    """Write ``path`` atomically: a temporary file beside it, renamed when complete, removed on any failure."""
    import tempfile

    import numpy as np

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_sample(args) -> None:
    import jax
    import numpy as np

    from . import checkpoint
    from .images import save_png

    out, png = args.out, args.out.with_suffix(".png")
    if out.suffix != ".npz":
        raise UsageError(f"--out must name a .npz file, got {out}")
    for path in (out, png):
        if path.is_dir() or path.is_symlink():
            raise UsageError(f"{path} is a {'directory' if path.is_dir() else 'symbolic link'}; --out must name a "
                             "new or regular .npz file (its grid goes beside it as .png)")
    _check_can_create(out.parent, "--out")
    state, config = checkpoint.restore(args.run)
    _check_sampler(config, sampler=args.sampler, steps=args.steps, eta=args.eta, spacing=args.spacing)
    labels = _check_labels(config, args.label, args.guidance)
    sampler = dict(sampler=args.sampler, steps=args.steps, eta=args.eta, spacing=args.spacing)
    key = jax.random.key(args.seed)
    T = config.diffusion.num_timesteps
    calls = T if args.sampler == "ddpm" else (args.steps or min(50, T))
    count = args.num * (len(labels) if labels is not None else 1)
    print(f"sampling {count} image(s) with {args.sampler}: {calls} network evaluations each "
          f"(one compiled loop; no progress until it ends) ...", flush=True)
    if labels is None:
        images = _sample_in_chunks(config, state.ema, key, args.num, **sampler)
        arrays, grid = {}, images
    else:
        from .images import image_grid

        w = 1.0 if args.guidance is None else args.guidance
        per_image = np.repeat(np.asarray(labels, np.int32), args.num)  # --num of each class, class by class
        images = _sample_guided_in_chunks(config, state.ema, key, per_image, w, **sampler)
        arrays = {"labels": per_image, "guidance": np.float32(w)}
        grid = image_grid(images, nrow=args.num) if len(labels) > 1 else images  # one row per class
    samples = ((images + 1.0) / 2.0).astype(np.float32).clip(0.0, 1.0)
    _make_folder(out.parent)
    _write_npz(out, samples=samples, **arrays)
    png = save_png(grid, png)
    print(f"wrote {out} ({samples.shape}, float32 in [0, 1]{', with labels' if arrays else ''}) and {png}")


def _check_labels(config, label, guidance):
    """The classes --label asks for (None: no label), refused with one line where this run cannot draw them."""
    from .guidance import check_guidance

    k = config.model.num_classes
    if k == 0 and (label is not None or guidance is not None):
        raise UsageError(f"{config.name} is an unconditional run (num_classes = 0): --label and --guidance need a "
                         "class-conditional one (train --preset digits_cond, for example)")
    if guidance is not None and label is None:
        raise UsageError("--guidance needs --label: the scale weighs the class against no class; add --label 7 "
                         "(or a comma list, or all)")
    labels = list(range(k)) if label == "all" else label
    try:
        check_guidance(config, labels, guidance)
    except ValueError as e:
        raise UsageError(f"{e}; see --help") from None
    return labels


def _sample_guided_in_chunks(config, model, key, labels, w: float, **sampler):
    """One image per entry of ``labels`` with guidance ``w``, ``CHUNK`` at a time, as NumPy in [-1, 1]."""
    import jax
    import numpy as np

    from .guidance import sample_guided

    if len(labels) <= CHUNK:
        return np.asarray(sample_guided(config, model, key, labels, w, **sampler))
    keys = jax.random.split(key, -(-len(labels) // CHUNK))
    return np.concatenate([np.asarray(sample_guided(config, model, k, labels[i * CHUNK:(i + 1) * CHUNK], w,
                                                    **sampler)) for i, k in enumerate(keys)])


def cmd_eval(args) -> None:
    import jax
    import numpy as np

    from . import checkpoint
    from .bpd import bits_per_dim
    from .data import load_dataset, load_digits
    from .images import to_uint8
    from .train import schedule_for

    if args.num_samples == 1:
        raise UsageError("--num-samples 1 is too few for a Frechet distance; give 0 (no table) or at least 2")
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

            images = _sample_in_chunks(config, state.ema, k_samples, num)
            table = digits_quality_table(to_uint8(images), seed=args.seed)
            print(f"sample quality of {num} samples (DDPM, {T} steps), the mean of {NUM_JUDGES} judges, each against "
                  f"{min(num, len(digits_judge().held_out))} real digits it never saw:")
            print(format_table(table))
    elif args.num_samples:
        print("(no sample-quality table: it is defined for the digits dataset only)")


def _internal_error(e: Exception, args) -> int:
    """A bug, not the user's mistake: one line saying so; the traceback kept for a bug report."""
    import traceback

    text = traceback.format_exc()
    kept = "rerun with --debug to print it"
    out = getattr(args, "out", None)
    if args.command == "train" and out is not None and out.is_dir():  # a run was under way: keep it beside the run
        try:
            (out / "internal_error.txt").write_text(text)
            kept = f"it is in {out / 'internal_error.txt'}"
        except OSError:
            pass
    if args.debug:
        print(text, file=sys.stderr, end="")
    first = (str(e).strip().splitlines() or [""])[0][:200]
    print(f"internal error: {type(e).__name__}: {first} -- a bug in nanoddpm_utils, not in your command; please "
          f"report it with the traceback ({kept})", file=sys.stderr)
    return 1


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .images import DataError
    from .tracking import TrackingError
    from .train import DivergenceError

    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (UsageError, DataError, CheckpointError, TrackingError) as e:  # the user's to fix
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DivergenceError as e:  # the run's: the message says what to try
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the newest checkpoint is kept (resume with --resume)", file=sys.stderr)
        return 130
    except OSError as e:  # the machine's: a full disk, a file removed under the run
        if args.debug:
            import traceback
            traceback.print_exc()
        where = f" ({e.filename})" if e.filename else ""
        print(f"error: {e.strerror or e}{where}; free the disk or fix the path and retry (train: --resume; "
              "--debug prints the traceback)", file=sys.stderr)
        return 1
    except Exception as e:
        return _internal_error(e, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
