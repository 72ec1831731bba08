"""Tests for nanoddpm_utils.tracking: metrics.jsonl and the never-prompting W&B setup."""

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest
import wandb

from nanoddpm_utils import tracking
from nanoddpm_utils.images import image_grid
from nanoddpm_utils.tracking import Tracker, read_metrics, resolve_mode

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_KEY = "k" * 40  # looks like a W&B key; must never show up anywhere


def planted(n=10, h=8, w=8, c=1):
    """n uint8 images, image i filled with the value 10 * (i + 1) (never 255, the pad value)."""
    return np.stack([np.full((h, w, c), 10 * (i + 1), np.uint8) for i in range(n)])


class FakeRun:
    """Stands in for a wandb Run: records log and finish calls."""

    def __init__(self):
        self.logged, self.finished = [], []

    def log(self, row, step=None):
        self.logged.append((row, step))

    def finish(self, exit_code=None):
        self.finished.append(exit_code)


# --- mode resolution ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, env, expected",
    [
        (None, {}, "offline"),
        (None, {"WANDB_API_KEY": FAKE_KEY}, "online"),
        (None, {"WANDB_MODE": "disabled", "WANDB_API_KEY": FAKE_KEY}, "disabled"),
        (None, {"WANDB_MODE": "offline", "WANDB_API_KEY": FAKE_KEY}, "offline"),
        (None, {"WANDB_MODE": "online"}, "online"),
        (None, {"WANDB_MODE": "dryrun"}, "offline"),
        (None, {"WANDB_MODE": ""}, "offline"),  # empty counts as unset
        ("disabled", {"WANDB_MODE": "online", "WANDB_API_KEY": FAKE_KEY}, "disabled"),
        ("online", {"WANDB_MODE": "disabled"}, "online"),  # explicit argument wins
        ("offline", {"WANDB_API_KEY": FAKE_KEY}, "offline"),
    ],
)
def test_resolve_mode(mode, env, expected):
    assert resolve_mode(mode, env) == expected


def test_resolve_mode_rejects_unknown():
    with pytest.raises(ValueError):
        resolve_mode("sometimes", {})


# --- Tracker -----------------------------------------------------------------------------------


def test_tracker_disabled_writes_metrics_jsonl(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with Tracker(tmp_path / "run", {"lr": 2e-4}) as t:
        assert t.mode == "disabled" and t.run is None
        t.log({"loss": jnp.float32(0.5), "lr": np.float64(2e-4), "n": jnp.int32(3)}, step=1)
        t.log({"loss": 0.25}, step=2)
        t.log_images("samples", planted(4), step=2)  # no W&B: a no-op, nothing written
    rows = read_metrics(tmp_path / "run")
    assert rows == [{"step": 1, "loss": 0.5, "lr": 2e-4, "n": 3}, {"step": 2, "loss": 0.25}]
    assert type(rows[0]["loss"]) is float and type(rows[0]["n"]) is int
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1]) == rows[1]
    assert sorted(os.listdir(tmp_path / "run")) == ["metrics.jsonl"]
    assert read_metrics(tmp_path / "empty") == []
    with pytest.raises(TypeError):
        t.log({"loss": np.ones(3)}, step=3)  # metrics are scalars


def test_tracker_offline_without_key_never_prompts(tmp_path):
    """No WANDB_MODE, no key, stdin closed: the tracker picks offline, writes a W&B offline run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        env[var] = str(tmp_path / var.lower())  # keep the user's home untouched
    env["NETRC"] = str(tmp_path / "no-netrc")
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    script = textwrap.dedent(
        """
        import json, sys
        from nanoddpm_utils.tracking import Tracker
        t = Tracker(sys.argv[1], {"lr": 1e-3, "api_key": "hide-me"}, name="smoke")
        t.log({"loss": 1.5}, step=0)
        mode, run_dir = t.mode, t.run.dir
        t.finish()
        print(json.dumps({"mode": mode, "run_dir": run_dir}))
        """
    )
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", script, str(run)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["mode"] == "offline"
    offline_runs = [p for p in (run / "wandb").iterdir() if p.name.startswith("offline-run-")]
    assert len(offline_runs) == 1 and out["run_dir"].startswith(str(offline_runs[0]))
    assert list(offline_runs[0].glob("*.wandb"))  # the run's data, ready for `wandb sync`
    assert read_metrics(run) == [{"step": 0, "loss": 1.5}]
    wandb_file = next(offline_runs[0].glob("*.wandb")).read_bytes()  # offline: one protobuf log
    assert b"loss" in wandb_file and b"smoke" in wandb_file  # the metric and run name went to W&B
    for path in run.rglob("*"):  # the secret went nowhere: not the .wandb file, not debug logs
        assert path.is_dir() or b"hide-me" not in path.read_bytes(), path


class FakeInit:
    """Stands in for wandb.init: fails for the modes in `fail`, records every call."""

    def __init__(self, fail=(), message="boom"):
        self.fail, self.message, self.calls = set(fail), message, []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if kwargs["mode"] in self.fail:
            raise wandb.errors.CommError(self.message)
        return FakeRun()


def warning_lines(capsys) -> list[str]:
    """What the user saw on stderr, line by line (every warning must be exactly one line)."""
    return capsys.readouterr().err.splitlines()


def test_online_failure_falls_back_to_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(wandb, "login", lambda **kw: True)
    fake = FakeInit(fail={"online"}, message=f"bad key {FAKE_KEY}")
    monkeypatch.setattr(wandb, "init", fake)
    t = Tracker(tmp_path, {"lr": 1e-3}, name="r")
    assert [c["mode"] for c in fake.calls] == ["online", "offline"]
    assert t.mode == "offline" and isinstance(t.run, FakeRun)
    # exactly one line, without warnings.warn's "file:line:" prefix, and never the key
    assert warning_lines(capsys) == [
        "warning: W&B could not start in online mode (CommError); using offline, metrics.jsonl is still written"
    ]
    call = fake.calls[-1]
    assert call["dir"] == str(tmp_path) and call["name"] == "r" and call["project"] == "nanoddpm"
    assert call["settings"].silent is True
    t.log({"loss": 1.0}, step=5)
    assert t.run.logged == [({"loss": 1.0}, 5)]
    assert read_metrics(tmp_path) == [{"step": 5, "loss": 1.0}]


def test_all_failures_leave_wandb_disabled_but_jsonl_working(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb, "login", lambda **kw: True)
    fake = FakeInit(fail={"online", "offline"})
    monkeypatch.setattr(wandb, "init", fake)
    t = Tracker(tmp_path, {})
    assert len(warning_lines(capsys)) == 2 and t.mode == "disabled" and t.run is None
    t.log({"loss": 2.0}, step=0)
    t.log_images("x", planted(2), step=0)
    t.finish()
    assert read_metrics(tmp_path) == [{"step": 0, "loss": 2.0}]


def test_online_without_credentials_does_not_try_online(tmp_path, monkeypatch, capsys):
    """Online with no key found: wandb.login(prompt=False) says no, so no prompt and no online init."""
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    asked = []
    monkeypatch.setattr(wandb, "login", lambda **kw: asked.append(kw) or False)
    fake = FakeInit()
    monkeypatch.setattr(wandb, "init", fake)
    t = Tracker(tmp_path, {})
    (line,) = warning_lines(capsys)
    assert "NoWandbCredentials" in line
    assert asked and all(kw.get("prompt") is False for kw in asked)
    assert [c["mode"] for c in fake.calls] == ["offline"] and t.mode == "offline"


def test_config_secrets_are_dropped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    fake = FakeInit()
    monkeypatch.setattr(wandb, "init", fake)
    config = {
        "lr": 2e-4,
        "WANDB_API_KEY": FAKE_KEY,
        "hf_token": "t",
        "Secret": "s",
        "db_password": "p",
        "data": {"name": "digits", "kaggle_key": "k", "sizes": [1, 2]},
    }
    t = Tracker(tmp_path, config)
    assert warning_lines(capsys) == []
    sent = fake.calls[0]["config"]
    assert sent == {"lr": 2e-4, "data": {"name": "digits", "sizes": [1, 2]}}
    assert t.config == sent and FAKE_KEY not in json.dumps(sent)
    assert "kaggle_key" in config["data"]  # the caller's dict is not modified


def test_log_images_sends_one_uint8_hwc_grid(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    seen = []
    monkeypatch.setattr(wandb, "Image", lambda data, **kw: seen.append(data) or ("image", data))
    t = Tracker(tmp_path, {})
    t.run = FakeRun()
    floats = jnp.linspace(-1, 1, 10 * 8 * 8 * 3).reshape(10, 8, 8, 3)
    t.log_images("samples", floats, step=7)
    assert len(seen) == 1
    arr = seen[0]
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.shape == (26, 35, 3)
    np.testing.assert_array_equal(arr, image_grid(floats))
    assert t.run.logged == [({"samples": ("image", arr)}, 7)]
    assert not (tmp_path / "metrics.jsonl").exists()  # images are not metrics
    run = t.run
    t.finish()
    t.finish()  # twice is fine
    assert run.finished == [None]


def test_context_manager_marks_failed_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = FakeRun()
    with pytest.raises(KeyError):
        with Tracker(tmp_path, {}) as t:
            t.run = run
            raise KeyError("training crashed")
    assert run.finished == [1] and t.run is None


def test_wandb_log_error_switches_wandb_off(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    t = Tracker(tmp_path, {})

    class Broken(FakeRun):
        def log(self, row, step=None):
            raise OSError("disk full")

    t.run = Broken()
    t.log({"loss": 1.0}, step=0)
    t.log({"loss": 0.5}, step=1)
    assert warning_lines(capsys) == [
        "warning: W&B could not log (OSError); using disabled, metrics.jsonl is still written"
    ]  # once: W&B is off after the first error
    assert t.run is None and t.mode == "disabled"
    assert [r["loss"] for r in read_metrics(tmp_path)] == [1.0, 0.5]
    assert tracking.MODES == ("online", "offline", "disabled")


def test_metrics_are_never_appended_through_a_link(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    victim = tmp_path / "victim.txt"
    victim.write_text("someone's file\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(tracking.TrackingError, match="metrics.jsonl is a symbolic link"):
        Tracker(run, {})
    (run / "metrics.jsonl").unlink()
    with Tracker(run, {}) as t:
        t.log({"loss": 1.0}, step=1)
        (run / "metrics.jsonl").unlink()
        (run / "metrics.jsonl").symlink_to(victim)  # a link put in its place while the run goes on
        with pytest.raises(OSError) as refused:
            t.log({"loss": 0.5}, step=2)
    assert refused.value.errno == __import__("errno").ELOOP
    assert victim.read_text() == "someone's file\n"
