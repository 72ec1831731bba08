"""All benchmarks in one run (``make bench``): our JAX model and its PyTorch peer side by side.

    python bench/run_all.py                      # the defaults: about 10-20 minutes on 2 CPU cores
    python bench/run_all.py --presets digits --json /tmp/r.json

For each preset and batch size, in turn: our train step (bench_presets), the peer's
(bench_peer: diffusers' UNet2DModel in the same architecture), our DDPM sampling, the
peer's. Prints the machine and three tables; "ours/peer" > 1 means we are faster. The
absolute numbers move with whatever else the machine runs (the load average is printed
before and after); the ratios, measured minutes apart in the same run, are what to quote.
Writes everything as JSON to --json. Without torch/diffusers only our side runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules, also when imported

import jax  # noqa: E402
from bench_presets import add_common_args, bench_sample, bench_train, matmul_flops_per_s, num_params, plan  # noqa: E402

from nanoddpm_utils.config import get_preset  # noqa: E402


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    versions = {}
    for pkg in ("jax", "jaxlib", "equinox", "optax", "torch", "diffusers"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        **versions,
    }


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def fmt(value, spec: str) -> str:
    """``format(value, spec)``, or "-" for a missing value (no peer)."""
    return "-" if value is None else format(value, spec)


def print_tables(rows: list[dict], peak: float) -> None:
    print(
        "\ntraining step: batch draw, q_sample, forward, MSE on eps, backward, clip, Adam, EMA "
        "(ours: K steps in one lax.scan; peer: eager PyTorch, thr = the faster thread count of those tried)"
    )
    print(
        f"{'preset':14s}{'batch':>6s}{'params ours':>13s}{'params peer':>13s}{'ms/step ours':>14s}"
        f"{'ms/step peer':>14s}{'thr':>4s}{'img/s ours':>12s}{'img/s peer':>12s}{'ours/peer':>11s}"
    )
    for r in rows:
        o, p = r["ours"], r.get("peer", {})
        print(
            f"{r['preset']:14s}{r['batch_size']:>6d}{o['params']:>13,d}{fmt(p.get('params'), ','):>13s}"
            f"{o['ms_per_step']:>14.0f}{fmt(p.get('ms_per_step'), '.0f'):>14s}{fmt(p.get('threads'), 'd'):>4s}"
            f"{o['images_per_s']:>12.1f}{fmt(p.get('images_per_s'), '.1f'):>12s}"
            f"{ratio(o['images_per_s'], p.get('images_per_s')):>11s}"
        )

    print(
        f"\nFLOP/s of the train step: XLA's cost analysis of our step / time per step; the peer's column "
        f"divides the same count by its time (same architecture).\n'peak' = a jitted 2048x2048 float32 "
        f"matmul here (the faster of two, at start and end): {peak / 1e9:.1f} GFLOP/s. "
        "'compile s' = our step's XLA compile time (paid once per run)"
    )
    print(
        f"{'preset':14s}{'batch':>6s}{'GFLOP/step':>12s}{'compile s':>11s}{'GFLOP/s ours':>14s}{'%peak':>7s}"
        f"{'GFLOP/s peer':>14s}{'%peak':>7s}"
    )
    for r in rows:
        o, p = r["ours"], r.get("peer", {})
        pf = o["flops_per_step"] / (p["ms_per_step"] / 1e3) if "ms_per_step" in p else None
        print(
            f"{r['preset']:14s}{r['batch_size']:>6d}{o['flops_per_step'] / 1e9:>12.1f}{o['compile_s']:>11.1f}"
            f"{o['flops_per_s'] / 1e9:>14.1f}{100 * o['flops_per_s'] / peak:>6.0f}%"
            f"{fmt(pf and pf / 1e9, '.1f'):>14s}{(fmt(pf and 100 * pf / peak, '.0f') + '%') if pf else '-':>7s}"
        )

    sampled = [r for r in rows if "sample" in r["ours"]]
    if not sampled:
        return
    print(
        "\nDDPM sampling (ancestral, all T steps): ours = sample_images (one lax.scan, compiled by a first call); "
        "peer = DDPMScheduler loop under no_grad.\n'steps run' were timed; the T-step time is that per-step "
        "time x T, 'extrapolated' when fewer than T steps ran"
    )
    print(
        f"{'preset':14s}{'images':>7s}{'steps run':>11s}{'s/step ours':>13s}{'s/step peer':>13s}{'thr':>4s}"
        f"{'T':>6s}{'T-step s ours':>15s}{'T-step s peer':>15s}{'ours/peer':>11s}  how"
    )
    for r in sampled:
        o, p = r["ours"]["sample"], r.get("peer", {}).get("sample", {})
        run = f"{o['sample_steps']}/{p['sample_steps']}" if p else f"{o['sample_steps']}"
        how = "extrapolated" if o["extrapolated"] or p.get("extrapolated") else "measured"
        print(
            f"{r['preset']:14s}{o['num_images']:>7d}{run:>11s}{o['s_per_step']:>13.3f}"
            f"{fmt(p.get('s_per_step'), '.3f'):>13s}{fmt(p.get('threads'), 'd'):>4s}{o['full_T']:>6d}"
            f"{o['full_seconds']:>15.1f}{fmt(p.get('full_seconds'), '.1f'):>15s}"
            f"{ratio(p.get('full_seconds'), o['full_seconds']):>11s}  {how}"
        )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--no-peer", action="store_true", help="only our side (also automatic without torch/diffusers)")
    p.add_argument(
        "--json",
        default=str(Path(__file__).resolve().parent / "results.json"),
        help="write the results here (default: bench/results.json, git-ignored; '' to skip)",
    )
    args = p.parse_args()

    t_start = time.perf_counter()
    bench_peer = None
    if not args.no_peer:
        try:
            import bench_peer
        except ImportError as e:
            print(f"peer skipped: {e} (pip install -e '.[bench]')")
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores; python {info['python']}; backend {info['backend']} "
        f"({info['device']}); jax {info['jax']}, jaxlib {info['jaxlib']}, equinox {info['equinox']}, "
        f"torch {info['torch']}, diffusers {info['diffusers']}"
    )
    load_before = load()
    print(f"load average (1, 5, 15 min) at start: {load_before}", flush=True)
    peak = matmul_flops_per_s()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    rows = []
    for preset, bs, opts in plan(args):
        config = get_preset(preset)
        row = {"preset": preset, "batch_size": bs, "ours": {"params": num_params(config)}}
        row["ours"].update(bench_train(config, bs, opts["steps"], opts["repeats"]))
        log(f"{preset} B={bs} train ours: {row['ours']['ms_per_step']:.0f} ms/step")
        if bench_peer is not None:
            row["peer"] = bench_peer.bench_peer_train(config, bs, opts["steps"], opts["repeats"])
            log(f"{preset} B={bs} train peer: {row['peer']['ms_per_step']:.0f} ms/step")
        if opts["sample"]:
            row["ours"]["sample"] = bench_sample(config, opts["num_images"], opts["sample_steps"])
            log(f"{preset} sampling ours: {row['ours']['sample']['s_per_step']:.3f} s/step")
            if bench_peer is not None:
                row["peer"]["sample"] = bench_peer.bench_peer_sample(config, opts["num_images"], opts["sample_steps"])
                log(f"{preset} sampling peer: {row['peer']['sample']['s_per_step']:.3f} s/step")
        rows.append(row)

    peak = max(peak, matmul_flops_per_s())  # the better of two measurements, minutes apart: less load noise
    print_tables(rows, peak)
    wall = time.perf_counter() - t_start
    print(
        f"\nload average at end: {load()}; wall time {wall / 60:.1f} min. The machine may be shared: absolute "
        "numbers are noisy, compare the ratios."
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": info,
                    "load_before": load_before,
                    "load_after": load(),
                    "wall_s": wall,
                    "peak_flops_per_s": peak,
                    "results": rows,
                },
                f,
                indent=1,
            )
        print(f"results: {args.json}")


if __name__ == "__main__":
    main()
