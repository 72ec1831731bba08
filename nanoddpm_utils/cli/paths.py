"""The user's paths, checked before any work: a refused command creates nothing and touches no file of theirs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UsageError


def check_can_create(target: Path, what: str) -> None:
    """Refuse (creating nothing) a ``target`` folder that exists as something else or cannot be made: its nearest
    existing ancestor must take a new file (proven with a fresh temporary name, removed at once)."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file, not a directory; choose another {what}")
    base = target
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise UsageError(f"{base} is a file, so {target} cannot be created; choose another {what}")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".write_test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(
            f"cannot write to {base} ({e.strerror or type(e).__name__}); choose another {what} in a "
            "folder you can write to"
        ) from None


def make_folder(folder: Path) -> None:
    """``mkdir -p``, after ``check_can_create``; refuses the run with one line if the disk says no after all."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {folder} ({e.strerror or type(e).__name__}); choose another --out") from None


def check_run_folder(out: Path) -> Path:
    """The run folder to write, resolved explicitly if reached through a link; links inside it are refused."""
    check_can_create(out, "--out")
    real = out.resolve()
    if real != out.absolute():
        print(f"run folder {out} is {real}")
    for name in ("checkpoints", "metrics.jsonl", "config.json"):
        if (real / name).is_symlink():
            raise UsageError(
                f"{real / name} is a symbolic link; a run writes (and deletes old checkpoints) only in "
                "real files and folders: replace the link, or choose another --out"
            )
    return real


def check_npz_out(out: Path) -> tuple[Path, Path]:
    """``sample``'s --out (a new or regular .npz file) and the .png grid beside it, checked before sampling."""
    png = out.with_suffix(".png")
    if out.suffix != ".npz":
        raise UsageError(f"--out must name a .npz file, got {out}")
    for path in (out, png):
        if path.is_dir() or path.is_symlink():
            raise UsageError(
                f"{path} is a {'directory' if path.is_dir() else 'symbolic link'}; --out must name a "
                "new or regular .npz file (its grid goes beside it as .png)"
            )
    check_can_create(out.parent, "--out")
    return out, png
