"""Classifier-free guidance on the digits: accuracy on the requested class and per-class Frechet distance
against the guidance scale w (issue 17's goals).

    python bench/guidance.py                         # the shipped digits_cond model, w = 0 1 2 3 5
    python bench/guidance.py --run runs/digits_cond --ws 1,3 --per-class 100 --sampler ddpm

For each w it draws ``--per-class`` samples of each digit and scores them with evaluate.py's judges
(evaluate.class_scores): accuracy = share judged as the requested digit (mean over the ten), Frechet = distance
to the real digits of that class in each judge's features, next to the same for real held-out digits of that
class (the floor; ratio = sample / real, per class, then the mean and the worst over the ten). Seconds: sampling
time for the row (compiled once before the first row, not counted).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nanoddpm_utils.evaluate import class_scores  # noqa: E402
from nanoddpm_utils.guidance import sample_guided  # noqa: E402
from nanoddpm_utils.images import to_uint8  # noqa: E402


def load_model(run: str | None):
    if run is None:
        from nanoddpm_utils import pretrained

        return pretrained.load("digits_cond")
    from nanoddpm_utils import checkpoint

    state, config = checkpoint.restore(run)
    return config, state.ema


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="a run folder (default: the shipped digits_cond model)")
    p.add_argument("--ws", default="0,1,2,3,5", help="guidance scales, comma separated")
    p.add_argument("--per-class", type=int, default=100, help="samples per digit and w (default 100)")
    p.add_argument("--sampler", default="ddim", choices=("ddpm", "ddim"))
    p.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    config, model = load_model(args.run)
    k = config.model.num_classes
    labels = np.repeat(np.arange(k), args.per_class)
    sampler = {"sampler": args.sampler} | ({"steps": args.steps} if args.sampler == "ddim" else {})
    ws = [float(w) for w in args.ws.split(",")]
    key = jax.random.key(args.seed)
    jax.block_until_ready(sample_guided(config, model, key, labels, ws[0], **sampler))  # compile once
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    print(
        f"{config.name}: {args.per_class} samples per digit, {args.sampler}"
        f"{' ' + str(args.steps) + ' steps' if args.sampler == 'ddim' else ''}, seed {args.seed}, "
        f"{jax.default_backend()} ({cpu})"
    )
    print(
        f"{'w':>5} {'accuracy':>9} {'worst cls':>9} {'frechet':>8} {'real':>7} {'ratio':>6} {'worst':>6} {'seconds':>8}"
    )
    rows = []
    for w in ws:
        start = time.perf_counter()
        images = jax.block_until_ready(sample_guided(config, model, key, labels, w, **sampler))
        seconds = time.perf_counter() - start
        s = class_scores(to_uint8(images), labels)
        ratio = s["frechet"] / s["frechet_real"]
        rows.append((w, s))
        print(
            f"{w:5.1f} {s['accuracy'].mean():9.3f} {s['accuracy'].min():9.3f} {s['frechet'].mean():8.2f} "
            f"{s['frechet_real'].mean():7.2f} {ratio.mean():6.2f} {ratio.max():6.2f} {seconds:8.1f}"
        )
    best_w, best = max(rows, key=lambda r: r[1]["accuracy"].mean())
    print(f"per class at the most accurate w = {best_w}: accuracy, frechet / real")
    for c, a, f, r in zip(best["classes"], best["accuracy"], best["frechet"], best["frechet_real"]):
        print(f"  {c}: {a:.3f}  {f:.2f} / {r:.2f} = {f / r:.2f}")


if __name__ == "__main__":
    main()
