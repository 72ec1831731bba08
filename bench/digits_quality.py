"""Sample quality and sampling time of a trained digits run, per sampler, judged by a classifier trained on
real digits.

    python bench/digits_quality.py --run runs/digits --num 360 --samplers ddpm,ddim:50 --seeds 0,1,2
    python bench/digits_quality.py --pretrained digits --samplers ddpm,ddim:50 --seeds 0,1,2,3   # the shipped model

Each sampler draws --num samples per seed. Sampling is compiled ahead of time (compile seconds are
printed apart) and then timed alone. The table gives evaluate.digits_quality_table's figures, as the
mean over seeds (the Frechet distance also with its spread), beside real digits the judges never saw
(the floor: as many as the samples, up to 360, drawn at random as samples are) and noise (the ceiling).
Goals checked when their samplers ran:
  DDPM (issue 3): confidence within 0.05 of real, all ten classes, Frechet distance <= 1.25x real-vs-real;
  DDIM-50 (issue 6): Frechet distance within 10% of DDPM's, at 20x less sampling time.
"""

import argparse
import json
import statistics
import time

import equinox as eqx
import jax

from nanoddpm_utils import checkpoint, pretrained
from nanoddpm_utils.data import to_uint8
from nanoddpm_utils.evaluate import TABLE_COLUMNS, digits_quality_table
from nanoddpm_utils.sample import sampling_loop

COLUMNS = list(TABLE_COLUMNS)  # the columns of evaluate.format_table


def parse_sampler(spec: str, T: int) -> tuple[str, int]:
    """'ddpm' -> ('ddpm', T); 'ddim:50' -> ('ddim', 50)."""
    name, _, steps = spec.partition(":")
    if name == "ddpm" and not steps:
        return "ddpm", T
    if name == "ddim" and steps.isdigit() and 1 <= int(steps) <= T:
        return "ddim", int(steps)
    raise SystemExit(f"error: bad sampler {spec!r}; write ddpm or ddim:STEPS with 1 <= STEPS <= {T}")


def draw(config, model, sampler: str, steps: int, key, num: int) -> tuple[jax.Array, float, float]:
    """(images in [-1, 1], compile seconds, sampling seconds) for one sampler."""
    fn, schedule, shape, kwargs = sampling_loop(config, num, sampler=sampler, steps=steps)  # as sample_images
    model = eqx.nn.inference_mode(model)
    t0 = time.perf_counter()
    compiled = fn.lower(model, schedule, key, shape, **kwargs).compile()
    t1 = time.perf_counter()
    images = jax.block_until_ready(compiled(model, schedule, key, shape, **kwargs))
    return images, t1 - t0, time.perf_counter() - t1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run directory of a digits run (its EMA weights)")
    src.add_argument("--pretrained", help="a shipped model, e.g. digits (nanoddpm_utils.pretrained)")
    p.add_argument("--num", type=int, default=360, help="samples per sampler and seed (default 360, the test split)")
    p.add_argument("--samplers", default="ddpm", help="comma-separated: ddpm, ddim:STEPS (default ddpm)")
    p.add_argument("--seeds", default="0", help="comma-separated sampling seeds (default 0)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args()

    if args.run:
        state, config = checkpoint.restore(args.run)
        ema, step, source = state.ema, int(state.step), f"run {args.run}"
    else:
        config, ema = pretrained.load(args.pretrained)
        step, source = config.train.steps, f"shipped model {args.pretrained!r}"
    T = config.diffusion.num_timesteps
    samplers = [parse_sampler(s, T) for s in args.samplers.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{source}: step {step}, {args.num} samples per seed, seeds {seeds}, T = {T}, "
          f"on {jax.devices()[0].device_kind} (jax {jax.__version__})")
    rows, reference = {}, None
    for sampler, steps in samplers:
        label = f"{sampler.upper()}-{steps}"
        runs = []
        for seed in seeds:
            images, compile_s, sample_s = draw(config, ema, sampler, steps, jax.random.key(seed), args.num)
            table = digits_quality_table(to_uint8(images), seed=seed)
            reference = {k: v for k, v in table.items() if k != "samples"}
            runs.append({**table["samples"], "compile_s": compile_s, "sample_s": sample_s})
            print(f"  {label:9s} seed {seed}: compile {compile_s:5.1f} s, sampling {sample_s:7.1f} s, "
                  f"Frechet {table['samples']['frechet']:.3f}")
        row = {c: statistics.mean(r[c] for r in runs) for c in COLUMNS + ["compile_s", "sample_s"]}
        row["frechet_sd"] = statistics.stdev(r["frechet"] for r in runs) if len(runs) > 1 else 0.0
        row["classes_present"] = min(r["classes_present"] for r in runs)
        rows[label] = row

    print(f"\n{'':22s}{'sampling s':>11s}" + "".join(f"{c:>18s}" for c in COLUMNS))
    for name, row in rows.items():
        fd = f"{row['frechet']:.3f} +- {row['frechet_sd']:.3f}"
        print(f"{name:22s}{row['sample_s']:11.1f}" + "".join(f"{row[c]:18.3f}" for c in COLUMNS[:2])
              + f"{row['classes_present']:18d}{row['min_class_share']:18.3f}{fd:>18s}")
    for name, row in reference.items():
        print(f"{name:22s}{'':11s}" + "".join(f"{row[c]:18.3f}" if isinstance(row[c], float) else f"{row[c]:18d}"
                                           for c in COLUMNS))

    goals, real = {}, reference["real (held out)"]
    ddpm = rows.get(f"DDPM-{T}")
    if ddpm:
        goals["DDPM: confidence within 0.05 of real"] = ddpm["confidence"] >= real["confidence"] - 0.05
        goals["DDPM: all ten classes present"] = ddpm["classes_present"] == 10
        goals["DDPM: Frechet <= 1.25x real"] = ddpm["frechet"] <= 1.25 * real["frechet"]
    ddim = rows.get("DDIM-50")
    if ddpm and ddim:
        goals["DDIM-50: Frechet within 10% of DDPM's"] = ddim["frechet"] <= 1.10 * ddpm["frechet"]
        goals["DDIM-50: 20x less sampling time"] = ddpm["sample_s"] >= 20 * ddim["sample_s"]
        print(f"\nDDIM-50 vs DDPM-{T}: Frechet {ddim['frechet']:.3f} vs {ddpm['frechet']:.3f} "
              f"({ddim['frechet'] / ddpm['frechet']:.2f}x), time {ddim['sample_s']:.1f} s vs {ddpm['sample_s']:.1f} s "
              f"({ddpm['sample_s'] / ddim['sample_s']:.1f}x faster)")
    for goal, ok in goals.items():
        print(f"  [{'x' if ok else ' '}] {goal}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "reference": reference, "goals": goals, "step": step,
                       "num": args.num, "seeds": seeds}, f, indent=2)
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
