"""Sample quality of a trained digits run, judged by a classifier trained on real digits.

    python bench/digits_quality.py --run runs/digits --num 500

Prints the table of evaluate.digits_quality_table (samples vs real held-out digits vs noise),
the sampling time, and whether the issue's goals hold: confidence within 0.05 of real,
all ten classes present, Frechet distance <= 1.25x real-vs-real.
"""

import argparse
import json
import time

import jax
import numpy as np

from nanoddpm_utils import checkpoint
from nanoddpm_utils.data import to_uint8
from nanoddpm_utils.evaluate import digits_quality_table, format_table
from nanoddpm_utils.sample import sample_images


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run directory of a digits run")
    p.add_argument("--num", type=int, default=500, help="samples to draw (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args()

    state, config = checkpoint.restore(args.run)
    t0 = time.perf_counter()
    images = jax.block_until_ready(sample_images(config, state.ema, jax.random.key(args.seed), args.num))
    t1 = time.perf_counter()  # one call: compile (seconds) + T steps
    table = digits_quality_table(to_uint8(images))
    s, r = table["samples"], table["real (held out)"]
    goals = {
        "confidence within 0.05 of real": s["confidence"] >= r["confidence"] - 0.05,
        "all ten classes present": s["classes_present"] == 10,
        "frechet <= 1.25x real": s["frechet"] <= 1.25 * r["frechet"],
    }
    print(f"run {args.run}: step {int(state.step)}, {args.num} samples, T = {config.diffusion.num_timesteps}")
    print(f"sampling: {t1 - t0:.1f} s including compile ({(t1 - t0) / config.diffusion.num_timesteps * 1e3:.1f} "
          f"ms/step) on {jax.devices()[0].device_kind}")
    print(format_table(table))
    for goal, ok in goals.items():
        print(f"  [{'x' if ok else ' '}] {goal}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"table": table, "goals": goals, "sampling_seconds": t1 - t0, "step": int(state.step)}, f,
                      indent=2)
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
