"""The evidence behind ``fit``'s one training form, on this CPU: fit's form against the one that was dropped.

    python bench/bench_train_loop.py --preset digits --batch-size 64 --steps 50 --rounds 3

- "scan + matmul" (fit's form): K steps in one ``lax.scan`` (``train.make_train_steps``), the config's
  ``conv_impl`` as it is ("auto": im2col convolutions on CPU, the form the samplers use).
- "loop + xla" (dropped): a Python loop over the jitted single step (``train.make_train_step``) with XLA's
  native convolution (``model.conv_impl = "xla"``), which falls off the fast path inside a loop body on
  XLA:CPU (jax-ml/jax#12868) but not when called alone.

The two are timed in alternating rounds in one process, so a load that changes during the run hits both
alike: compare the ratio. Prints the CPU model, the load average and ms/step per form (median over rounds).
"""

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nanoddpm_utils.config import get_preset
from nanoddpm_utils.state import init_state
from nanoddpm_utils.train import make_train_step, make_train_steps


def cpu_model() -> str:
    """``lscpu``'s "Model name" (from /proc/cpuinfo), else what Python knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def scan_form(config, steps, data):
    """fit's form: ``steps`` train steps in one jitted ``lax.scan``."""
    run, box = make_train_steps(config, steps), {"state": init_state(config)}

    def go():
        box["state"], _ = run(data, box["state"])
        jax.block_until_ready(box["state"])

    return go


def loop_form(config, steps, data):
    """The dropped form: a Python loop over the jitted single step."""
    step, box = make_train_step(config), {"state": init_state(config)}

    def go():
        s = box["state"]
        for _ in range(steps):
            s, _ = step(data, s)
        box["state"] = jax.block_until_ready(s)

    return go


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--steps", type=int, default=50, help="K: steps per timed call (one scan, or K loop calls)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (the median is reported)")
    args = p.parse_args()

    base = get_preset(args.preset)
    base = base.replace(train={"batch_size": args.batch_size or base.train.batch_size})
    m = base.model
    data = jnp.asarray(
        np.random.default_rng(0).integers(0, 256, (1024, m.image_size, m.image_size, m.in_channels), dtype=np.uint8)
    )
    forms = {
        "scan + matmul (fit)": scan_form(base, args.steps, data),
        "loop + xla (dropped)": loop_form(base.replace(model={"conv_impl": "xla"}), args.steps, data),
    }
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; backend {jax.default_backend()}; preset {args.preset}, "
        f"batch {base.train.batch_size}, K = {args.steps}, {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.2f} before",
        flush=True,
    )
    for go in forms.values():
        go()  # compile and warm up, outside the timing
    times = {name: [] for name in forms}
    for r in range(args.rounds):
        for name, go in forms.items():
            t0 = time.perf_counter()
            go()
            times[name].append((time.perf_counter() - t0) / args.steps * 1e3)
        print(f"  round {r}: " + ", ".join(f"{n} {ts[-1]:.0f} ms/step" for n, ts in times.items()), flush=True)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ref = med["scan + matmul (fit)"]
    for name, ms in med.items():
        print(f"{name:22s}{ms:8.1f} ms/step{base.train.batch_size / ms * 1e3:8.0f} images/s{ms / ref:6.2f}x fit")
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
