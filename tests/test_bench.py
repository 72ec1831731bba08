"""The benchmarks (bench/) import, answer --help, and return positive, finite numbers on the smoke preset.

The PyTorch peer is tested only where torch and diffusers are installed (``.[bench]``; CI's ``make test`` has neither).
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import bench_presets  # noqa: E402
import run_all  # noqa: E402

from nanoddpm_utils.config import get_preset  # noqa: E402


def assert_positive_finite(d: dict, keys) -> None:
    for k in keys:
        assert isinstance(d[k], (int, float)) and math.isfinite(d[k]) and d[k] > 0, (k, d[k])


@pytest.fixture(scope="module")
def smoke_result():
    # 2 train steps of batch 4, then sampling 2 images with T = 3 (extrapolated to the preset's T = 50)
    return bench_presets.bench_preset("smoke", 4, steps=2, repeats=1, sample_steps=3, num_images=2, peak_flops=1e9)


def test_bench_preset_numbers(smoke_result):
    r = smoke_result
    assert r["preset"] == "smoke" and r["batch_size"] == 4
    assert_positive_finite(
        r, ["params", "compile_s", "ms_per_step", "images_per_s", "flops_per_step", "flops_per_s", "fraction_of_peak"]
    )
    assert r["images_per_s"] == pytest.approx(4 / (r["ms_per_step"] / 1e3))
    s = r["sample"]
    assert_positive_finite(s, ["seconds", "s_per_step", "full_seconds"])
    assert (s["sample_steps"], s["full_T"], s["extrapolated"]) == (3, 50, True)
    assert s["full_seconds"] == pytest.approx(s["s_per_step"] * 50)


def test_matmul_peak_and_tables(smoke_result, capsys):
    assert_positive_finite({"peak": bench_presets.matmul_flops_per_s(n=256, repeats=2)}, ["peak"])
    row = {"preset": "smoke", "batch_size": 4, "ours": smoke_result}
    run_all.print_tables([row], peak=1e9)  # no peer: its columns show "-"
    out = capsys.readouterr().out
    assert "smoke" in out and "extrapolated" in out


@pytest.mark.parametrize(
    "script", ["bench_presets.py", "run_all.py", "bench_peer.py", "sampler_curve.py", "beyond_ddpm.py"]
)
def test_scripts_answer_help(script):
    if script == "bench_peer.py":
        pytest.importorskip("torch")
        pytest.importorskip("diffusers")
    done = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout


def test_peer_matches_our_architecture_and_times():
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    import bench_peer

    cfg = get_preset("smoke")
    for name in ("smoke", "digits", "nano_cifar10", "paper_cifar10"):
        m = get_preset(name).model
        assert bench_peer.count_torch_params(bench_peer.build_peer(m)) == bench_presets.num_params(get_preset(name))
    t = bench_peer.bench_peer_train(cfg, 4, steps=1, repeats=1)
    assert_positive_finite(t, ["ms_per_step", "images_per_s", "params", "threads"])
    s = bench_peer.bench_peer_sample(cfg, num_images=2, sample_steps=2)
    assert_positive_finite(s, ["seconds", "s_per_step", "full_seconds"])
    assert (s["sample_steps"], s["extrapolated"]) == (2, True)
