"""Datasets as in-memory uint8 arrays ``(N, H, W, C)``, small enough for the accelerator (CIFAR-10 is 150 MB), and
batches drawn from them on device: scikit-learn's 8x8 digits (no download), CIFAR-10 (``cifar10``) or any folder of
PNG/JPEG images, picked by ``load_dataset``. A problem the user can fix raises ``images.DataError``."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits as sk_load_digits
from sklearn.model_selection import train_test_split

from .cifar10 import find_layouts, load_cifar10
from .images import IMAGE_EXTENSIONS, DataError, check_split, read_images, to_model_range


# --------------------------------------------------------------------------- scikit-learn digits
def load_digits(split: str = "train", *, return_labels: bool = False):
    """The 1797 8x8 digits of scikit-learn as uint8 ``(N, 8, 8, 1)``; train/test is a fixed 80/20 stratified split."""
    check_split(split)
    digits = sk_load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]  # 0..16 -> 0..255
    labels = digits.target.astype(np.int32)
    if split != "all":
        train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=0, stratify=labels)
        idx = np.sort(train_idx if split == "train" else test_idx)  # back in the dataset's own order
        images, labels = images[idx], labels[idx]
    return (images, labels) if return_labels else images


# --------------------------------------------------------------------------- a folder of images
def load_image_folder(path, *, channels: int = 3, return_labels: bool = False):
    """Every .png/.jpg/.jpeg under ``path`` (recursive, sorted) as uint8 ``(N, H, W, channels)``; with
    ``return_labels``, one sub-folder per class, labels in ``image_folder_classes`` order."""
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; check the path")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(
            f"no images found in {root}: it reads {', '.join(IMAGE_EXTENSIONS)} files "
            "(any case, in subfolders too); put your images there or convert them to PNG"
        )
    images = read_images(files, "RGB" if channels == 3 else "L")
    if not return_labels:
        return images
    loose = [f for f in files if f.parent == root]
    if loose:
        raise DataError(
            f"{loose[0]} is not in a class folder: for labels, put every image in one sub-folder "
            f"per class ({root}/<class>/...)"
        )
    classes = image_folder_classes(root)
    index = {name: i for i, name in enumerate(classes)}
    return images, np.array([index[f.relative_to(root).parts[0]] for f in files], np.int32)


def image_folder_classes(path) -> list[str]:
    """The sub-folders that hold images, sorted: label i is the i-th name."""
    root = Path(path).expanduser()
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in d.rglob("*"))
    )


# --------------------------------------------------------------------------- the entry point used by training
def load_dataset(
    spec: str,
    *,
    split: str = "train",
    image_size: int | None = None,
    channels: int | None = None,
    return_labels: bool = False,
):
    """``spec`` is "digits", "cifar10" or a folder (CIFAR-10 in a known layout, else any images); ``image_size``
    and ``channels`` (the preset's) are checked against the data. ``return_labels``: ``(images, labels)``."""
    check_split(split)
    labels = None
    if spec == "digits":
        images, labels = load_digits(split, return_labels=True)
    elif spec == "cifar10":
        images, labels = load_cifar10(split, return_labels=True)
    else:
        root = Path(spec).expanduser()
        if not root.is_dir():
            raise DataError(f"dataset {spec!r} is neither 'digits', 'cifar10' nor an existing folder; check the path")
        if find_layouts(root):
            images, labels = load_cifar10(split, path=root, return_labels=True)
        elif split == "test":
            raise DataError(f"image folder {root} has no test split; use split='train' (all its images)")
        else:
            loaded = load_image_folder(root, channels=channels or 3, return_labels=return_labels)
            images, labels = loaded if return_labels else (loaded, None)
    _, h, w, c = images.shape
    if (image_size is not None and (h, w) != (image_size, image_size)) or (channels is not None and c != channels):
        want = f"{image_size or h}x{image_size or w}x{channels or c}"
        raise DataError(
            f"dataset {spec!r} has images of {h}x{w}x{c} (HxWxC) but the preset expects {want}; pick a "
            f"preset (or config) with image_size={h} and in_channels={c}, or resize the images"
        )
    return (images, labels) if return_labels else images


# --------------------------------------------------------------------------- batches on device
def get_batch(key, data, batch_size: int, random_flip: bool, labels=None):
    """``batch_size`` images (and ``labels``) drawn with replacement, as float32 in [-1, 1], inside the jitted loop;
    ``random_flip`` mirrors each left-right with probability 1/2, the paper's only augmentation for CIFAR-10."""
    idx_key, flip_key = jax.random.split(key)
    idx = jax.random.randint(idx_key, (batch_size,), 0, data.shape[0])
    x = to_model_range(jnp.take(jnp.asarray(data), idx, axis=0))  # gather uint8, then convert: 4x less traffic
    if random_flip:  # a static Python bool: decides the traced program, never a traced value
        flip = jax.random.bernoulli(flip_key, 0.5, (batch_size,))
        x = jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
    return x if labels is None else (x, jnp.take(jnp.asarray(labels), idx, axis=0))
