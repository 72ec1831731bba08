"""Written once for every module: ``atomic_write`` (a file is its old self or complete, never half-written) and
``first_line`` (an exception's message as one readable line, for the one-line errors users see)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write ``data`` (bytes, or a function that writes into an open binary file) to ``path``: into a temporary
    file beside it, flushed to the disk, renamed over it; removed on any failure, leaving ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
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
    return path


def _keystr(match: re.Match) -> str:
    parts = re.findall(r"(\w+)Key\(\w+=([^()]*)\)", match.group(0))
    return "".join(f".{v}" if kind == "GetAttr" else f"[{v}]" for kind, v in parts).lstrip(".").replace("'", "")


def first_line(e: BaseException, limit: int = 300, clean: Callable[[str], str] = str) -> str:
    """The first line of ``e``'s message (``clean``-ed first, e.g. to mask a secret), cut to ``limit`` characters;
    equinox's pytree paths, ``(GetAttrKey(name='model'), SequenceKey(idx=0))``, read as ``model[0]``."""
    text = clean(str(e)).strip().splitlines()
    text = text[0] if text else type(e).__name__
    text = re.sub(r"\((?:\w+Key\([^()]*\)(?:, )?)+\)", _keystr, text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
