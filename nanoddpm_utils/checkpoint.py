"""Save and restore a whole run: the config as JSON, the TrainState's leaves with
``eqx.tree_serialise_leaves`` (no pickle anywhere), a SHA-256 of each file.

Layout of a run directory::

    RUN/config.json                       the Config, as JSON
    RUN/checkpoints/step_00001000.eqx     model, EMA, optimizer state, step, PRNG key
    RUN/checkpoints/step_00001000.json    {"step", "sha256", "format"}: written last, so it marks a complete file

Writes are atomic (temporary file, flush + fsync, rename), so a run killed while
saving never leaves a half-written checkpoint in place of a good one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import equinox as eqx

from . import __version__
from .config import Config

FORMAT = 1  # bump when the TrainState layout changes
_NAME = re.compile(r"step_(\d{8})\.eqx$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with what to do about it."""


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def save_config(run_dir: str | Path, config: Config) -> None:
    _atomic_write(Path(run_dir) / "config.json", json.dumps(config.to_dict(), indent=2).encode())


def load_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{path} not found: {run_dir} is not a run directory (train one with "
                              "`python -m nanoddpm_utils train --out DIR`)")
    try:
        return Config.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e})") from None


def save(run_dir: str | Path, state, config: Config, *, keep: int = 3) -> Path:
    """Write ``state`` as ``checkpoints/step_N.eqx`` (+ its checksum file) and keep the newest ``keep``."""
    import io

    run_dir = Path(run_dir)
    save_config(run_dir, config)
    step = int(state.step)
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    data = buf.getvalue()
    path = run_dir / "checkpoints" / f"step_{step:08d}.eqx"
    _atomic_write(path, data)
    meta = {"step": step, "sha256": hashlib.sha256(data).hexdigest(), "format": FORMAT, "version": __version__}
    _atomic_write(path.with_suffix(".json"), json.dumps(meta).encode())
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    return sorted(p for p in folder.glob("step_*.eqx") if _NAME.search(p.name)) if folder.is_dir() else []


def _verify(path: Path) -> str | None:
    """None when ``path`` is complete and intact, else why not."""
    meta_path = path.with_suffix(".json")
    if not meta_path.exists():
        return "its checksum file is missing (the save was interrupted)"
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return "its checksum file is corrupt"
    if meta.get("format") != FORMAT:
        return f"it has format {meta.get('format')}, this version reads format {FORMAT}"
    if hashlib.sha256(path.read_bytes()).hexdigest() != meta.get("sha256"):
        return "its checksum does not match (truncated or corrupted)"
    return None


def latest(run_dir: str | Path) -> Path | None:
    """The newest complete, intact checkpoint; older ones are used (with a warning) when newer ones are damaged."""
    for path in reversed(list_checkpoints(run_dir)):
        problem = _verify(path)
        if problem is None:
            return path
        warnings.warn(f"skipping checkpoint {path.name}: {problem}; trying an older one", stacklevel=2)
    return None


def restore(run_dir: str | Path, config: Config | None = None, path: str | Path | None = None):
    """Load the newest intact checkpoint of a run: returns ``(state, config)``.

    ``config`` defaults to the run's config.json; passing a different one is an error,
    since the weights would not fit it.
    """
    from .train import init_state

    run_dir = Path(run_dir)
    saved = load_config(run_dir)
    if config is not None and config.model != saved.model:
        raise CheckpointError(f"the checkpoint in {run_dir} was trained with model {saved.model}, not "
                              f"{config.model}; use the same preset, or another --out directory")
    config = config or saved
    path = Path(path) if path is not None else latest(run_dir)
    if path is None:
        raise CheckpointError(f"no checkpoint in {run_dir / 'checkpoints'}; train first (without --resume)")
    like = eqx.filter_eval_shape(init_state, config, 0)
    try:
        state = eqx.tree_deserialise_leaves(path, like)
    except Exception as e:  # wrong shapes or dtypes: another model or another version of the code
        raise CheckpointError(f"{path} does not match this model/config ({type(e).__name__}: {e}); it was "
                              "written by another config or version") from None
    return state, config
