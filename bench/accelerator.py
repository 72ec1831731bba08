"""Training images/s and sampling seconds per preset on whatever accelerator JAX sees, with the device kind.

    python bench/accelerator.py                        # every preset, sized for the backend found
    python bench/accelerator.py --presets nano_cifar10 --json out.json

On a TPU or GPU it times each preset at its own batch size (a scan of --steps train steps, median of
--repeats calls after a warm-up) and draws 64 samples with the preset's T, and prints how long the preset's
full training would take at that speed: the measurement that replaces notebook 06's estimate ("about an hour
on a Colab accelerator") the day one is at hand. On a CPU it says so and still runs, small: batch 16, a few
steps, and sampling with a few steps extrapolated to T (labelled so).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_presets import bench_sample, bench_train  # noqa: E402

from nanoddpm_utils.config import PRESETS, get_preset  # noqa: E402
from nanoddpm_utils.train import resolve_compute_dtype  # noqa: E402


def sizes(preset: str, on_cpu: bool) -> dict:
    """Batch size, steps per timed call, timed calls and sampling steps for one preset on this backend."""
    config = get_preset(preset)
    if not on_cpu:
        return dict(batch_size=config.train.batch_size, steps=20, repeats=3, sample_steps=None)
    small = preset in ("smoke", "digits")
    return dict(
        batch_size=16,
        steps=5 if small else 2,
        repeats=2 if small else 1,
        sample_steps=None if preset == "smoke" else (50 if small else 3),
    )


def measure(preset: str, on_cpu: bool, num_images: int) -> dict:
    config = get_preset(preset)
    s = sizes(preset, on_cpu)
    train = bench_train(config, s["batch_size"], s["steps"], s["repeats"])
    sample = bench_sample(config, num_images, s["sample_steps"])
    hours = config.train.steps * train["ms_per_step"] / 1e3 / 3600 * config.train.batch_size / s["batch_size"]
    return {
        "preset": preset,
        **s,
        "images_per_s": train["images_per_s"],
        "ms_per_step": train["ms_per_step"],
        "compile_s": train["compile_s"],
        "sample": sample,
        "full_training_hours": hours,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names (default: all)")
    p.add_argument("--num-images", type=int, default=64, help="images per sampling call (default 64)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    presets = [n.strip() for n in args.presets.split(",") if n.strip()]
    unknown = [n for n in presets if n not in PRESETS]
    if unknown:
        print(f"error: unknown preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    if args.num_images < 1:
        print("error: --num-images must be at least 1", file=sys.stderr)
        return 2

    devices = jax.devices()
    on_cpu = devices[0].platform == "cpu"
    kind = devices[0].device_kind
    dtype = jax.numpy.dtype(resolve_compute_dtype("auto")).name
    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}: {len(devices)} x {kind}; "
        f"training activations (compute_dtype auto): {dtype}"
    )
    if on_cpu:
        print(
            "no accelerator found: running on the CPU, small (batch 16, a few steps; sampling extrapolated to T); "
            "the full-training hours below are for this CPU"
        )
    results = []
    header = f"{'preset':14} {'batch':>5} {'images/s':>9} {'ms/step':>8} {'full run (h)':>12} {'sample 64 (s)':>14}"
    print(header)
    for name in presets:
        r = measure(name, on_cpu, args.num_images)
        results.append(r)
        sm = r["sample"]
        note = (
            f" (T={sm['full_T']}, extrapolated from {sm['sample_steps']} steps)"
            if sm["extrapolated"]
            else f" (T={sm['full_T']})"
        )
        print(
            f"{name:14} {r['batch_size']:>5} {r['images_per_s']:>9.1f} {r['ms_per_step']:>8.1f} "
            f"{r['full_training_hours']:>12.2f} {sm['full_seconds']:>14.1f}{note}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"jax": jax.__version__, "device_kind": kind, "num_devices": len(devices), "results": results}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
