"""Our JAX model per preset and batch size: training images/s, DDPM sampling time, achieved FLOP/s.

    python bench/bench_presets.py --presets digits,nano_cifar10 --batch-sizes 64 --steps 5

Training: K train steps (``make_train_steps``, one ``lax.scan``) on random uint8 data shaped
like the preset's images; the first call compiles and warms up, then the median of
--repeats calls gives ms/step and images/s.
Sampling: ``sample_images`` (Algorithm 2, one scan over T) for --num-images images; the
first call compiles, the second is timed. A T smaller than the preset's (--sample-steps)
costs the same per step, so the preset-T time is then extrapolated, and labelled so.
FLOP/s: XLA's cost analysis of the compiled step ('flops') / measured time per step,
against a jitted 2048x2048 float32 matmul on this machine (the "peak").
Defaults are sized to finish in minutes on 2 CPU cores; shared machines make times noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nanoddpm_utils.config import Config, get_preset
from nanoddpm_utils.sample import sample_images
from nanoddpm_utils.state import init_state
from nanoddpm_utils.train import make_train_step, make_train_steps
from nanoddpm_utils.unet import count_params, make_model

# Per preset: batch sizes, K train steps per timed call, timed calls, sampling steps actually run.
# The CIFAR-10 models sample with a few steps and extrapolate: 1000 steps of the paper model
# for 64 images take over an hour on 2 cores.
DEFAULTS = {
    "smoke": dict(batch_sizes=(16,), steps=2, repeats=2, sample_steps=10),
    "digits": dict(batch_sizes=(64, 128), steps=10, repeats=3, sample_steps=1000),
    "nano_cifar10": dict(batch_sizes=(32,), steps=3, repeats=2, sample_steps=4),
    "paper_cifar10": dict(batch_sizes=(16,), steps=2, repeats=1, sample_steps=2),
}
NUM_IMAGES = 64


def defaults(preset: str) -> dict:
    return DEFAULTS.get(preset, DEFAULTS["nano_cifar10"])


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matmul rate: a jitted n x n @ n x n (2 n^3 flops), median of repeats."""
    a, b = (jax.random.normal(k, (n, n), jnp.float32) for k in jax.random.split(jax.random.key(0)))
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, b))  # compile
    return 2 * n**3 / median_time(lambda: jax.block_until_ready(dot(a, b)), repeats)


def random_images(config: Config, n: int = 1024, seed: int = 0) -> np.ndarray:
    """uint8 images ``(n, H, W, C)`` shaped like the preset's dataset (their content does not change the cost)."""
    m = config.model
    return np.random.default_rng(seed).integers(0, 256, (n, m.image_size, m.image_size, m.in_channels), np.uint8)


def num_params(config: Config) -> int:
    return count_params(eqx.filter_eval_shape(make_model, config.model, key=jax.random.key(0)))


def _flops(compiled) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older jax: one dict per device
    return float(cost.get("flops", float("nan")))


def bench_train(config: Config, batch_size: int, steps: int, repeats: int) -> dict:
    """Time ``steps`` train steps in one scan: ms/step, images/s, compile time, FLOP/step and FLOP/s."""
    cfg = config.replace(train={"batch_size": batch_size, "steps_per_call": steps})
    data = jnp.asarray(random_images(cfg))
    box = {"state": init_state(cfg, 0)}
    t0 = time.perf_counter()
    multi = make_train_steps(cfg, steps).lower(data, box["state"]).compile()  # callable like the jitted function
    compile_s = time.perf_counter() - t0

    def run():
        box["state"], _ = multi(data, box["state"])  # the state is donated: keep only the new one
        jax.block_until_ready(box["state"])

    run()  # warm-up
    per_step = median_time(run, repeats) / steps
    # XLA's cost analysis counts a while loop's body once, not trip-count times; the one-step
    # function's (lowered, not compiled: cheap) estimate tells which convention we got.
    scan_flops = _flops(multi.compiled)
    step_flops = _flops(make_train_step(cfg).lower(data, box["state"]).lowered)
    flops = scan_flops / max(1, round(scan_flops / step_flops))
    return {
        "batch_size": batch_size,
        "steps": steps,
        "repeats": repeats,
        "compile_s": compile_s,
        "ms_per_step": per_step * 1e3,
        "images_per_s": batch_size / per_step,
        "flops_per_step": flops,
        "flops_per_s": flops / per_step,
    }


def bench_sample(config: Config, num_images: int = NUM_IMAGES, sample_steps: int | None = None) -> dict:
    """Time DDPM sampling of ``num_images`` with T = ``sample_steps`` (default: the preset's T)."""
    T_full = config.diffusion.num_timesteps
    T = sample_steps or T_full
    cfg = config.replace(diffusion={"num_timesteps": T})
    model = make_model(cfg, key=jax.random.key(0))
    t0 = time.perf_counter()
    jax.block_until_ready(sample_images(cfg, model, jax.random.key(1), num_images))  # compile + first run
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(sample_images(cfg, model, jax.random.key(2), num_images))
    seconds = time.perf_counter() - t0
    return {
        "num_images": num_images,
        "sample_steps": T,
        "seconds": seconds,
        "s_per_step": seconds / T,
        "full_T": T_full,
        "full_seconds": seconds / T * T_full,
        "extrapolated": T != T_full,
        "compile_s": max(first_s - seconds, 0.0),
    }


def bench_preset(
    preset: str | Config,
    batch_size: int,
    *,
    steps: int,
    repeats: int,
    sample_steps: int | None,
    num_images: int = NUM_IMAGES,
    peak_flops: float | None = None,
    sample: bool = True,
) -> dict:
    """Everything for one (preset, batch size): a flat dict of plain numbers (JSON-ready)."""
    config = get_preset(preset) if isinstance(preset, str) else preset
    out = {"preset": config.name, "params": num_params(config), **bench_train(config, batch_size, steps, repeats)}
    if peak_flops:
        out["peak_flops_per_s"] = peak_flops
        out["fraction_of_peak"] = out["flops_per_s"] / peak_flops
    if sample:
        out["sample"] = bench_sample(config, num_images, sample_steps)
    return out


def format_train(r: dict) -> str:
    frac = f"{100 * r['fraction_of_peak']:.0f}%" if "fraction_of_peak" in r else "-"
    return (
        f"{r['preset']:14s}{r['batch_size']:>6d}{r['params'] / 1e6:>9.2f}M{r['compile_s']:>10.1f}"
        f"{r['ms_per_step']:>11.0f}{r['images_per_s']:>10.1f}{r['flops_per_step'] / 1e9:>11.1f}"
        f"{r['flops_per_s'] / 1e9:>10.1f}{frac:>8s}"
    )


TRAIN_HEADER = (
    f"{'preset':14s}{'batch':>6s}{'params':>10s}{'compile s':>10s}{'ms/step':>11s}{'img/s':>10s}"
    f"{'GFLOP/step':>11s}{'GFLOP/s':>10s}{'%peak':>8s}"
)


def format_sample(preset: str, s: dict) -> str:
    label = "extrapolated" if s["extrapolated"] else "measured"
    return (
        f"{preset:14s}{s['num_images']:>7d}{s['sample_steps']:>7d}{s['s_per_step']:>10.3f}"
        f"{s['full_seconds']:>10.1f}  (T={s['full_T']}, {label})"
    )


SAMPLE_HEADER = f"{'preset':14s}{'images':>7s}{'steps':>7s}{'s/step':>10s}{'T steps s':>10s}"


def print_sample_table(title: str, results: list[dict]) -> None:
    """The sampling table of the results that timed sampling (none: nothing printed)."""
    rows = [format_sample(r["preset"], r["sample"]) for r in results if "sample" in r]
    if rows:
        print(f"\n{title}\n{SAMPLE_HEADER}\n" + "\n".join(rows))


def parse_ints(text: str | None):
    return tuple(int(v) for v in text.split(",")) if text else None


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--presets", default="digits,nano_cifar10,paper_cifar10")
    p.add_argument("--batch-sizes", default=None, help="comma-separated; default per preset (see DEFAULTS)")
    p.add_argument("--steps", type=int, default=None, help="train steps per timed call (default per preset)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls, median taken (default per preset)")
    p.add_argument(
        "--sample-steps",
        type=int,
        default=None,
        help="sampling steps actually run (default per preset; fewer than T = extrapolated)",
    )
    p.add_argument("--num-images", type=int, default=NUM_IMAGES)
    p.add_argument("--no-sample", action="store_true", help="skip sampling")


def plan(args) -> list[tuple[str, int, dict]]:
    """(preset, batch size, options) for each configuration the flags ask for."""
    rows = []
    for preset in args.presets.split(","):
        d = defaults(preset)
        opts = {
            "steps": args.steps or d["steps"],
            "repeats": args.repeats or d["repeats"],
            "sample_steps": args.sample_steps or d["sample_steps"],
            "num_images": args.num_images,
        }
        for i, bs in enumerate(parse_ints(args.batch_sizes) or d["batch_sizes"]):
            rows.append((preset, bs, {**opts, "sample": not args.no_sample and i == 0}))  # sampling once per preset
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()

    peak = matmul_flops_per_s()
    print(
        f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}); "
        f"2048x2048 float32 matmul: {peak / 1e9:.1f} GFLOP/s (the 'peak')",
        flush=True,
    )
    results = []
    for preset, bs, opts in plan(args):
        results.append(bench_preset(preset, bs, peak_flops=peak, **opts))
    print("\ntraining (K steps in one lax.scan)\n" + TRAIN_HEADER)
    for r in results:
        print(format_train(r))
    print_sample_table("DDPM sampling", results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak_flops_per_s": peak, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
