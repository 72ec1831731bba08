"""Images as NumPy uint8 ``(N, H, W, C)`` arrays (channels-last, 0..255; the model sees floats in [-1, 1]): in and
out of the model's range, read from files, tiled, written as PNGs. A data problem the user can fix: ``DataError``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from .files import atomic_write, first_line

SPLITS = ("train", "test", "all")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class DataError(ValueError):
    """A data problem the user can fix; the message is one line saying what is wrong and what to do."""


def check_split(split: str) -> None:
    """Refuse a split other than ``SPLITS`` (every loader takes one)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


# --------------------------------------------------------------------------- pixel ranges
def to_model_range(images_uint8):
    """uint8 0..255 -> float32 in [-1, 1] (NumPy in, NumPy out; JAX in, JAX out)."""
    x = images_uint8 if hasattr(images_uint8, "astype") else np.asarray(images_uint8)
    # (x - 127.5) / 127.5, not x / 127.5 - 1: XLA fuses the latter into an FMA that gives 255 -> 1.0000001
    return (x.astype(np.float32) - 127.5) / 127.5


def to_uint8(x) -> np.ndarray:
    """Images as NumPy uint8 0..255: uint8 passes through, floats in [-1, 1] are clipped and rounded; other
    integers or booleans are refused (their scale is unknown)."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        raise TypeError(f"images must be uint8 or float in [-1, 1], got {x.dtype}")
    x = x.astype(np.float32)
    return np.rint(np.clip((x + 1.0) * 127.5, 0.0, 255.0)).astype(np.uint8)


# --------------------------------------------------------------------------- image files in
def read_images(files: list[Path], mode: str) -> np.ndarray:
    """Decode ``files`` with Pillow in ``mode`` ("RGB" or "L") into one uint8 ``(N, H, W, C)`` array."""
    if not files:
        raise DataError("no images to read; check the dataset folder")
    out, first = None, None
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert(mode), dtype=np.uint8)
        except Exception as e:  # Pillow raises OSError, ValueError, DecompressionBombError, ...
            raise DataError(
                f"cannot read image {f} ({type(e).__name__}: {first_line(e, limit=200)}); delete or replace this file"
            ) from None
        arr = arr[..., None] if arr.ndim == 2 else arr
        if out is None:  # allocate once: 50,000 small arrays in a list would double peak memory
            out, first = np.empty((len(files), *arr.shape), np.uint8), f
        elif arr.shape != out.shape[1:]:
            (h, w), (h0, w0) = arr.shape[:2], out.shape[1:3]
            raise DataError(
                f"images have different sizes: {first} is {w0}x{h0} but {f} is {w}x{h}; resize them all to "
                f'one size, e.g. python -c "import sys; from PIL import Image; [Image.open(p).resize(({w0}, {h0}))'
                f'.save(p) for p in sys.argv[1:]]" {f.parent}/*'
            )
        out[i] = arr
    return out


# --------------------------------------------------------------------------- image files out
def image_grid(images, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile a batch `(N, H, W, C)` into one uint8 image, `nrow` columns (default `ceil(sqrt(N))`), image i at
    row `i // nrow`, column `i % nrow`, white `pad` between tiles and in empty slots."""
    x = to_uint8(images)
    if x.ndim != 4:
        raise ValueError(f"image_grid wants (N, H, W, C), got shape {x.shape}")
    n, h, w, c = x.shape
    ncol = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / ncol))
    grid = np.full((rows * h + (rows - 1) * pad, ncol * w + (ncol - 1) * pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        grid[r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = x[i]
    return grid


def save_png(grid_or_images, path, min_side: int = 256) -> Path:
    """Write a grid `(H, W, C)` (or a batch, tiled first) as a PNG, atomically; small images upscaled by an
    integer factor (nearest-neighbour: 8x8 digits stay crisp) to a shorter side of at least `min_side` pixels."""
    x = to_uint8(grid_or_images)
    if x.ndim == 4:
        x = image_grid(x)
    if x.ndim == 2:
        x = x[..., None]
    factor = max(1, math.ceil(min_side / min(x.shape[:2])))
    x = x.repeat(factor, axis=0).repeat(factor, axis=1)
    img = Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x)
    return atomic_write(path, lambda f: img.save(f, format="PNG"))
