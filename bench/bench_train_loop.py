"""The loop forms of training, timed side by side: K steps in one lax.scan vs a Python loop over the jitted
step, for both convolution forms; marks the form ``train.fit`` uses on this backend (``train.loop_form``).

    python bench/bench_train_loop.py --preset digits --steps 10 --rounds 3

On XLA:CPU a native convolution inside a loop body falls off the fast path (jax-ml/jax#12868): the
"xla + lax.scan" row shows it. The im2col "matmul" form stays fast inside the scan; a Python loop over a
natively convolving step avoids the loop body altogether. The forms are timed in alternating rounds in one
process, so a load that changes during the run hits them all alike: compare the ratios. Prints ms/step
(median over rounds), images/s and each form's time over the chosen form's (>1: slower than the choice).
"""

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from nanoddpm_utils.config import get_preset
from nanoddpm_utils.train import init_state, loop_form, make_train_step, make_train_steps

FORMS = [("loop", "xla"), ("scan", "matmul"), ("loop", "matmul"), ("scan", "xla")]


def runner(cfg, loop: str, steps: int, data):
    """A function that runs ``steps`` train steps in the given loop form and waits for them."""
    box = {"state": init_state(cfg, 0)}
    if loop == "scan":
        multi = make_train_steps(cfg, steps)

        def run():
            box["state"], _ = multi(data, box["state"])
            jax.block_until_ready(box["state"])
    else:
        single = make_train_step(cfg)

        def run():
            s = box["state"]
            for _ in range(steps):
                s, _ = single(data, s)
            box["state"] = jax.block_until_ready(s)
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=10, help="K: steps per scan / per Python loop (one timed call)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds over the forms (median)")
    p.add_argument("--forms", default=",".join(f"{loop}:{conv}" for loop, conv in FORMS[:3]),
                   help="comma-separated LOOP:CONV, LOOP in scan/loop, CONV in matmul/xla (default: all but "
                        "scan:xla, about 10x slower on CPU)")
    args = p.parse_args()

    base = get_preset(args.preset)
    bs = args.batch_size or base.train.batch_size
    m = base.model
    data = jnp.asarray(np.random.default_rng(0).integers(0, 256, (1024, m.image_size, m.image_size, m.in_channels),
                                                         dtype=np.uint8))
    forms = [tuple(f.split(":")) for f in args.forms.split(",")]
    backend = jax.default_backend()
    chosen = loop_form(base, backend)
    chosen = (chosen[0], {"auto": "xla" if backend != "cpu" else "matmul"}.get(chosen[1], chosen[1]))
    load0 = os.getloadavg()[0]
    print(f"backend {backend} ({jax.devices()[0].device_kind}), preset {args.preset}, batch {bs}, K = {args.steps}, "
          f"{args.rounds} rounds; fit uses {chosen[0]} + {chosen[1]} here; load {load0:.2f}", flush=True)
    runs = {f: runner(base.replace(model={"conv_impl": f[1]}, train={"batch_size": bs}), f[0], args.steps, data)
            for f in forms}
    for run in runs.values():
        run()  # compile and warm up, outside the timing
    times = {f: [] for f in forms}
    for r in range(args.rounds):
        for f, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[f].append((time.perf_counter() - t0) / args.steps)
        print(f"  round {r}: " + ", ".join(f"{f[0]}+{f[1]} {times[f][-1] * 1e3:.0f} ms" for f in forms), flush=True)
    med = {f: statistics.median(ts) for f, ts in times.items()}
    ref = med.get(chosen, min(med.values()))
    print(f"\n{'conv':8s}{'loop':>14s}{'ms/step':>10s}{'images/s':>10s}{'vs fit':>9s}")
    for f in forms:
        mark = "  <- fit's form" if f == chosen else ""
        name = "python loop" if f[0] == "loop" else "lax.scan"
        print(f"{f[1]:8s}{name:>14s}{med[f] * 1e3:>10.1f}{bs / med[f]:>10.0f}{med[f] / ref:>9.2f}{mark}")
    fastest = min(med, key=med.get)
    print(f"fastest here: {fastest[0]} + {fastest[1]}; load average (1 min) {load0:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
