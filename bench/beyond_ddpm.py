"""After DDPM (notebook 10): quality against network evaluations for the shipped digits models, on both judges.

    python bench/beyond_ddpm.py --seeds 0,1,2 --num 360 --json build/beyond_ddpm.json

Rows: the DDPM model (``digits``) with DDPM over all T steps (the reference), DPM-Solver++(2M), DDIM with eta 0.5,
EDM's Heun sampler deterministic and with churn; the flow-matching model (``digits_fm``) with Euler and Heun. Every
row draws ``--num`` digits per seed from the seed's noise; quality is ``evaluate.digits_quality_table`` (the 8 MLP
judges' Frechet distance, confidence, precision and recall; the pixel judge's Frechet distance), mean and standard
deviation over seeds. Checked at the end, as issue 24 states them:
- the flow model meets the digits goals (confidence within 0.05 of real held-out digits, ten classes in every seed,
  MLP Frechet at most 1.25x real) at 20 network evaluations or fewer;
- EDM's Heun sampler on the DDPM model at 35 evaluations or fewer within 10% of DDPM-T's Frechet, both judges;
- a sampler at 50 evaluations or fewer with precision and confidence within 0.02 of DDPM-T's.
"""

import argparse
import json
import statistics
import time

import jax

from nanoddpm_utils import pretrained
from nanoddpm_utils.evaluate import digits_quality_table
from nanoddpm_utils.images import to_uint8
from nanoddpm_utils.sample import network_evaluations, sample_images

FIGURES = ("frechet", "pixel_frechet", "confidence", "precision", "recall")
ROWS = [  # (model, label, sampler options)
    ("digits", "DDPM-1000", {}),
    ("digits", "DPM-Solver++(2M)-10", {"sampler": "dpm++2m", "steps": 10}),
    ("digits", "DPM-Solver++(2M)-20", {"sampler": "dpm++2m", "steps": 20}),
    ("digits", "DPM-Solver++(2M)-35", {"sampler": "dpm++2m", "steps": 35}),
    ("digits", "DDIM-50 eta 0.5", {"sampler": "ddim", "steps": 50, "eta": 0.5}),
    ("digits", "EDM Heun-10", {"sampler": "edm", "steps": 10}),
    ("digits", "EDM Heun-18", {"sampler": "edm", "steps": 18}),
    ("digits", "EDM churn 10, 25 steps", {"sampler": "edm", "steps": 25, "churn": 10.0}),
    ("digits", "EDM churn 20, 25 steps", {"sampler": "edm", "steps": 25, "churn": 20.0}),
    ("digits", "EDM churn 40, 25 steps", {"sampler": "edm", "steps": 25, "churn": 40.0}),
    ("digits_fm", "flow Euler-10", {"sampler": "euler", "steps": 10}),
    ("digits_fm", "flow Euler-20", {"sampler": "euler", "steps": 20}),
    ("digits_fm", "flow Heun-5", {"sampler": "heun", "steps": 5}),
    ("digits_fm", "flow Heun-10", {"sampler": "heun", "steps": 10}),
    ("digits_fm", "flow Euler-100", {"sampler": "euler", "steps": 100}),
]


def mean_sd(rows, f):
    values = [r[f] for r in rows]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=360, help="samples per row and seed (default 360)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated sampling seeds (default 0,1,2)")
    p.add_argument(
        "--only",
        help="comma-separated row labels to run (default: all); without DDPM-1000 among them, "
        "the comparisons with it are left out",
    )
    p.add_argument("--json", help="also write every figure to this JSON file")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = None if not args.only else set(args.only.split(","))
    models = {name: pretrained.load(name) for name in ("digits", "digits_fm")}
    print(f"{args.num} samples per row and seed, seeds {seeds}, on {jax.devices()[0].device_kind}", flush=True)
    results, real = {}, []
    for name, label, options in ROWS:
        if wanted and label not in wanted:
            continue
        config, model = models[name]
        rows = []
        for seed in seeds:
            t0 = time.perf_counter()
            images = jax.block_until_ready(sample_images(config, model, jax.random.key(seed), args.num, **options))
            table = digits_quality_table(to_uint8(images), seed=seed)
            rows.append(dict(table["samples"], seconds=time.perf_counter() - t0))
            if not real or len(real) < len(seeds):  # the floor: real held-out digits, seed by seed (the first row's)
                real.append(table["real (held out)"])
        nfe = network_evaluations(config, options.get("sampler"), options.get("steps"))
        results[label] = {"nfe": nfe, "rows": rows}
        cells = "  ".join(f"{f} {mean_sd(rows, f)[0]:.3f}+-{mean_sd(rows, f)[1]:.3f}" for f in FIGURES)
        print(f"{label:>24} NFE {nfe:>4}  {cells}", flush=True)
    floor = {f: statistics.fmean(r[f] for r in real) for f in FIGURES}
    print(f"{'real held-out (floor)':>24}           " + "  ".join(f"{f} {floor[f]:.3f}" for f in FIGURES))
    ref = {f: mean_sd(results["DDPM-1000"]["rows"], f)[0] for f in FIGURES} if "DDPM-1000" in results else None
    print("\nissue 24's goals (means over seeds):")
    for label, r in results.items():
        m = {f: mean_sd(r["rows"], f)[0] for f in FIGURES}
        classes = min(row["classes_present"] for row in r["rows"])
        goals = (
            m["confidence"] >= floor["confidence"] - 0.05 and classes == 10 and m["frechet"] <= 1.25 * floor["frechet"]
        )
        if ref is None:
            print(f"{label:>24} NFE {r['nfe']:>4}: digits goals {'met' if goals else 'no'} (no DDPM-1000 row here)")
            r["goals"] = {"digits": goals}
            continue
        within = all(m[f] <= 1.10 * ref[f] for f in ("frechet", "pixel_frechet"))
        fidelity = abs(m["precision"] - ref["precision"]) <= 0.02 and abs(m["confidence"] - ref["confidence"]) <= 0.02
        print(
            f"{label:>24} NFE {r['nfe']:>4}: digits goals {'met' if goals else 'no ':>3} | Frechet within 10% of "
            f"DDPM-1000 on both judges {'yes' if within else 'no ':>3} (MLP {m['frechet'] / ref['frechet']:.2f}x, "
            f"pixel {m['pixel_frechet'] / ref['pixel_frechet']:.2f}x) | precision and confidence within 0.02 "
            f"{'yes' if fidelity else 'no ':>3} ({m['precision'] - ref['precision']:+.3f}, "
            f"{m['confidence'] - ref['confidence']:+.3f})"
        )
        r["goals"] = {"digits": goals, "within_10pct": within, "fidelity": fidelity}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "real": real, "seeds": seeds, "num": args.num}, f, indent=1, default=float)


if __name__ == "__main__":
    main()
