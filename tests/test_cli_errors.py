"""Every bad input of issue 7 through the command line: one line on stderr that says what is wrong and what to
do, exit code 2, no traceback, and nothing the user made is changed.

Most cases call ``main`` in-process (fast); ``test_errors_in_a_real_process`` runs a few through
``python -m nanoddpm_utils`` to check what a terminal really shows.
"""

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import kagglehub
import numpy as np
import pytest
from kagglehub.exceptions import UnauthenticatedError
from PIL import Image

from nanoddpm_utils import checkpoint
from nanoddpm_utils.__main__ import main
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.state import init_state

ROOT = Path(__file__).resolve().parents[1]
SMOKE = get_preset("smoke")


def user_error(capsys, argv, *words):
    """Run the CLI on ``argv``; assert exit 2 and ONE stderr line holding every word; return that line."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    line = err.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in line, err
    for word in words:
        assert word in line, f"{word!r} not in: {line}"
    return line


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` and its SHA-256: what an error must leave as it was."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def save_png(file: Path, array) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8).squeeze()).save(file)


def write_batch(file: Path, batch) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(pickle.dumps(batch, protocol=3))


@pytest.fixture
def smoke_run(tmp_path):
    """A run directory as `train --preset smoke` leaves it (an untrained state: restoring is what is tested)."""
    run = tmp_path / "run"
    checkpoint.save(run, init_state(SMOKE, 0), SMOKE)
    return run


# --- data ------------------------------------------------------------------------------------------------


def test_data_path_missing_or_empty(tmp_path, capsys):
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "r", "--data", tmp_path / "nope"],
        "nope",
        "neither 'digits', 'cifar10' nor an existing folder",
        "check the path",
    )
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "r", "--data", tmp_path / "empty"],
        "no images found in",
        "put your images there",
    )
    assert (tmp_path / "empty" / "notes.txt").read_text() == "no images here"


def test_images_of_mixed_sizes(tmp_path, capsys):
    save_png(tmp_path / "imgs" / "a.png", np.zeros((8, 8)))
    save_png(tmp_path / "imgs" / "b.png", np.zeros((9, 8)))
    before = snapshot(tmp_path / "imgs")
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "r", "--data", tmp_path / "imgs"],
        "images have different sizes",
        "a.png is 8x8",
        "b.png is 8x9",
        "resize them all",
    )
    assert snapshot(tmp_path / "imgs") == before


def test_images_of_the_wrong_size_or_channel_count_for_the_preset(tmp_path, capsys):
    save_png(tmp_path / "big" / "a.png", np.zeros((16, 16)))
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "r", "--data", tmp_path / "big"],
        "16x16x1 (HxWxC) but the preset expects 8x8x1",
        "image_size=16",
        "or resize the images",
    )
    # CIFAR-10 is RGB: a 1-channel preset cannot take it (a folder of plain images is converted instead)
    rows = np.zeros((2, 3072), np.uint8)
    write_batch(tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_1", {b"data": rows, b"labels": [0, 1]})
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "r", "--data", tmp_path / "cifar"],
        "32x32x3 (HxWxC) but the preset expects 8x8x1",
        "in_channels=3",
    )


def test_a_corrupt_image_is_named(tmp_path, capsys):
    save_png(tmp_path / "imgs" / "good.png", np.zeros((8, 8)))
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not a png at all")
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "r", "--data", tmp_path / "imgs"],
        "cannot read image",
        str(tmp_path / "imgs" / "broken.png"),
        "delete or replace this file",
    )
    assert (tmp_path / "imgs" / "broken.png").read_bytes() == b"not a png at all"


@pytest.mark.parametrize(
    "batch, words",
    [
        (
            {b"pixels": np.zeros((2, 3072), np.uint8)},
            ["is not a genuine CIFAR-10 batch", "not b'data' and b'labels'", "b'pixels'"],
        ),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, ["(N, 3072)", "shape (2, 100)"]),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, ["a list of 3", "not a list of 2 ints"]),
        ({b"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1], 1: 2}, ["keys of type int, str"]),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [b"1", b"2"]}, ["b'labels' holds b'1'", "ints in 0..9"]),
    ],
)
def test_a_cifar_batch_with_wrong_keys_or_shape(tmp_path, capsys, batch, words):
    write_batch(tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_1", batch)
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "r", "--data", tmp_path / "cifar"],
        "data_batch_1",
        *words,
        "download the dataset again",
    )
    assert not (tmp_path / "r").exists()  # refused while loading the data: no run folder


def test_kagglehub_without_credentials(tmp_path, capsys, monkeypatch):
    key = "fake-kaggle-key-0123456789abcdef"
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kaggle/kaggle.json
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", key)

    def unauthenticated(handle, *args, **kwargs):  # what kagglehub raises, the key in it as a server might echo it
        raise UnauthenticatedError(f"401 Unauthorized: bad key {key} for {handle}")

    monkeypatch.setattr(kagglehub, "dataset_download", unauthenticated)
    line = user_error(
        capsys,
        ["train", "--preset", "nano_cifar10", "--out", tmp_path / "r", "--data", "cifar10"],
        "could not download CIFAR-10",
        "401 Unauthorized",
        "Secrets panel",
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "~/.kaggle/kaggle.json",
        "chmod 600",
    )
    assert key not in line and "***" in line


# --- flags ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--preset", "huge"], ["argument --preset: invalid choice: 'huge'", "choose from", "'smoke'"]),
        (["--steps", "-3"], ["argument --steps: must be >= 1, got -3"]),
        (["--steps", "0"], ["argument --steps: must be >= 1, got 0"]),
        (["--steps", "many"], ["argument --steps: 'many' is not a whole number"]),
        (["--batch-size", "0"], ["argument --batch-size: must be >= 1, got 0"]),
        (["--ckpt-every", "-1"], ["argument --ckpt-every: must be >= 1"]),
        (["--ckpt-minutes", "-1"], ["argument --ckpt-minutes: must be >= 0"]),
        (["--ckpt-minutes", "nan"], ["argument --ckpt-minutes: must be >= 0"]),
        (["--keep", "0"], ["argument --keep: must be >= 1"]),
    ],
)
def test_unknown_preset_and_out_of_range_flags(tmp_path, capsys, flags, words):
    user_error(capsys, ["train", "--out", tmp_path / "r", *flags], *words, "`python -m nanoddpm_utils train --help`")
    assert not (tmp_path / "r").exists()  # refused before anything was created


def test_out_of_range_flags_of_sample_and_eval(tmp_path, capsys):
    user_error(
        capsys, ["sample", "--run", tmp_path, "--out", tmp_path / "s.npz", "--num", "0"], "argument --num: must be >= 1"
    )
    user_error(
        capsys,
        ["sample", "--run", tmp_path, "--out", tmp_path / "s.npz", "--eta", "2"],
        "argument --eta: must lie in [0, 1]",
    )
    user_error(capsys, ["eval", "--run", tmp_path, "--batch-size", "-1"], "argument --batch-size: must be >= 1")
    user_error(
        capsys, ["eval", "--run", tmp_path, "--num-samples", "1"], "too few for a Frechet distance", "at least 2"
    )
    user_error(capsys, ["train"], "the following arguments are required: --out")


# --- checkpoints and run directories -------------------------------------------------------------------


def test_resume_a_run_of_another_preset(smoke_run, capsys):
    before = snapshot(smoke_run)
    user_error(
        capsys,
        ["train", "--preset", "digits", "--out", smoke_run, "--resume"],
        "holds a 'smoke' run, not 'digits'",
        "pass --preset smoke (or no --preset)",
    )
    user_error(
        capsys,
        ["train", "--preset", "digits", "--out", smoke_run],
        "already holds a run",
        "pass --resume",
        "choose another --out",
    )
    assert snapshot(smoke_run) == before


@pytest.mark.parametrize(
    "setting, words",
    [
        ("train.lrr=1", ["--set train.lrr is not a field", "train has steps, batch_size, lr"]),
        ("training.lr=1", ["not section.field=value", "model, diffusion, train"]),
        ("train.lr=fast", ["--set train.lr=fast", "takes a finite number"]),
        ("model.dropout=1.5", ["--set model.dropout=1.5", "dropout must lie in [0, 1)"]),
        ("diffusion.schedule=cubic", ["unknown schedule 'cubic'", "choose one of"]),
    ],
)
def test_a_bad_setting_is_refused_before_anything_is_created(tmp_path, capsys, setting, words):
    user_error(capsys, ["train", "--preset", "smoke", "--out", tmp_path / "r", "--set", setting], *words)
    assert not (tmp_path / "r").exists()


def test_resume_reads_the_runs_config_and_keeps_its_model(smoke_run, capsys):
    before = snapshot(smoke_run)
    user_error(
        capsys,
        ["train", "--out", smoke_run, "--resume", "--set", "model.ch=16"],
        "--set model.* would change the shape of the run being resumed",
        "another --out",
    )
    assert snapshot(smoke_run) == before


@pytest.mark.parametrize(
    "command, message",
    [
        ("train", "interrupted; the newest checkpoint is kept (resume with --resume)"),
        ("eval", "interrupted; nothing written (eval only prints)"),
    ],
)
def test_ctrl_c_says_what_is_kept(smoke_run, capsys, monkeypatch, command, message):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(f"nanoddpm_utils.cli.commands.{'fit' if command == 'train' else 'bits_per_dim'}", interrupt)
    argv = ["train", "--out", smoke_run, "--resume"] if command == "train" else ["eval", "--run", smoke_run]
    assert main([str(a) for a in argv]) == 130
    assert capsys.readouterr().err.strip() == message


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through any permission bits")
def test_a_folder_the_system_refuses_is_the_users_to_fix(smoke_run, capsys):
    """A folder of the user's that the system refuses mid-run (a read-only checkpoints/): exit 2, one line."""
    folder = smoke_run / "checkpoints"
    folder.chmod(0o500)
    try:
        user_error(
            capsys,
            ["train", "--out", smoke_run, "--resume", "--steps", "5", "--no-progress"],
            f"cannot write {folder}",
            "(Permission denied)",
            "choose another --out",
        )
    finally:
        folder.chmod(0o700)
    assert sorted(p.name for p in folder.iterdir()) == ["step_00000000.eqx", "step_00000000.json"]


def test_checkpoint_of_another_model_version(smoke_run, capsys):
    # another version of the model: the same config name, but the weights no longer fit its UNet
    config = json.loads((smoke_run / "config.json").read_text())
    config["model"]["ch"] = 16
    (smoke_run / "config.json").write_text(json.dumps(config))
    before = snapshot(smoke_run)
    for argv in (
        ["train", "--preset", "smoke", "--out", smoke_run, "--resume"],
        ["sample", "--run", smoke_run, "--out", smoke_run.parent / "s.npz"],
        ["eval", "--run", smoke_run],
    ):
        user_error(
            capsys,
            argv,
            "step_00000000.eqx does not fit the model of",
            "changed shape",
            "another config or another version of the model",
            "train afresh with another --out",
        )
    assert snapshot(smoke_run) == before
    assert not (smoke_run.parent / "s.npz").exists()


def test_checkpoint_with_extra_leaves(smoke_run, capsys):
    # a bigger model whose first leaves happen to fit: the leftover bytes give it away
    ckpt = smoke_run / "checkpoints" / "step_00000000.eqx"
    with open(ckpt, "ab") as f:
        np.save(f, np.zeros(3, np.float32))
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    meta["sha256"] = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    ckpt.with_suffix(".json").write_text(json.dumps(meta))
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", smoke_run, "--resume"],
        "more leaves than this model has",
        "another --out",
    )


def test_checkpoint_of_another_format_or_config_version(smoke_run, capsys):
    meta_file = smoke_run / "checkpoints" / "step_00000000.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "format": checkpoint.FORMAT + 1, "version": "9.9"}))
    before = snapshot(smoke_run)
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", smoke_run, "--resume"],
        "none of the 1 checkpoint(s)",
        f"format {checkpoint.FORMAT + 1} (written by nanoddpm_utils 9.9)",
        f"reads format {checkpoint.FORMAT}",
        "train afresh with another --out",
    )
    meta_file.write_text(json.dumps(meta))
    config = json.loads((smoke_run / "config.json").read_text())
    config["model"]["attention_heads"] = 4  # a field of a later version
    (smoke_run / "config.json").write_text(json.dumps(config))
    user_error(
        capsys,
        ["sample", "--run", smoke_run, "--out", smoke_run.parent / "s.npz"],
        "config.json is not a config this version",
        "attention_heads",
        "train afresh with another --out",
    )
    assert snapshot(smoke_run).keys() == before.keys()


def test_run_directory_not_writable(tmp_path, capsys, smoke_run):
    """Works as root too: no permission bit stops root, but a regular file in the path stops everyone."""
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", blocker / "run"],
        f"{blocker} is a file, so {blocker / 'run'} cannot be created",
        "choose another --out",
    )
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", blocker],
        f"{blocker} is a file, not a directory",
        "choose another --out",
    )
    user_error(
        capsys,
        ["sample", "--run", smoke_run, "--out", blocker / "s.npz"],
        f"{blocker} is a file",
        "choose another --out",
    )
    assert blocker.read_text() == "mine"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through any permission bits")
def test_run_directory_without_write_permission(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        user_error(
            capsys,
            ["train", "--preset", "smoke", "--out", locked / "run"],
            "cannot write to",
            "Permission denied",
            "choose another --out",
        )
    finally:
        locked.chmod(0o700)


def test_resume_without_checkpoint(tmp_path, capsys):
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "never", "--resume"],
        "config.json not found",
        "is not a run directory",
        "train --out",
    )
    assert not (tmp_path / "never").exists()  # a refused --resume creates nothing
    checkpoint.save_config(tmp_path / "started", SMOKE)  # killed before its first checkpoint
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "started", "--resume"],
        "no checkpoint in",
        "train first (without --resume)",
    )


# --- the same, as a user's terminal shows it ---------------------------------------------------------------


def test_errors_in_a_real_process(tmp_path):
    save_png(tmp_path / "imgs" / "good.png", np.zeros((8, 8)))
    (tmp_path / "imgs" / "broken.png").write_bytes(b"junk")
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=str(ROOT))
    for argv, words in [
        (["train", "--preset", "smoke", "--out", tmp_path / "r", "--data", tmp_path / "imgs"], ["broken.png"]),
        (["train", "--preset", "huge", "--out", tmp_path / "r"], ["invalid choice: 'huge'"]),
        (["train", "--preset", "smoke", "--out", tmp_path / "r", "--resume"], ["not a run directory"]),
    ]:
        r = subprocess.run(
            [sys.executable, "-m", "nanoddpm_utils", *map(str, argv)],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=300,
            cwd=ROOT,
        )
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
        assert all(w in lines[0] for w in words), lines[0]


def test_more_devices_than_the_machine_has(capsys, tmp_path):
    user_error(
        capsys,
        ["train", "--preset", "smoke", "--out", tmp_path / "r", "--devices", "2"],
        "asked for 2 devices",
        "this machine has 1",
    )
    assert not (tmp_path / "r").exists()


def test_batch_size_not_divisible_by_the_device_count(tmp_path):
    """On 8 (simulated) devices a global batch of 12 cannot split: one line, exit 2, nothing created."""
    env = dict(
        os.environ,
        WANDB_MODE="disabled",
        PYTHONPATH=str(ROOT),
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_force_host_platform_device_count=8",
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "nanoddpm_utils",
            "train",
            "--preset",
            "smoke",
            "--out",
            str(tmp_path / "r"),
            "--batch-size",
            "12",
        ],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "batch size 12 does not split evenly over 8 devices" in lines[0], r.stderr
    assert "8 or 16" in lines[0] and "--devices" in lines[0]
    assert not (tmp_path / "r").exists()


# --- issue 15: bounds, paths, links, internal errors, nothing left behind ---------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--out", "{tmp}/r", "--seed", "99999999999999999999999"], ["--seed: must be <= 4,294,967,295"]),
        (["train", "--out", "{tmp}/r", "--seed", "-1"], ["--seed: must be >= 0"]),
        (["sample", "--run", "{tmp}", "--out", "{tmp}/s.npz", "--num", "50001"], ["--num: must be <= 50,000"]),
        (
            ["sample", "--run", "{tmp}", "--out", "{tmp}/s.npz", "--seed", "4294967296"],
            ["--seed: must be <= 4,294,967,295"],
        ),
        (["eval", "--run", "{tmp}", "--num-samples", "10**6"], ["is not a whole number"]),
        (["eval", "--run", "{tmp}", "--num-samples", "1000000"], ["--num-samples: must be <= 50,000"]),
    ],
)
def test_bounds_of_seed_and_num(tmp_path, capsys, argv, words):
    user_error(capsys, [a.format(tmp=tmp_path) for a in argv], *words)
    assert sorted(tmp_path.iterdir()) == []


def test_sample_to_a_directory_is_refused_before_sampling(smoke_run, capsys, monkeypatch):
    monkeypatch.setattr("nanoddpm_utils.cli.commands.sample_in_chunks", lambda *a, **k: pytest.fail("sampled"))
    (smoke_run.parent / "x.npz").mkdir()
    user_error(capsys, ["sample", "--run", smoke_run, "--out", smoke_run.parent / "x.npz"], "x.npz is a directory")
    (smoke_run.parent / "y.png").mkdir()
    user_error(capsys, ["sample", "--run", smoke_run, "--out", smoke_run.parent / "y.npz"], "y.png is a directory")
    user_error(
        capsys,
        ["sample", "--run", smoke_run, "--out", smoke_run.parent / "z.npz", "--steps", "5"],
        "needs sampler='ddim'",
    )
    user_error(
        capsys,
        ["sample", "--run", smoke_run, "--out", smoke_run.parent / "z.npz", "--sampler", "ddim", "--steps", "51"],
        "more than this run's T = 50",
    )
    assert sorted(p.name for p in smoke_run.parent.iterdir()) == ["run", "x.npz", "y.png"]


@pytest.mark.parametrize(
    "failure", [OSError(28, "No space left on device"), KeyboardInterrupt(), PermissionError(13, "Permission denied")]
)
def test_no_temporary_file_is_left_when_writing_fails(smoke_run, capsys, monkeypatch, failure):
    """A full disk is the machine's (exit 1, "free the disk"), a refused path the user's (exit 2), Ctrl-C 130."""
    out = smoke_run.parent / "out" / "s.npz"

    def savez(file, **arrays):
        file.write(b"half a file")
        raise failure

    monkeypatch.setattr("numpy.savez", savez)
    code = main(["sample", "--run", str(smoke_run), "--out", str(out), "--num", "2"])
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    if isinstance(failure, KeyboardInterrupt):
        assert code == 130 and err == "interrupted; nothing written (the .npz appears only once every sample is drawn)"
    elif isinstance(failure, PermissionError):
        assert code == 2 and "Permission denied" in err and "choose another --out" in err, err
    else:
        assert code == 1 and "No space left on device" in err and "free the disk" in err, err
    assert list(out.parent.iterdir()) == []  # no s.npz, no temporary file


def test_a_large_num_is_drawn_in_chunks(smoke_run, capsys, monkeypatch):
    monkeypatch.setattr("nanoddpm_utils.cli.commands.CHUNK", 3)
    assert main(["sample", "--run", str(smoke_run), "--out", str(smoke_run.parent / "s.npz"), "--num", "7"]) == 0
    samples = np.load(smoke_run.parent / "s.npz")["samples"]
    assert samples.shape == (7, 8, 8, 1)
    assert not np.allclose(samples[:3], samples[3:6])  # each chunk has its own key


def test_an_internal_error_is_not_dressed_as_the_users(tmp_path, capsys, monkeypatch):
    def broken_fit(*args, **kwargs):
        raise ValueError("an internal bug")  # a ValueError of ours, not the user's

    monkeypatch.setattr("nanoddpm_utils.cli.commands.fit", broken_fit)
    out = tmp_path / "r"
    assert main(["train", "--preset", "smoke", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("internal error: ValueError: an internal bug") and "\n" not in err, err
    assert "not in your command" in err and str(out / "internal_error.txt") in err
    assert "broken_fit" in (out / "internal_error.txt").read_text()  # the traceback, for a bug report
    assert main(["train", "--preset", "smoke", "--out", str(tmp_path / "r2"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("internal error: ValueError")


@pytest.mark.parametrize("case", ["wandb mode", "image size", "download"])
def test_a_refused_command_creates_nothing(tmp_path, capsys, monkeypatch, case):
    out = tmp_path / "deep" / "r"
    argv = ["train", "--preset", "smoke", "--out", out]
    if case == "wandb mode":
        monkeypatch.setenv("WANDB_MODE", "sometimes")
        words = ["W&B mode must be one of", "WANDB_MODE"]
    elif case == "image size":
        save_png(tmp_path / "imgs" / "a.png", np.zeros((16, 16)))
        argv += ["--data", tmp_path / "imgs"]
        words = ["16x16x1", "preset expects 8x8x1"]
    else:

        def fail(handle):
            raise UnauthenticatedError("no credentials")

        monkeypatch.setattr(kagglehub, "dataset_download", fail)
        argv += ["--data", "cifar10"]
        words = ["could not download CIFAR-10"]
    user_error(capsys, argv, *words)
    assert not (tmp_path / "deep").exists()


def test_links_inside_a_run_folder_are_refused(tmp_path, capsys):
    target = tmp_path / "elsewhere"
    target.mkdir()
    for name in ("checkpoints", "metrics.jsonl"):
        out = tmp_path / f"r-{name}"
        out.mkdir()
        (out / name).symlink_to(target / name)
        user_error(capsys, ["train", "--preset", "smoke", "--out", out], f"{out / name} is a symbolic link")
    assert list(target.iterdir()) == []
