"""Quality and seconds against the number of steps, per sampler, on a digits model, judged in two feature spaces.

    python bench/sampler_curve.py --num 360 --seeds 0,1,2 --steps 10,20,50,100,1000 \\
        --samplers ddim:uniform,ddim:quadratic,ddim:trailing,dpm++2m:uniform,dpm++2m:quadratic,dpm++2m:trailing
    python bench/sampler_curve.py --run runs/digits --seeds 0,1,2,3 --steps 50 --samplers ddim:uniform

The second form is the quality table of one run: DDPM over all T steps and DDIM-50, with the digits goals.
The model: ``--run DIR`` (a run written by ``train``), else a shipped one (``--pretrained NAME``, default digits).
Every sampler draws ``--num`` digits per seed from the same x_T (the seed's); sampling is compiled ahead of time
(compile seconds apart) and then timed alone. Quality is ``evaluate.digits_quality_table``: the 8 MLP judges
(Frechet distance and KID in their hidden features) and the pixel judge (SVM + principal components), mean and
standard deviation over seeds, beside DDPM over all T steps (always run: the reference) and real held-out digits.
"as good" (``evaluate.as_good``): within 10% of DDPM-T, or within the seed spread of the difference, on both
judges' Frechet distance and KID. Checked at the end: the digits goals for every row (MLP confidence within 0.05
of real held-out digits, all ten classes in every seed's samples, MLP Frechet distance at most 1.25x the real
digits' floor), and the few-step goals (at 20 steps the best sampler as good as DDPM-T, at 50 steps too, and
20 steps at least 40x faster than the T-step chain).
"""

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import equinox as eqx
import jax

from nanoddpm_utils import checkpoint, pretrained
from nanoddpm_utils.config import SAMPLERS, SPACINGS
from nanoddpm_utils.evaluate import as_good, digits_quality_table
from nanoddpm_utils.images import to_uint8
from nanoddpm_utils.sample import sampling_loop

FIGURES = ("frechet", "kid", "pixel_frechet", "pixel_kid")


def draw(config, model, sampler, steps, spacing, key, num):
    """(images in [-1, 1], compile seconds, sampling seconds)."""
    kwargs = {} if sampler == "ddpm" else {"steps": steps, "spacing": spacing}
    fn, schedule, shape, kw = sampling_loop(config, num, sampler=sampler, **kwargs)
    model = eqx.nn.inference_mode(model)
    t0 = time.perf_counter()
    compiled = fn.lower(model, schedule, key, shape, **kw).compile()
    t1 = time.perf_counter()
    images = jax.block_until_ready(compiled(model, schedule, key, shape, **kw))
    return images, t1 - t0, time.perf_counter() - t1


def load_model(run, name, step=None):
    if run:
        path = None if step is None else Path(run) / "checkpoints" / f"step_{step:08d}.eqx"
        state, config = checkpoint.restore(run, path=path)
        return config, state.ema, f"{run} (step {int(state.step)})"
    config, model = pretrained.load(name)
    return config, model, f"the shipped model {name!r}"


def digits_goals(s, real):
    """The digits quality goals for one row of means over seeds (``classes_present`` the minimum over seeds)."""
    return {
        "confidence": s["confidence"] >= real["confidence"] - 0.05,
        "classes": s["classes_present_min"] == 10,
        "frechet": s["frechet"] <= 1.25 * real["frechet"],
    }


def parse_samplers(spec):
    out = []
    for item in spec.split(","):
        name, _, spacing = item.partition(":")
        if name not in SAMPLERS or name == "ddpm" or spacing not in SPACINGS:
            raise SystemExit(
                f"error: bad sampler {item!r}; write NAME:SPACING, NAME one of ddim, dpm++2m and "
                f"SPACING one of {', '.join(SPACINGS)}"
            )
        out.append((name, spacing))
    return out


def summarise(rows):
    """Mean and standard deviation over seeds of each figure, plus the mean seconds."""
    out = {}
    for f in FIGURES + ("seconds", "compile_seconds", "confidence", "pixel_confidence"):
        values = [r[f] for r in rows]
        out[f] = statistics.fmean(values)
        out[f + "_sd"] = statistics.stdev(values) if len(values) > 1 else float("nan")
    out["classes_present_min"] = min(r["classes_present"] for r in rows)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--run", help="run directory of a digits run (its EMA weights)")
    src.add_argument("--pretrained", default="digits", help="a shipped model (default digits)")
    p.add_argument("--step", type=int, help="with --run: the checkpoint of this step (default: the newest)")
    p.add_argument("--num", type=int, default=360, help="samples per sampler and seed (default 360)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated sampling seeds (default 0,1,2)")
    p.add_argument("--steps", default="10,20,50,100,1000", help="step counts for the few-step samplers")
    p.add_argument(
        "--samplers",
        default="ddim:uniform,ddim:quadratic,ddim:trailing,dpm++2m:uniform,dpm++2m:quadratic,dpm++2m:trailing",
        help="NAME:SPACING, comma-separated",
    )
    p.add_argument(
        "--timing-rounds",
        type=int,
        default=3,
        help="rounds of the alternating speed comparison, DDPM-T against the best 20-step sampler "
        "(default 3; 0 skips it)",
    )
    p.add_argument("--timing-num", type=int, default=64, help="images per timing round (default 64)")
    p.add_argument("--json", help="also write every figure to this JSON file")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    config, model, source = load_model(args.run, args.pretrained, args.step)
    T = config.diffusion.num_timesteps
    steps_list = [int(s) for s in args.steps.split(",")]
    runs = [("ddpm", T, "-")] + [(n, k, sp) for n, sp in parse_samplers(args.samplers) for k in steps_list if k <= T]
    print(
        f"model: {source}; {args.num} samples per seed, seeds {seeds}; T = {T}; "
        f"on {jax.devices()[0].device_kind} (jax {jax.__version__})",
        flush=True,
    )
    results = {}
    for name, steps, spacing in runs:
        rows = []
        for seed in seeds:
            images, compile_s, seconds = draw(config, model, name, steps, spacing, jax.random.key(seed), args.num)
            table = digits_quality_table(to_uint8(images), seed=seed)
            rows.append(dict(table["samples"], seconds=seconds, compile_seconds=compile_s))
            if name == "ddpm":
                results.setdefault("real", []).append(
                    table["real (held out)"] | {"seconds": 0.0, "compile_seconds": 0.0}
                )
            print(f"    seed {seed}: compile {compile_s:.1f} s, sampling {seconds:.1f} s", flush=True)
        results[name, steps, spacing] = rows
        s = summarise(rows)
        print(
            f"  done {name} {spacing} {steps}: {s['seconds']:.1f} s, Frechet {s['frechet']:.3f}, "
            f"pixel Frechet {s['pixel_frechet']:.4f}",
            flush=True,
        )
    summary = {key: summarise(rows) for key, rows in results.items()}
    ref = summary["ddpm", T, "-"]
    header = (
        f"{'sampler':>8} {'spacing':>9} {'steps':>5} {'seconds':>8} {'speedup':>7} "
        f"{'MLP Frechet':>15} {'MLP KID x1e3':>15} {'pixel Frechet':>15} {'pixel KID x1e3':>15} "
        f"{'conf':>5} {'MLP':>4} {'pixel':>5} {'as good':>7} {'goals':>5}"
    )
    real = summary["real"]
    print("\n" + header)
    for key, s in summary.items():
        if key == "real":
            continue
        name, steps, spacing = key
        spread = {f: math.hypot(s[f + "_sd"], ref[f + "_sd"]) if len(seeds) > 1 else 0.0 for f in FIGURES}
        verdict = as_good(s, ref, spread)
        s["verdict"] = verdict
        s["goals"] = digits_goals(s, real)
        cells = "".join(
            f" {s[f] * (1e3 if 'kid' in f else 1):>7.3f}+-{s[f + '_sd'] * (1e3 if 'kid' in f else 1):<6.3f}"
            for f in FIGURES
        )
        print(
            f"{name:>8} {spacing:>9} {steps:>5} {s['seconds']:>8.2f} {ref['seconds'] / s['seconds']:>6.1f}x{cells}"
            f" {s['confidence']:>5.3f} {'yes' if verdict['mlp'] else 'no':>4} {'yes' if verdict['pixel'] else 'no':>5}"
            f" {'yes' if verdict['as_good'] else 'no':>7} {'met' if all(s['goals'].values()) else 'no':>5}"
        )
    r = real
    print(
        f"{'real digits (floor)':>33}"
        + "".join(
            f" {r[f] * (1e3 if 'kid' in f else 1):>7.3f}+-{r[f + '_sd'] * (1e3 if 'kid' in f else 1):<6.3f}"
            for f in FIGURES
        )
        + f" {r['confidence']:>5.3f}"
    )
    print(
        f"(mean +- standard deviation over {len(seeds)} seeds; speedup: DDPM-{T} seconds / these seconds; "
        f"compile seconds not included; conf: the MLP judges' mean confidence; goals: the digits goals, "
        f"confidence within 0.05 of real, all ten classes in every seed, MLP Frechet <= 1.25x real)"
    )
    g = ref["goals"]
    print(
        f"digits goals, DDPM-{T}: confidence {ref['confidence']:.3f} vs real {real['confidence']:.3f} "
        f"({'met' if g['confidence'] else 'not met'}); "
        f"ten classes in every seed ({'met' if g['classes'] else 'not met'}); "
        f"Frechet {ref['frechet']:.3f} = {ref['frechet'] / real['frechet']:.2f}x real "
        f"({'met' if g['frechet'] else 'not met'})"
    )
    best_at = {}
    for k in (20, 50):
        good = [(key, s) for key, s in summary.items() if key != "real" and key[1] == k]
        if good:
            best = min(good, key=lambda ks: sum(ks[1][f] / max(abs(ref[f]), 1e-12) for f in FIGURES))
            (name, _, spacing), s = best
            best_at[k] = (name, k, spacing)
            print(
                f"goal at {k} steps: best {name} ({spacing}) as good as DDPM-{T} on both judges: "
                f"{'met' if s['verdict']['as_good'] else 'not met'} ({s['verdict']}); "
                f"{ref['seconds'] / s['seconds']:.0f}x faster in the table above"
            )
    timing = {}
    if 20 in best_at and args.timing_rounds > 0:
        # the rows above were timed minutes apart, under whatever else the machine ran meanwhile: time the two
        # that the speed goal compares again, alternately, in the same minutes
        name, k, spacing = best_at[20]
        pair = {f"DDPM-{T}": ("ddpm", T, "-"), f"{name} ({spacing}) {k}": best_at[20]}
        for _ in range(args.timing_rounds):
            for label, (n, steps, sp) in pair.items():
                timing.setdefault(label, []).append(
                    draw(config, model, n, steps, sp, jax.random.key(0), args.timing_num)[2]
                )
        (slow, t_slow), (fast, t_fast) = ((label, statistics.median(v)) for label, v in timing.items())
        print(
            f"speed, timed alternately ({args.timing_rounds} rounds of {args.timing_num} images, median): "
            f"{slow} {t_slow:.2f} s, {fast} {t_fast:.2f} s: {t_slow / t_fast:.1f}x faster "
            f"(goal 40x: {'met' if t_slow >= 40 * t_fast else 'not met'})"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "source": source,
                    "num": args.num,
                    "seeds": seeds,
                    "device": jax.devices()[0].device_kind,
                    "rows": {"/".join(map(str, k)) if isinstance(k, tuple) else k: v for k, v in results.items()},
                    "summary": {"/".join(map(str, k)) if isinstance(k, tuple) else k: v for k, v in summary.items()},
                    "timing": timing,
                    "timing_num": args.timing_num,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
