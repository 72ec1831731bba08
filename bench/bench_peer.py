"""The PyTorch peer: diffusers' UNet2DModel in our preset's architecture, timed as bench_presets times ours.

    python bench/bench_peer.py --presets digits,nano_cifar10 --batch-sizes 64 --steps 5

The model is built with random weights from our ``ModelConfig`` (``diffusers_kwargs``) and
has the same parameter count (printed). A train step does the work ours does: draw a batch
from uint8 data, q_sample with random t, forward, MSE on eps, backward, clip the gradient
norm, Adam, EMA. Sampling runs ``DDPMScheduler``'s loop (``set_timesteps(T)``) under
``torch.no_grad()`` for --num-images images; --sample-steps of the T steps are timed after
one warm-up step and the T-step time is extrapolated (labelled) when fewer than T ran.

Threads: after the warm-up, steps are timed alternately with as many threads as this process
may use cores and with a single thread (3 each); the count with the lower median is kept for
the timing (the probe times are in the JSON). Why: on a machine shared with other jobs,
OpenMP's barriers make 2 threads up to 10x slower than 1 on small convolutions
(measured here: a 45k-parameter UNet step took 0.3-1.5 s on 2 threads, 30 ms on 1), so the
cores-only number would flatter us. Needs ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
from bench_presets import NUM_IMAGES, add_common_args, median_time, num_params, plan, print_sample_table, random_images
from diffusers import DDPMScheduler, UNet2DModel

from nanoddpm_utils.config import Config, ModelConfig, get_preset

NUM_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
THREADS = tuple(sorted({NUM_CORES, 1}, reverse=True))  # the thread counts tried; the fastest is reported


def diffusers_kwargs(m: ModelConfig) -> dict:
    """UNet2DModel's arguments for the same network as ours (the same parameter count, layer for layer).

    Levels are diffusers' blocks: one per ch_mult entry, "Attn" where the level's resolution
    is in attn_resolutions; up blocks run from the lowest resolution back up. Single-head
    attention (head dim = the block's width), sin-then-cos timestep embedding with the
    official code's frequencies (freq_shift=1), TF-style "SAME" stride-2 padding, GroupNorm eps 1e-6.
    """
    attn = [r in m.attn_resolutions for r in m.resolutions]
    return dict(
        sample_size=m.image_size,
        in_channels=m.in_channels,
        out_channels=m.in_channels,
        block_out_channels=tuple(m.ch * k for k in m.ch_mult),
        layers_per_block=m.num_res_blocks,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
        dropout=m.dropout,
        norm_num_groups=m.num_groups,
        norm_eps=1e-6,
        attention_head_dim=None,
        flip_sin_to_cos=False,
        freq_shift=1,
        downsample_padding=0,
    )


def build_peer(m: ModelConfig, seed: int = 0) -> UNet2DModel:
    torch.manual_seed(seed)
    return UNet2DModel(**diffusers_kwargs(m))


def count_torch_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pick_threads(probe, threads=THREADS, rounds: int = 3) -> dict:
    """Time ``probe()`` under each torch thread count, interleaved, ``rounds`` times; set the count with the
    lowest median and return it with the probe medians."""
    times = {n: [] for n in threads}
    for _ in range(rounds):
        for n in threads:
            torch.set_num_threads(n)
            t0 = time.perf_counter()
            probe()
            times[n].append(time.perf_counter() - t0)
    medians = {n: statistics.median(ts) for n, ts in times.items()}
    best = min(medians, key=medians.get)
    torch.set_num_threads(best)
    return {"threads": best, "probe_s_by_threads": {str(n): s for n, s in medians.items()}}


def bench_peer_train(config: Config, batch_size: int, steps: int, repeats: int, threads=THREADS) -> dict:
    """Time ``steps`` train steps (median of ``repeats``) after a warm-up step and a thread-count probe."""
    tc, T = config.train, config.diffusion.num_timesteps
    model = build_peer(config.model).train()
    ema = [p.detach().clone() for p in model.parameters()]
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=tc.lr)
    scheduler = DDPMScheduler(num_train_timesteps=T)
    data = torch.from_numpy(random_images(config)).permute(0, 3, 1, 2).contiguous()  # NCHW uint8
    gen = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=gen)
        x0 = data[idx].float() / 127.5 - 1.0
        t = torch.randint(0, T, (batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        eps = model(scheduler.add_noise(x0, noise, t), t).sample
        loss = F.mse_loss(eps, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, params, 1.0 - tc.ema_decay)

    torch.set_num_threads(max(threads))
    step()  # warm-up
    chosen = pick_threads(step, threads)
    per_step = median_time(lambda: [step() for _ in range(steps)], repeats) / steps
    return {
        "batch_size": batch_size,
        "steps": steps,
        "repeats": repeats,
        **chosen,
        "ms_per_step": per_step * 1e3,
        "images_per_s": batch_size / per_step,
        "params": count_torch_params(model),
    }


def bench_peer_sample(
    config: Config, num_images: int = NUM_IMAGES, sample_steps: int | None = None, threads=THREADS
) -> dict:
    """Time ``sample_steps`` of DDPMScheduler's T-step loop (after a warm-up step and a thread-count
    probe), extrapolated to T when fewer ran."""
    m, T = config.model, config.diffusion.num_timesteps
    n = min(sample_steps or T, T)
    model = build_peer(m).eval()
    # sigma_t^2 = beta_t and x_0 clipping, as our fixedlarge default (they cost the same as the other choices)
    scheduler = DDPMScheduler(num_train_timesteps=T, variance_type="fixed_large", clip_sample=True)
    scheduler.set_timesteps(T)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((num_images, m.in_channels, m.image_size, m.image_size), generator=gen)
    with torch.no_grad():

        def reverse_step(x, t):
            return scheduler.step(model(x, t).sample, t, x, generator=gen).prev_sample

        torch.set_num_threads(max(threads))
        reverse_step(x, scheduler.timesteps[0])  # warm-up, result discarded
        chosen = pick_threads(lambda: reverse_step(x, scheduler.timesteps[0]), threads)
        t0 = time.perf_counter()
        for t in scheduler.timesteps[:n]:
            x = reverse_step(x, t)
        seconds = time.perf_counter() - t0
    return {
        "num_images": num_images,
        "sample_steps": n,
        "seconds": seconds,
        "s_per_step": seconds / n,
        "full_T": T,
        "full_seconds": seconds / n * T,
        "extrapolated": n != T,
        **chosen,
    }


def bench_peer_preset(
    preset: str | Config,
    batch_size: int,
    *,
    steps: int,
    repeats: int,
    sample_steps: int | None,
    num_images: int = NUM_IMAGES,
    sample: bool = True,
    threads=THREADS,
) -> dict:
    config = get_preset(preset) if isinstance(preset, str) else preset
    out = {"preset": config.name, **bench_peer_train(config, batch_size, steps, repeats, threads)}
    if sample:
        out["sample"] = bench_peer_sample(config, num_images, sample_steps, threads)
    return out


PEER_TRAIN_HEADER = (
    f"{'preset':14s}{'batch':>6s}{'params ours':>13s}{'params peer':>13s}{'threads':>8s}{'ms/step':>11s}{'img/s':>10s}"
)


def format_peer_train(r: dict, ours_params: int) -> str:
    return (
        f"{r['preset']:14s}{r['batch_size']:>6d}{ours_params:>13,d}{r['params']:>13,d}{r['threads']:>8d}"
        f"{r['ms_per_step']:>11.0f}{r['images_per_s']:>10.1f}"
    )


def versions() -> dict:
    import diffusers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument(
        "--threads",
        default=",".join(map(str, THREADS)),
        help="torch thread counts to try, comma-separated; the fastest is reported",
    )
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()

    threads = tuple(int(n) for n in args.threads.split(","))
    print(f"torch {torch.__version__} (threads tried: {threads}); diffusers {versions()['diffusers']}", flush=True)
    results = [bench_peer_preset(preset, bs, threads=threads, **opts) for preset, bs, opts in plan(args)]
    print("\ntraining step (batch, q_sample, forward, MSE, backward, clip, Adam, EMA)\n" + PEER_TRAIN_HEADER)
    for r in results:
        print(format_peer_train(r, num_params(get_preset(r["preset"]))))
    print_sample_table("DDPM sampling (DDPMScheduler loop)", results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versions": versions(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
