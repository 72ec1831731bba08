"""`eval` (bits/dim + the digits quality table) and `sample --sampler ddim` on a tiny smoke run, in-process."""

import re

import numpy as np
import pytest

from nanoddpm_utils import checkpoint
from nanoddpm_utils.__main__ import main
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.train import fit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A smoke run trained for 5 steps (what `train --preset smoke --steps 5` writes, without its sample grid)."""
    config = get_preset("smoke")
    state, _ = fit(config, load_digits("train"), steps=5, progress=False)
    run = tmp_path_factory.mktemp("run")
    checkpoint.save(run, state, config)
    return run


def test_eval_prints_bits_per_dim_and_quality(run_dir, capsys):
    assert (
        main(
            [
                "eval",
                "--run",
                str(run_dir),
                "--bpd-examples",
                "12",
                "--batch-size",
                "8",
                "--num-samples",
                "80",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "bits/dim on 12 digits test images (T = 50" in out
    numbers = {
        name: float(re.search(rf"{re.escape(name)}\s+(-?[\d.]+)", out).group(1))
        for name in ("total (NLL bound)", "prior L_T", "L_1 + ... + L_{T-1}", "decoder L_0")
    }
    assert all(np.isfinite(v) and v >= 0 for v in numbers.values())
    parts = numbers["prior L_T"] + numbers["L_1 + ... + L_{T-1}"] + numbers["decoder L_0"]
    assert abs(numbers["total (NLL bound)"] - parts) < 2e-3
    assert "sample quality of 80 samples" in out
    for row in ("samples", "real (held out)", "noise", "confidence", "frechet"):
        assert row in out


def test_eval_can_skip_both_parts(run_dir, capsys):
    assert main(["eval", "--run", str(run_dir), "--bpd-examples", "0", "--num-samples", "0"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("eta", ["0", "1"])
def test_sample_with_ddim(run_dir, tmp_path, capsys, eta):
    out = tmp_path / "s.npz"
    assert (
        main(
            [
                "sample",
                "--run",
                str(run_dir),
                "--num",
                "3",
                "--out",
                str(out),
                "--sampler",
                "ddim",
                "--steps",
                "5",
                "--eta",
                eta,
            ]
        )
        == 0
    )
    samples = np.load(out)["samples"]
    assert samples.shape == (3, 8, 8, 1) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    assert out.with_suffix(".png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--run", "{run}", "--out", "{tmp}/s.npz", "--steps", "5"], "needs sampler='ddim'"),
        (
            ["sample", "--run", "{run}", "--out", "{tmp}/s.npz", "--sampler", "ddim", "--steps", "51"],
            "T = 50 diffusion steps; use 1 .. 50",
        ),
        (["eval", "--run", "{tmp}/nope"], "not a run directory"),
    ],
)
def test_user_errors_are_one_line_exit_2(run_dir, tmp_path, capsys, argv, message):
    argv = [a.format(run=run_dir, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--run", "r", "--out", "s.npz", "--eta", "2"], "must lie in [0, 1]"),
        (["sample", "--run", "r", "--out", "s.npz", "--sampler", "plms"], "invalid choice"),
        (["sample", "--run", "r", "--out", "s.npz", "--steps", "0"], "must be >= 1"),
        (["eval", "--run", "r", "--bpd-examples", "-1"], "must be >= 0"),
    ],
)
def test_bad_flag_values_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_help_explains_every_flag(capsys):
    for command, flags in [
        ("eval", ("--run", "--num-samples", "--batch-size", "--seed", "--bpd-examples")),
        ("sample", ("--sampler", "--steps", "--eta")),
    ]:
        with pytest.raises(SystemExit) as e:
            main([command, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        for flag in flags:
            assert flag in text
