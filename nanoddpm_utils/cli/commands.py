"""The three commands, ``train``, ``sample`` and ``eval``, on the parsed flags (this module imports jax). Every check
that can refuse a command runs before anything is written (see ``paths``), so a refused command creates nothing."""

from __future__ import annotations

import jax
import numpy as np

from .. import checkpoint
from ..bpd import bits_per_dim
from ..config import apply_settings, get_preset
from ..data import load_dataset, load_digits
from ..evaluate import NUM_JUDGES, digits_judge, digits_quality_table, format_table
from ..files import atomic_write
from ..guidance import check_guidance, sample_guided
from ..images import image_grid, save_png, to_uint8
from ..parallel import check_batch_size, initialize_distributed, make_mesh
from ..sample import default_sampler, network_evaluations, sample_images, sampling_loop
from ..state import init_state
from ..tracking import Tracker, resolve_mode
from ..train import fit, schedule_for
from ..unet import check_labels
from .errors import UsageError
from .parsing import CHUNK
from .paths import check_npz_out, check_run_folder, make_folder


# --------------------------------------------------------------------------- train
def train_config(args):
    """The config to train and the state to start from: the preset's (or the resumed run's), then the flags."""
    flags = dict(steps=args.steps, batch_size=args.batch_size, seed=args.seed, ckpt_every=args.ckpt_every)
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.resume:
        state, config = checkpoint.restore(args.out)
        if args.preset not in (None, config.name):
            raise UsageError(
                f"{args.out} holds a {config.name!r} run, not {args.preset!r}; pass --preset "
                f"{config.name} (or no --preset) to resume it"
            )
    else:
        if checkpoint.list_checkpoints(args.out):
            raise UsageError(f"{args.out} already holds a run; pass --resume to continue it, or choose another --out")
        state, config = None, get_preset(args.preset or "digits")
    config = config.replace(train=overrides, dataset=args.data or config.dataset)
    try:
        changed = apply_settings(config, args.set)
    except ValueError as e:
        raise UsageError(f"--set {e}") from None
    if state is not None and changed.model != config.model:
        raise UsageError(
            "--set model.* would change the shape of the run being resumed; train afresh with "
            "another --out to change the model"
        )
    return changed, state


def cmd_train(args) -> None:
    out = args.out = check_run_folder(args.out)
    try:
        mode = resolve_mode()
    except ValueError as e:
        raise UsageError(f"{e}; set WANDB_MODE to one of them, or unset it") from None
    if args.distributed:
        initialize_distributed()
    config, state = train_config(args)
    if state is not None:
        print(f"resuming {out} at step {int(state.step)}")
    try:
        mesh = make_mesh(args.devices)
        check_batch_size(config.train.batch_size, mesh)
    except ValueError as e:  # more devices than the machine has, a batch that does not split over them
        raise UsageError(str(e)) from None
    m = config.model
    data = load_dataset(
        config.dataset, split="train", image_size=m.image_size, channels=m.in_channels, return_labels=m.num_classes > 0
    )  # a class-conditional run trains on (images, labels)
    images = data[0] if m.num_classes > 0 else data
    if m.num_classes > 0:
        try:
            check_labels(m.num_classes, data[1])
        except ValueError as e:
            raise UsageError(f"{config.dataset}: {e}") from None
    if state is None:
        state = init_state(config, jax.random.key(config.train.seed))
    print(
        f"{config.name}: {len(images)} training images of {images.shape[1:]}, {config.train.steps} steps of batch "
        f"{config.train.batch_size} on {mesh.size} {jax.devices()[0].platform.upper()} device(s)"
    )
    make_folder(out)  # only now: every check that can refuse the command has passed
    with Tracker(out, config.to_dict(), name=f"{config.name}-{out.name}", mode=mode) as tracker:
        fit(
            config,
            data,
            state=state,
            run_dir=out,
            tracker=tracker,
            progress=not args.no_progress,
            ckpt_minutes=args.ckpt_minutes or None,
            keep=args.keep,
            devices=args.devices,
        )
    print(f"done: {out}")


# --------------------------------------------------------------------------- sample
def sample_in_chunks(config, model, key, num: int, labels=None, guidance: float = 1.0, **sampler) -> np.ndarray:
    """``num`` images in [-1, 1] as NumPy, drawn ``CHUNK`` at a time (one call, with ``key``, when num <= CHUNK);
    with ``labels`` (one class per image), classifier-free guided with scale ``guidance``."""

    def draw(k, start: int, n: int):
        if labels is None:
            return np.asarray(sample_images(config, model, k, n, **sampler))
        return np.asarray(sample_guided(config, model, k, labels[start : start + n], guidance, **sampler))

    if num <= CHUNK:
        return draw(key, 0, num)
    keys = jax.random.split(key, -(-num // CHUNK))
    return np.concatenate([draw(k, i * CHUNK, min(CHUNK, num - i * CHUNK)) for i, k in enumerate(keys)])


def check_sampler(config, **sampler) -> None:
    """The sampler's flags against the run (DDIM-only flags need --sampler ddim; --steps <= T), before sampling."""
    T = config.diffusion.num_timesteps
    if sampler.get("sampler") in ("ddim", "dpm++2m") and sampler.get("steps") is not None and sampler["steps"] > T:
        raise UsageError(f"--steps {sampler['steps']} is more than this run's T = {T} diffusion steps; use 1 .. {T}")
    try:
        sampling_loop(config, 1, **sampler)  # builds nothing big: it checks the flags and picks the loop
    except ValueError as e:
        raise UsageError(f"{e}; see --help") from None


def classes_to_draw(config, label, guidance):
    """The classes --label asks for (None: no label), refused with one line where this run cannot draw them."""
    k = config.model.num_classes
    if k == 0 and (label is not None or guidance is not None):
        raise UsageError(
            f"{config.name} is an unconditional run (num_classes = 0): --label and --guidance need a "
            "class-conditional one (train --preset digits_cond, for example)"
        )
    if guidance is not None and label is None:
        raise UsageError(
            "--guidance needs --label: the scale weighs the class against no class; add --label 7 "
            "(or a comma list, or all)"
        )
    labels = list(range(k)) if label == "all" else label
    try:
        check_guidance(config, labels, guidance)
    except ValueError as e:
        raise UsageError(f"{e}; see --help") from None
    return labels


def cmd_sample(args) -> None:
    out, png = check_npz_out(args.out)
    state, config = checkpoint.restore(args.run)
    sampler = dict(sampler=args.sampler, steps=args.steps, eta=args.eta, churn=args.churn, spacing=args.spacing)
    check_sampler(config, **sampler)
    labels = classes_to_draw(config, args.label, args.guidance)
    count = args.num * (len(labels) if labels is not None else 1)
    print(
        f"sampling {count} image(s) with {args.sampler or default_sampler(config)}: "
        f"{network_evaluations(config, args.sampler, args.steps)} network evaluations each "
        f"(one compiled loop; no progress until it ends) ...",
        flush=True,
    )
    key = jax.random.key(args.seed)
    if labels is None:
        images = sample_in_chunks(config, state.ema, key, args.num, **sampler)
        arrays, grid = {}, images
    else:
        w = 1.0 if args.guidance is None else args.guidance
        per_image = np.repeat(np.asarray(labels, np.int32), args.num)  # --num of each class, class by class
        images = sample_in_chunks(config, state.ema, key, count, per_image, w, **sampler)
        arrays = {"labels": per_image, "guidance": np.float32(w)}
        grid = image_grid(images, nrow=args.num) if len(labels) > 1 else images  # one row per class
    samples = ((images + 1.0) / 2.0).astype(np.float32).clip(0.0, 1.0)
    make_folder(out.parent)
    atomic_write(out, lambda f: np.savez(f, samples=samples, **arrays))
    png = save_png(grid, png)
    print(f"wrote {out} ({samples.shape}, float32 in [0, 1]{', with labels' if arrays else ''}) and {png}")


# --------------------------------------------------------------------------- eval
def cmd_eval(args) -> None:
    if args.num_samples == 1:
        raise UsageError("--num-samples 1 is too few for a Frechet distance; give 0 (no table) or at least 2")
    state, config = checkpoint.restore(args.run)
    m, T = config.model, config.diffusion.num_timesteps
    digits = config.dataset == "digits"
    k_bpd, k_samples = jax.random.split(jax.random.key(args.seed))
    wanted = args.bpd_examples if args.bpd_examples is not None else (None if digits else 1000)
    flow = config.diffusion.objective == "flow"
    if flow and args.bpd_examples:
        raise UsageError(
            f"{config.name} is a flow-matching run: bits/dim is the DDPM bound's (eps-models only); "
            "drop --bpd-examples or give 0"
        )
    if wanted != 0 and not flow:
        test = load_dataset(config.dataset, split="test", image_size=m.image_size, channels=m.in_channels)
        if wanted is not None and wanted < len(test):
            test = test[np.sort(np.random.default_rng(args.seed).choice(len(test), wanted, replace=False))]
        r = bits_per_dim(
            state.ema,
            schedule_for(config),
            test,
            key=k_bpd,
            batch_size=args.batch_size,
            variance=config.diffusion.variance,
            progress=not args.no_progress,
        )
        print(
            f"bits/dim on {r['num_examples']} {config.dataset} test images (T = {T}, sigma^2 "
            f"{config.diffusion.variance}, EMA weights, step {int(state.step)}):"
        )
        print(f"  total (NLL bound)        {r['total']:8.4f} +- {r['total_sem']:.4f}")
        print(f"  prior L_T                {r['prior']:8.4f}")
        print(f"  L_1 + ... + L_{{T-1}}      {r['kl']:8.4f}")
        print(f"  decoder L_0              {r['decoder']:8.4f}")
    if digits:
        num = args.num_samples if args.num_samples is not None else len(load_digits("test"))
        if num > 0:
            images = sample_in_chunks(config, state.ema, k_samples, num)
            table = digits_quality_table(to_uint8(images), seed=args.seed)
            print(
                f"sample quality of {num} samples ({default_sampler(config)}, {network_evaluations(config)} network "
                f"evaluations), the mean of {NUM_JUDGES} judges, each against "
                f"{min(num, len(digits_judge().held_out))} real digits it never saw:"
            )
            print(format_table(table))
    elif args.num_samples:
        print("(no sample-quality table: it is defined for the digits dataset only)")


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval}
