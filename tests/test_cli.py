"""The command line end to end with the smoke preset, and its one-line errors (exit code 2; every bad input of
issue 7 is in test_cli_errors.py)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nanoddpm_utils.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=600):
    # the compilation cache that conftest.py gives in-process tests: later runs reuse what earlier ones compiled
    env = dict(
        os.environ,
        WANDB_MODE="disabled",
        PYTHONPATH=str(ROOT),
        JAX_COMPILATION_CACHE_DIR=str(ROOT / ".pytest_cache" / "jax"),
    )
    return subprocess.run(
        [sys.executable, "-m", "nanoddpm_utils", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        cwd=ROOT,
    )


def test_train_then_sample_then_resume(tmp_path):
    run = tmp_path / "run"
    r = run_cli("train", "--preset", "smoke", "--out", str(run), "--steps", "10", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (run / "config.json").exists() and (run / "metrics.jsonl").exists()
    assert sorted(p.name for p in (run / "checkpoints").glob("*.eqx")) == ["step_00000010.eqx"]
    assert (run / "samples" / "step_00000010.png").exists()

    out = tmp_path / "s.npz"
    r = run_cli("sample", "--run", str(run), "--num", "6", "--out", str(out), "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "sampling 6 image(s) with ddpm: 50 network evaluations each" in r.stdout  # what the wait is for
    samples = np.load(out)["samples"]
    assert samples.shape == (6, 8, 8, 1) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    assert Image.open(out.with_suffix(".png")).size[0] >= 8

    # --resume reads the run's own config (no --preset); --set changes a field after it
    r = run_cli("train", "--out", str(run), "--steps", "15", "--resume", "--set", "train.lr=5e-4", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and (run / "checkpoints" / "step_00000015.eqx").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["name"] == "smoke" and config["train"]["lr"] == 5e-4 and config["train"]["steps"] == 15


def test_help_explains_every_flag():
    r = run_cli("train", "--help")
    for flag in ("--preset", "--out", "--data", "--steps", "--batch-size", "--seed", "--resume"):
        assert flag in r.stdout
    r = run_cli("sample", "--help")
    for flag in ("--run", "--num", "--out", "--seed"):
        assert flag in r.stdout


def test_help_imports_no_jax():
    """--help answers before jax (or numpy, or wandb) is imported: parsing needs none of them."""
    for args in (["--help"], ["train", "--help"]):
        start = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "nanoddpm_utils", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            timeout=60,
        )
        seconds = time.perf_counter() - start
        assert r.returncode == 0 and "usage:" in r.stdout, r.stderr
        imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
        assert "nanoddpm_utils" in imported and not imported & {"jax", "jaxlib", "numpy", "wandb"}, imported
        print(f"python -m nanoddpm_utils {' '.join(args)}: {seconds:.2f} s (with -X importtime)")


def test_a_broken_jax_is_one_line(tmp_path):
    """jax that fails to import (a jaxlib of another version, a missing shared library): one line, exit 1."""
    (tmp_path / "jax").mkdir()
    (tmp_path / "jax" / "__init__.py").write_text("raise ImportError('libjaxlib.so: cannot open shared object file')")
    r = subprocess.run(
        [sys.executable, "-m", "nanoddpm_utils", "train", "--preset", "smoke", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}"),
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == (
        "error: cannot import jax (ImportError: libjaxlib.so: cannot open shared object "
        "file); reinstall jax: pip install -U jax"
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--preset", "smoke", "--out", "{tmp}/r", "--data", "{tmp}/nothing-here"], "nor an existing folder"),
        (["train", "--preset", "smoke", "--out", "{tmp}/r", "--resume"], "not a run directory"),
        (["sample", "--run", "{tmp}/nope", "--out", "{tmp}/s.npz"], "not a run directory"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err and "Traceback" not in err
