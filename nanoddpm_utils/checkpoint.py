"""Save and restore a whole run: the config as JSON, the TrainState's leaves with
``eqx.tree_serialise_leaves`` (no pickle anywhere), a SHA-256 of each file.

Layout of a run directory::

    RUN/config.json                       the Config, as JSON
    RUN/checkpoints/step_00001000.eqx     model, EMA, optimizer state, step, PRNG key
    RUN/checkpoints/step_00001000.json    {"step", "sha256", "format"}: written last, so it marks a complete file

Writes are atomic (temporary file, flush + fsync, rename), so a run killed while
saving never leaves a half-written checkpoint in place of a good one.

Keep-last-k goes by what was written, not by file names: after a save, the checkpoint just written (read
back and verified first) and the newest intact ones before it are kept, ``keep`` in all; the checkpoint
this process resumed from is never deleted; damaged ones (interrupted or corrupted saves) are deleted once
a newer save is verified. A run folder reached through a symbolic link is resolved to its target (the run
lives there); a ``checkpoints/`` that is itself a link is refused, since old checkpoints are deleted in it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
from pathlib import Path

import equinox as eqx

from . import __version__
from .config import Config
from .files import atomic_write, first_line
from .state import init_state

FORMAT = 1  # bump when the TrainState layout changes
_NAME = re.compile(r"step_(\d{8})\.eqx$")


# What to do about a run this code cannot continue; the run's own files are never changed by the error.
_FRESH = "train afresh with another --out (this run is left as it is)"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with what to do about it."""


# The checkpoint (file name) each resolved run folder was last restored from in this process: keep-last-k keeps it.
_RESUMED_FROM: dict[Path, str] = {}


def _folder(run_dir: str | Path) -> Path:
    """``run_dir/checkpoints`` of the resolved run folder; refused when it is a symbolic link."""
    folder = Path(run_dir).resolve() / "checkpoints"
    if folder.is_symlink():
        raise CheckpointError(
            f"{folder} is a symbolic link (to {os.readlink(folder)}); keep-last-k deletes old "
            "checkpoints in it, so it must be a real folder: replace the link by a folder holding "
            "the checkpoints, or point --out at the real run folder"
        )
    return folder


def save_config(run_dir: str | Path, config: Config) -> None:
    atomic_write(Path(run_dir) / "config.json", json.dumps(config.to_dict(), indent=2).encode())


def load_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise CheckpointError(
            f"{path} not found: {run_dir} is not a run directory (train one with "
            "`python -m nanoddpm_utils train --out DIR`)"
        )
    try:
        return Config.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); {_FRESH}") from None
    except ValueError as e:  # fields this version does not know, or values it does not accept
        raise CheckpointError(
            f"{path} is not a config this version of nanoddpm_utils ({__version__}) can read "
            f"({first_line(e)}); {_FRESH}, or use the version that wrote it"
        ) from None


def save(run_dir: str | Path, state, config: Config, *, keep: int = 3) -> Path:
    """Write ``state`` as ``checkpoints/step_N.eqx`` (+ its checksum file), verify it, then keep-last-k (see above)."""
    run_dir = Path(run_dir).resolve()
    folder = _folder(run_dir)
    save_config(run_dir, config)
    step = int(state.step)
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    data = buf.getvalue()
    path = folder / f"step_{step:08d}.eqx"
    atomic_write(path, data)
    meta = {"step": step, "sha256": hashlib.sha256(data).hexdigest(), "format": FORMAT, "version": __version__}
    atomic_write(path.with_suffix(".json"), json.dumps(meta).encode())
    problem = _verify(path)
    if problem is not None:  # nothing is deleted on the word of a checkpoint that does not read back
        raise CheckpointError(
            f"the checkpoint just written, {path}, does not read back ({problem}): check the disk; "
            "the older checkpoints are kept"
        )
    if keep > 0:
        _prune(folder, keep, path)
    return path


def _prune(folder: Path, keep: int, written: Path) -> None:
    """Delete all but ``written`` and the newest intact checkpoints, ``keep`` in all; never the one resumed from,
    never one of another format (another version's to read)."""
    protected = {written.name, _RESUMED_FROM.get(folder.parent)}
    kept = 1
    for path in reversed(list_checkpoints(folder.parent)):  # newest step first
        if path == written:
            continue
        problem = _verify(path)
        other_format = problem is not None and (_meta(path) or {"format": FORMAT}).get("format") != FORMAT
        if problem is None and kept < keep:
            kept += 1
        elif path.name not in protected and not other_format:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files of a run, by step, oldest first."""
    folder = _folder(run_dir)
    return sorted(p for p in folder.glob("step_*.eqx") if _NAME.search(p.name)) if folder.is_dir() else []


def _meta(path: Path) -> dict | None:
    """The checksum file of checkpoint ``path`` as a dict, or None when it is missing or unreadable."""
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _verify(path: Path) -> str | None:
    """None when ``path`` is complete and intact, else why not."""
    if not path.with_suffix(".json").exists():
        return "its checksum file is missing (the save was interrupted)"
    meta = _meta(path)
    if meta is None:
        return "its checksum file is corrupt"
    if meta.get("format") != FORMAT:
        return (
            f"it has format {meta.get('format')} (written by nanoddpm_utils {meta.get('version', '?')}), "
            f"this version ({__version__}) reads format {FORMAT}"
        )
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        return f"it cannot be read ({e.strerror or type(e).__name__})"
    if digest != meta.get("sha256"):
        return "its checksum does not match (truncated or corrupted)"
    return None


def latest(run_dir: str | Path) -> Path | None:
    """The newest complete, intact checkpoint; older ones are used (one line on stderr) when newer ones are damaged."""
    skipped = []
    for path in reversed(list_checkpoints(run_dir)):
        problem = _verify(path)
        if problem is None:
            for name, why in skipped:
                print(f"warning: skipping checkpoint {name}: {why}; using {path.name}", file=sys.stderr)
            return path
        skipped.append((path.name, problem))
    return None  # none at all, or none intact: restore() says which


def read_leaves(source: bytes | str | Path, like):
    """``like`` (a pytree, e.g. from ``eqx.filter_eval_shape``) with its leaves read from ``source``: the bytes, or
    the file, that ``eqx.tree_serialise_leaves`` wrote. Raises when they do not fit: wrong shapes or dtypes, too few
    leaves, or leaves left over (a bigger model whose first leaves happen to fit)."""
    with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as f:
        tree = eqx.tree_deserialise_leaves(f, like)
        if f.read(1):
            raise ValueError("the file holds more leaves than this model has")
    return tree


def restore(run_dir: str | Path, config: Config | None = None, path: str | Path | None = None):
    """Load a run's newest intact checkpoint, or the checkpoint file ``path``: returns ``(state, config)``.

    ``config`` defaults to the run's config.json; passing a different one is an error,
    since the weights would not fit it. ``path``'s checksum is verified as the newest's is.
    """
    run_dir = Path(run_dir).resolve()
    saved = load_config(run_dir)
    if config is not None and config.model != saved.model:
        diff = ", ".join(
            f"{k} {getattr(saved.model, k)!r} there, {getattr(config.model, k)!r} here"
            for k in saved.model.__dataclass_fields__
            if getattr(saved.model, k) != getattr(config.model, k)
        )
        raise CheckpointError(
            f"the checkpoint in {run_dir} was trained with another model ({diff}); use the "
            f"preset it was trained with ({saved.name!r}), or another --out directory"
        )
    config = config or saved
    if path is not None:
        path = Path(path)
        problem = _verify(path) if path.is_file() else "it is not a file"
        if problem is not None:
            raise CheckpointError(
                f"{path} cannot be used: {problem}; pass another checkpoint, or leave out the path "
                "to take the newest intact one"
            )
    else:
        path = latest(run_dir)
    if path is None:
        found = list_checkpoints(run_dir)
        if found:
            raise CheckpointError(
                f"none of the {len(found)} checkpoint(s) in {run_dir / 'checkpoints'} can be used "
                f"(the newest, {found[-1].name}: {_verify(found[-1])}); {_FRESH}"
            )
        raise CheckpointError(f"no checkpoint in {run_dir / 'checkpoints'}; train first (without --resume)")
    like = eqx.filter_eval_shape(init_state, config, 0)
    try:
        state = read_leaves(path, like)
    except OSError as e:
        raise CheckpointError(
            f"{path} cannot be read ({e.strerror or first_line(e)}); check its permissions and the disk"
        ) from None
    except Exception as e:  # the checksum matched, so the file is whole: it holds another model
        raise CheckpointError(
            f"{path} does not fit the model of {run_dir / 'config.json'} ({first_line(e)}): it "
            f"was written by another config or another version of the model; {_FRESH}, or use "
            "the version of nanoddpm_utils that wrote it"
        ) from None
    _RESUMED_FROM[run_dir] = path.name
    return state, config
