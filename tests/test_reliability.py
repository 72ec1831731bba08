"""A killed run resumes with nothing lost; a diverged run keeps its last good checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils import checkpoint
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.train import DivergenceError, fit

ROOT = Path(__file__).resolve().parents[1]
CONFIG = get_preset("smoke").replace(
    train={"steps": 10, "log_every": 5, "steps_per_call": 5, "ckpt_every": 5, "sample_every": 1000}
)


def leaves(state):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array))]


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    state, _ = fit(CONFIG, data, steps=5, run_dir=tmp_path, progress=False)
    good = leaves(checkpoint.restore(tmp_path)[0])
    poisoned = eqx.tree_at(lambda s: s.model.conv_in.weight, state, state.model.conv_in.weight * jnp.nan)
    with pytest.raises(DivergenceError, match="diverged at step 6"):
        fit(CONFIG, data, state=poisoned, run_dir=tmp_path, progress=False)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_00000005.eqx"]
    restored, _ = checkpoint.restore(tmp_path)
    for a, b in zip(good, leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)


def _train(out, steps, *extra):
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nanoddpm_utils",
            "train",
            "--preset",
            "smoke",
            "--out",
            str(out),
            "--steps",
            str(steps),
            "--ckpt-every",
            "5",
            "--no-progress",
            *extra,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def test_sigkill_then_resume_is_bitwise_identical(tmp_path):
    steps = 60
    straight = _train(tmp_path / "straight", steps)
    killed = _train(tmp_path / "killed", steps)
    deadline = time.monotonic() + 600
    while not (tmp_path / "killed" / "checkpoints" / "step_00000010.json").exists():
        assert killed.poll() is None, killed.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert straight.wait(timeout=600) == 0, straight.communicate()[1].decode()[-2000:]
    done = [p.name for p in checkpoint.list_checkpoints(tmp_path / "killed")]
    assert "step_00000060.eqx" not in done  # it really was killed mid-run
    resumed = _train(tmp_path / "killed", steps, "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.communicate()[1].decode()[-2000:]
    a, _ = checkpoint.restore(tmp_path / "straight")
    b, _ = checkpoint.restore(tmp_path / "killed")
    assert int(a.step) == int(b.step) == steps
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_credentials_never_reach_the_run_dir_or_the_output(tmp_path):
    """Train and sample with recognisable fake W&B and Kaggle secrets set; W&B runs offline (it writes files)."""
    secrets = {
        "WANDB_API_KEY": "wandbFAKEkey" + "0" * 28,
        "KAGGLE_KEY": "kaggleFAKEkey0123456789abcdef",
        "KAGGLE_API_TOKEN": "KGAT_kaggleFAKEtoken0123456789",
    }
    env = dict(
        os.environ,
        **secrets,
        WANDB_MODE="offline",
        KAGGLE_USERNAME="someone",
        HOME=str(tmp_path / "home"),
        PYTHONPATH=str(ROOT),
        JAX_COMPILATION_CACHE_DIR=str(ROOT / ".pytest_cache" / "jax"),
    )
    run, out = tmp_path / "run", []
    for argv in (
        ["train", "--preset", "smoke", "--out", str(run), "--steps", "10", "--no-progress"],
        ["sample", "--run", str(run), "--num", "4", "--out", str(run / "s.npz")],
    ):
        r = subprocess.run(
            [sys.executable, "-m", "nanoddpm_utils", *argv],
            capture_output=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=600,
            cwd=ROOT,
        )
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        out += [r.stdout, r.stderr]
    files = [p for p in run.rglob("*") if p.is_file()]
    assert (run / "wandb").is_dir() and (run / "checkpoints").is_dir() and len(files) > 5
    for name, value in secrets.items():
        assert not any(value.encode() in text for text in out), f"{name} was printed"
        leaked = [str(p) for p in files if value.encode() in p.read_bytes()]
        assert not leaked, f"{name} was written to {leaked}"
