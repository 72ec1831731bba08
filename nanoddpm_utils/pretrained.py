"""Trained models shipped with the package: ``load("digits")`` returns ``(config, model)`` in one call.

The shipped models are data, not code. ``weights/index.json`` (package data, beside this file)
lists each one: its name, its ``Config`` as JSON, the file of its EMA weights (the UNet's leaves
written with ``eqx.tree_serialise_leaves``, as ``checkpoint.py`` writes a run) and that file's
SHA-256, which ``load`` checks before it reads a byte of weights. Adding a model (a CIFAR-10 one
trained on an accelerator, say) is adding its file and one entry to the index::

    python -m nanoddpm_utils.pretrained digits      # what `make pretrained` runs: train the preset, write it

``build`` trains a preset from its seed with the project's own ``train.fit`` (no sampling, no
checkpoints on the way) and writes the EMA weights and their entry. On the machine that made
it the file comes out bit for bit the same; another CPU's arithmetic differs in the last bits.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import equinox as eqx
import jax

from . import __version__
from .checkpoint import read_leaves
from .config import PRESETS, Config, get_preset
from .data import load_dataset
from .files import atomic_write, first_line
from .state import init_state
from .train import fit
from .unet import make_model

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
INDEX = "index.json"
FORMAT = 1  # the layout of one weights file: the UNet's leaves (bump when the UNet's leaves change)


class PretrainedError(ValueError):
    """A shipped model that cannot be loaded, with what to do about it."""


def _read_index(weights_dir: Path) -> dict[str, dict]:
    path = weights_dir / INDEX
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PretrainedError(
            f"{path} is not valid JSON ({e}); reinstall nanoddpm_utils or run `make pretrained`"
        ) from None


def available(weights_dir: str | Path | None = None) -> list[str]:
    """The names of the shipped models, sorted (``load`` takes any of them)."""
    return sorted(_read_index(Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR))


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(name: str, *, weights_dir: str | Path | None = None):
    """``(config, model)``: a shipped model's ``Config`` and its EMA weights as a ``UNet``.

    Sample from it as from a run's EMA: ``sample.sample_images(config, model, key, 64)``.
    The weights file's SHA-256 is checked first; a changed or truncated file is refused.
    """
    weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    index = _read_index(weights_dir)
    if name not in index:
        raise PretrainedError(f"no shipped model named {name!r}; available: {', '.join(sorted(index)) or 'none'}")
    entry = index[name]
    if entry.get("format") != FORMAT:
        raise PretrainedError(
            f"the shipped model {name!r} has format {entry.get('format')}, this version of "
            f"nanoddpm_utils ({__version__}) reads format {FORMAT}; upgrade nanoddpm_utils"
        )
    config = Config.from_dict(entry["config"])
    path = weights_dir / entry["file"]
    if not path.exists():
        raise PretrainedError(
            f"{path} is missing: the package data of {name!r} was not installed; reinstall "
            "nanoddpm_utils (or run `make pretrained` in a clone)"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise PretrainedError(
            f"{path} has SHA-256 {digest[:12]}..., the index says {entry['sha256'][:12]}...: the "
            "file is damaged or was changed; reinstall nanoddpm_utils (or run `make pretrained`)"
        )
    like = eqx.filter_eval_shape(make_model, config, key=jax.random.key(0))
    try:
        model = read_leaves(data, like)
    except Exception as e:  # the checksum matched, so the model code changed since the file was written
        raise PretrainedError(
            f"{path} does not fit the UNet of its config ({first_line(e, 200)}); "
            "it was written by another version of nanoddpm_utils"
        ) from None
    return config, model


def build(name: str = "digits", *, weights_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Train the preset ``name`` from its seed and write its EMA weights + index entry into ``weights_dir``."""
    weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    config = get_preset(name)
    m = config.model
    data = load_dataset(
        config.dataset, split="train", image_size=m.image_size, channels=m.in_channels, return_labels=m.num_classes > 0
    )  # a class-conditional model trains on (images, labels)
    state, _ = fit(config, data, state=init_state(config, jax.random.key(config.train.seed)), progress=progress)
    path = atomic_write(weights_dir / f"{name}.eqx", lambda f: eqx.tree_serialise_leaves(f, jax.device_get(state.ema)))
    index = _read_index(weights_dir)
    index[name] = {
        "file": path.name,
        "sha256": sha256(path),
        "format": FORMAT,
        "config": config.to_dict(),
        "made_by": f"python -m nanoddpm_utils.pretrained {name}  (make pretrained)",
        "trained_on": f"{_cpu_name()}, {jax.default_backend()}, jax {jax.__version__}, nanoddpm_utils {__version__}",
    }
    atomic_write(weights_dir / INDEX, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    return path


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    """``python -m nanoddpm_utils.pretrained [PRESET ...]``: build each (default: digits). Errors are one line:
    exit 2 for what the user asked (an unknown preset, a dataset that is not there), 1 for the machine's failures."""
    argv = sys.argv[1:] if argv is None else argv
    names = argv or ["digits"]
    bad = [n for n in names if n not in PRESETS]
    if bad:
        print(f"error: unknown preset(s) {bad}; choose from {sorted(PRESETS)}", file=sys.stderr)
        return 2
    try:
        for name in names:
            start = time.perf_counter()
            path = build(name)
            print(
                f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, sha256 {sha256(path)}) in "
                f"{time.perf_counter() - start:.0f} s"
            )
    except KeyboardInterrupt:
        print(
            "interrupted: the shipped weights are as they were (each file is replaced only when complete)",
            file=sys.stderr,
        )
        return 130
    except (ValueError, FileNotFoundError) as e:  # the preset's data or config refused: the user's to fix
        print(f"error: {first_line(e)}", file=sys.stderr)
        return 2
    except (OSError, MemoryError, FloatingPointError, RuntimeError) as e:  # the disk, the memory, the arithmetic
        print(
            f"error: {type(e).__name__}: {first_line(e)}; check the disk and memory, then run it again", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
