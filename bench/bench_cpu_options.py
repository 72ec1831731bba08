"""CPU options for the train step: XLA flags, loop form, thread use and im2col variants, A/B in subprocesses.

    python bench/bench_cpu_options.py --preset digits --batch-size 128 --steps 3 --rounds 2 \\
        --settings base,xla_loop,xla_scan,fast_math,taps
    python bench/bench_cpu_options.py --list          # the named settings and what each changes

Each named setting (SETTINGS below) is a loop form ("scan": K steps in one lax.scan via
``make_train_steps``; "loop": a Python loop over the jitted ``make_train_step``; ``train.fit`` uses
"xla_loop" on CPU, see ``train.loop_form``), a conv form
("matmul" = im2col, the CPU default; "xla" = XLA's native conv; or an im2col variant patched
over ``layers.conv2d_matmul`` in the child only), extra ``XLA_FLAGS`` and an optional
``taskset`` core list. Every (round, setting) runs in a fresh subprocess (XLA_FLAGS must be set
before jax is imported); settings run in the same order each round, so A and B alternate.
A child compiles, warms up once, then times --repeats calls of K steps (median).

Prints one row per setting: ms/step of each round, their median, and the ratio of that median
to the first setting's (the baseline; <1 is faster), plus the 1-minute load average before and
after. A flag this jaxlib does not know makes the child fail: the row then says "FAILED" and
the error's last line. --json writes everything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# name: (loop, conv, extra XLA_FLAGS, taskset cores or None, note)
SETTINGS = {
    "base": ("scan", "matmul", "", None, "scan + im2col (one concatenated matmul): the CPU default before issue 13"),
    "xla_loop": ("loop", "xla", "", None, "Python loop over the jitted single step, native conv: fit's CPU form"),
    "matmul_loop": ("loop", "matmul", "", None, "Python loop over the jitted single step, im2col"),
    "xla_scan": ("scan", "xla", "", None, "scan, native conv (jax-ml/jax#12868)"),
    "no_thunk": ("scan", "matmul", "--xla_cpu_use_thunk_runtime=false", None, "legacy (non-thunk) runtime"),
    "no_eigen_mt": ("scan", "matmul", "--xla_cpu_multi_thread_eigen=false", None, "single-threaded Eigen"),
    "fast_math": ("scan", "matmul", "--xla_cpu_enable_fast_math=true", None, "fast math"),
    "conc_sched": ("scan", "matmul", "--xla_cpu_enable_concurrency_optimized_scheduler=true", None,
                   "concurrency-optimized scheduler"),
    "onednn": ("scan", "matmul", "--xla_cpu_use_onednn=true", None, "oneDNN"),
    "no_onednn": ("scan", "matmul", "--xla_cpu_use_onednn=false", None, "no oneDNN"),
    "xnnpack": ("scan", "matmul", "--xla_cpu_use_xnnpack=true", None, "XNNPACK"),
    "no_xnnpack": ("scan", "matmul", "--xla_cpu_use_xnnpack=false", None, "no XNNPACK"),
    "xnn_greedy": ("scan", "matmul", "--xla_cpu_use_xnnpack=true "
                   "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY", None,
                   "XNNPACK graph fusion, greedy"),
    "xnn_dot": ("scan", "matmul", "--xla_cpu_experimental_xnn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
                None, "XNNPACK for individual dots"),
    "ynn_dot": ("scan", "matmul", "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
                None, "YNNPACK for individual dots"),
    "onednn_dot": ("scan", "matmul",
                   "--xla_cpu_experimental_onednn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT", None,
                   "oneDNN fusion for individual dots"),
    "xla_scan_xnn_conv": ("scan", "xla",
                          "--xla_cpu_experimental_xnn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
                          None, "scan, native conv via XNNPACK"),
    "xla_scan_ynn_conv": ("scan", "xla",
                          "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
                          None, "scan, native conv via YNNPACK"),
    "small_while": ("scan", "matmul", "--xla_cpu_small_while_loop_byte_threshold=0", None,
                    "small-while-loop threshold 0"),
    "sched_mem": ("scan", "matmul", "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED", None,
                  "memory-optimized scheduler"),
    "one_core": ("scan", "matmul", "", "0", "taskset -c 0 (XLA's pool sized to 1 core)"),
    "xla_loop_one_core": ("loop", "xla", "", "0", "Python loop, native conv, taskset -c 0"),
    "taps": ("scan", "matmul", "", None, "im2col variant: 9 accumulated matmuls (no concatenate)"),
    "rows": ("scan", "matmul", "", None, "im2col variant: 3 matmuls, each over a row of 3 taps"),
    "hybrid": ("scan", "matmul", "", None,
               "custom_vjp: native conv forward and input grad, im2col matmul for the weight grad"),
    "hybrid_loop": ("loop", "matmul", "", None, "hybrid, Python loop"),
    "precision_high": ("scan", "matmul", "", None, "jax.default_matmul_precision('highest')"),
}
VARIANTS = {"taps", "rows", "hybrid", "hybrid_loop"}


# ---------------------------------------------------------------- im2col variants (child only)

def _pad_same(x, kh, kw, stride):
    """x padded as TensorFlow's "SAME" (as layers.conv2d_matmul), and the output's (Ho, Wo)."""
    import jax.numpy as jnp
    H, W, _ = x.shape
    Ho, Wo = -(-H // stride), -(-W // stride)
    ph, pw = max((Ho - 1) * stride + kh - H, 0), max((Wo - 1) * stride + kw - W, 0)
    return jnp.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))), Ho, Wo


def conv2d_taps(x, w, stride):
    """The 3x3 conv as kh*kw accumulated matmuls, one per tap: no (Ho, Wo, 9 cin) concatenate."""
    kh, kw, cin, cout = w.shape
    xp, Ho, Wo = _pad_same(x, kh, kw, stride)
    out = None
    for i in range(kh):
        for j in range(kw):
            y = xp[i:i + (Ho - 1) * stride + 1:stride, j:j + (Wo - 1) * stride + 1:stride] @ w[i, j]
            out = y if out is None else out + y
    return out


def conv2d_rows(x, w, stride):
    """kh matmuls, each over the concatenation of one kernel row's kw taps."""
    import jax.numpy as jnp
    kh, kw, cin, cout = w.shape
    xp, Ho, Wo = _pad_same(x, kh, kw, stride)
    out = None
    for i in range(kh):
        row = jnp.concatenate([xp[i:i + (Ho - 1) * stride + 1:stride, j:j + (Wo - 1) * stride + 1:stride]
                               for j in range(kw)], axis=-1)
        y = row @ w[i].reshape(kw * cin, cout)
        out = y if out is None else out + y
    return out


def make_hybrid_nd(conv2d_xla, conv2d_matmul):
    """Native conv for the forward and input gradient, im2col matmul for the weight gradient."""
    import jax

    def f(x, w, stride):
        return conv2d_xla(x, w, stride)

    f = jax.custom_vjp(f, nondiff_argnums=(2,))

    def fwd(x, w, stride):
        return conv2d_xla(x, w, stride), (x, w)

    def bwd(stride, res, g):
        x, w = res
        _, vjp_x = jax.vjp(lambda x_: conv2d_xla(x_, w, stride), x)
        _, vjp_w = jax.vjp(lambda w_: conv2d_matmul(x, w_, stride), w)
        return vjp_x(g)[0], vjp_w(g)[0]

    f.defvjp(fwd, bwd)
    return f


# ---------------------------------------------------------------- child

def child(args) -> None:
    import contextlib

    import jax
    import jax.numpy as jnp
    import numpy as np

    from nanoddpm_utils import layers
    from nanoddpm_utils.config import get_preset
    from bench_train_loop import runner  # the loop forms, as bench_train_loop times them

    loop, conv, _, _, _ = SETTINGS[args.setting]
    if args.setting == "taps":
        layers.conv2d_matmul = conv2d_taps
    elif args.setting == "rows":
        layers.conv2d_matmul = conv2d_rows
    elif args.setting.startswith("hybrid"):
        layers.conv2d_matmul = make_hybrid_nd(layers.conv2d_xla, layers.conv2d_matmul)
    ctx = jax.default_matmul_precision("highest") if args.setting == "precision_high" else contextlib.nullcontext()

    base = get_preset(args.preset)
    bs = args.batch_size or base.train.batch_size
    cfg = base.replace(model={"conv_impl": conv}, train={"batch_size": bs})
    m = cfg.model
    data = jnp.asarray(np.random.default_rng(0).integers(0, 256, (1024, m.image_size, m.image_size, m.in_channels),
                                                         dtype=np.uint8))
    with ctx:
        run = runner(cfg, loop, args.steps, data)

        t0 = time.perf_counter()
        run()  # compile + first run
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    ms = statistics.median(times) / args.steps * 1e3
    print("RESULT " + json.dumps({"ms_per_step": ms, "first_call_s": first,
                                  "all_ms": [t / args.steps * 1e3 for t in times]}), flush=True)


# ---------------------------------------------------------------- parent

def run_child(setting: str, args) -> dict:
    _, _, flags, cores, _ = SETTINGS[setting]
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--setting", setting, "--preset", args.preset,
           "--steps", str(args.steps), "--repeats", str(args.repeats)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if cores is not None:
        cmd = ["taskset", "-c", cores] + cmd
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    err = [ln for ln in (p.stderr or "").strip().splitlines() if ln.strip()]
    return {"error": err[-1][:200] if err else f"exit {p.returncode}"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=3, help="K train steps per timed call")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per child (median)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds over all settings")
    p.add_argument("--settings", default="base,xla_loop,xla_scan", help="comma-separated names; first = baseline")
    p.add_argument("--timeout", type=float, default=900, help="seconds per child")
    p.add_argument("--json", default=None)
    p.add_argument("--list", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--setting", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.list:
        for k, (loop, conv, flags, cores, note) in SETTINGS.items():
            print(f"{k:20s}{loop:6s}{conv:8s}{note}  {flags}{' taskset -c ' + cores if cores else ''}")
        return
    if args.child:
        return child(args)

    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        p.error(f"unknown settings {unknown}; see --list")
    res = {n: [] for n in names}
    load0 = os.getloadavg()[0]
    print(f"preset {args.preset}, batch {args.batch_size or 'preset'}, K = {args.steps}, "
          f"repeats {args.repeats}, rounds {args.rounds}; load {load0:.2f}", flush=True)
    for r in range(args.rounds):
        for n in names:
            out = run_child(n, args)
            out["load"] = os.getloadavg()[0]
            res[n].append(out)
            ms = f"{out['ms_per_step']:.1f} ms/step" if "ms_per_step" in out else "FAILED: " + out["error"]
            print(f"  round {r} {n:20s} {ms}  (load {out['load']:.2f})", flush=True)
    load1 = os.getloadavg()[0]
    med = {n: statistics.median([o["ms_per_step"] for o in res[n] if "ms_per_step" in o])
           for n in names if any("ms_per_step" in o for o in res[n])}
    b = med.get(names[0])
    print(f"\n{'setting':20s}{'rounds ms/step':>28s}{'median':>10s}{'vs ' + names[0]:>12s}")
    for n in names:
        rounds = " ".join(f"{o['ms_per_step']:.1f}" if "ms_per_step" in o else "FAIL" for o in res[n])
        if n in med:
            print(f"{n:20s}{rounds:>28s}{med[n]:>10.1f}{med[n] / b if b else float('nan'):>12.2f}")
        else:
            print(f"{n:20s}  FAILED: {res[n][0]['error']}")
    print(f"load average (1 min): {load0:.2f} before, {load1:.2f} after")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": res, "median_ms": med, "load": [load0, load1]}, f, indent=1)


if __name__ == "__main__":
    main()
