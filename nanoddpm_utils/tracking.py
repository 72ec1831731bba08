"""Experiment tracking: `run_dir/metrics.jsonl` always (one JSON line per `Tracker.log`), Weights & Biases when it
can: online with an API key, else offline, never asking a question (CI has no stdin); if it cannot start, it warns
in one line and falls back to offline, then to nothing. Tracking never stops training."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import wandb

from .images import image_grid

MODES = ("online", "offline", "disabled")
SECRET_WORDS = ("key", "token", "secret", "password")


class TrackingError(ValueError):
    """A run folder the tracker must not write into (a metrics.jsonl that is a link); one line saying what to do."""


class NoWandbCredentials(RuntimeError):
    """Online mode was asked for but no API key is configured (we never prompt for one)."""


def resolve_mode(mode: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """`mode`, else `WANDB_MODE`, else online iff `WANDB_API_KEY` is set; "dryrun" is W&B's old "offline"."""
    env = os.environ if env is None else env
    chosen = mode or env.get("WANDB_MODE") or ("online" if env.get("WANDB_API_KEY") else "offline")
    chosen = {"dryrun": "offline"}.get(chosen.lower(), chosen.lower())
    if chosen not in MODES:
        raise ValueError(f"W&B mode must be one of {MODES + ('dryrun',)}, got {chosen!r}")
    return chosen


def drop_secrets(config):
    """A copy of `config` without any key naming a key, token, secret or password (recursively)."""
    if isinstance(config, Mapping):
        return {
            k: drop_secrets(v) for k, v in config.items() if not any(word in str(k).lower() for word in SECRET_WORDS)
        }
    if isinstance(config, (list, tuple)):
        return type(config)(drop_secrets(v) for v in config)
    return config


def _scalar(name: str, value):
    """A metric as a plain Python number (jax/numpy scalars included); strings pass through."""
    if isinstance(value, (str, bool, int, float)):
        return value
    a = np.asarray(value)
    if a.size != 1:
        raise TypeError(f"metric {name!r} must be a scalar, got shape {a.shape}")
    return int(a.item()) if np.issubdtype(a.dtype, np.integer) else float(a.item())


def read_metrics(run_dir) -> list[dict]:
    """The metrics a `Tracker` wrote to `run_dir/metrics.jsonl`, one dict per `log` call."""
    path = Path(run_dir) / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


class Tracker:
    """Log metrics to `run_dir/metrics.jsonl` and, when possible, to W&B; a context manager. `self.mode` is what
    runs after a failed start (online -> offline -> disabled, where `self.run` is None); `self.config`, sent to
    W&B, has every key naming a key, token, secret or password removed."""

    def __init__(
        self, run_dir, config: dict, *, project: str = "nanoddpm", name: str | None = None, mode: str | None = None
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        if self.metrics_path.is_symlink():
            raise TrackingError(
                f"{self.metrics_path} is a symbolic link; metrics are appended only to a real file: "
                "remove the link, or choose another run folder"
            )
        self.config = drop_secrets(dict(config or {}))
        self.mode = resolve_mode(mode)
        self.run = None
        attempts = {"online": ["online", "offline"], "offline": ["offline"], "disabled": []}[self.mode]
        for attempt in attempts:
            try:
                self.run = self._start(attempt, project, name)
                self.mode = attempt
                break
            except Exception as e:  # never let W&B stop training; never echo the key
                self._warn(f"start in {attempt} mode", e, "offline" if attempt == "online" else "disabled")
                self.mode = "disabled"

    @staticmethod
    def _warn(what: str, e: Exception, nxt: str) -> None:
        print(
            f"warning: W&B could not {what} ({type(e).__name__}); using {nxt}, metrics.jsonl is still written",
            file=sys.stderr,
        )

    def _start(self, mode: str, project: str, name: str | None):
        """`wandb.init` in a form that cannot prompt: online needs credentials found without asking."""
        if mode == "online" and not wandb.login(prompt=False, verify=False):
            raise NoWandbCredentials("set WANDB_API_KEY or run `wandb login`")
        settings = wandb.Settings(silent=True, console="off", reinit="finish_previous")
        return wandb.init(
            project=project, name=name, config=self.config, dir=str(self.run_dir), mode=mode, settings=settings
        )

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Append `{"step": step, **metrics}` to metrics.jsonl and send the metrics to W&B."""
        row = {k: _scalar(k, v) for k, v in metrics.items()}
        line = (json.dumps({"step": int(step), **row}) + "\n").encode()
        # never through a link (O_NOFOLLOW: a link put in its place is refused with ELOOP, not followed)
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "ab") as f:
            f.write(line)
        self._send(lambda: row, step)

    def log_images(self, name: str, images, step: int) -> None:
        """Send a batch (N, H, W, C), uint8 or float in [-1, 1], to W&B as ONE uint8 grid image."""
        if self.run is not None:
            grid = image_grid(images)  # uint8 HWC: wandb.Image truncates float arrays
            self._send(lambda: {name: wandb.Image(grid)}, step)

    def _send(self, make_row, step: int) -> None:
        """`run.log` if W&B is on; on any W&B error warn once and switch W&B off."""
        if self.run is None:
            return
        try:
            self.run.log(make_row(), step=int(step))
        except Exception as e:
            self._warn("log", e, "disabled")
            self.run, self.mode = None, "disabled"

    def finish(self, exit_code: int | None = None) -> None:
        """Close the W&B run (safe to call twice)."""
        if self.run is not None:
            run, self.run = self.run, None
            try:
                run.finish(exit_code=exit_code)
            except Exception as e:
                self._warn("finish", e, "nothing")

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exit_code=1 if exc_type is not None else None)
