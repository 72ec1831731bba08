"""K train steps in one lax.scan vs a Python loop over the jitted step, for both convolution forms.

    python bench/bench_train_loop.py --preset digits --batch-size 128 --steps 10

On XLA:CPU the weight gradient of a native convolution inside a loop body falls off the
fast path (jax-ml/jax#12868): the "xla" rows show it. The "matmul" form (im2col, the CPU
default) stays fast inside the scan. Prints ms/step and images/s; medians of --repeats.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from bench_presets import median_time
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.train import init_state, make_train_step, make_train_steps


def timed(fn, repeats):
    fn()  # compile + warm up
    return median_time(fn, repeats)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=10, help="K: steps per scan / per Python loop")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--impls", default="matmul,xla")
    args = p.parse_args()

    base = get_preset(args.preset)
    bs = args.batch_size or base.train.batch_size
    m = base.model
    data = jnp.asarray(np.random.default_rng(0).integers(0, 256, (1024, m.image_size, m.image_size, m.in_channels),
                                                         dtype=np.uint8))
    print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), preset {args.preset}, batch {bs}, "
          f"K = {args.steps}")
    print(f"{'conv':8s}{'loop':>14s}{'ms/step':>12s}{'images/s':>12s}")
    for impl in args.impls.split(","):
        cfg = base.replace(model={"conv_impl": impl}, train={"batch_size": bs})
        single, multi = make_train_step(cfg), make_train_steps(cfg, args.steps)
        box = {"state": init_state(cfg, 0)}

        def python_loop():
            s = box["state"]
            for _ in range(args.steps):
                s, _ = single(data, s)
            box["state"] = jax.block_until_ready(s)

        def scan_loop():
            s, _ = multi(data, box["state"])
            box["state"] = jax.block_until_ready(s)

        for name, fn in (("python loop", python_loop), ("lax.scan", scan_loop)):
            t = timed(fn, args.repeats) / args.steps
            print(f"{impl:8s}{name:>14s}{t * 1e3:>12.1f}{bs / t:>12.0f}", flush=True)


if __name__ == "__main__":
    main()
