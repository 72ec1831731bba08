"""Tiny CIFAR-10 stand-ins in each of the three Kaggle layouts (smooth colour blobs, 32x32x3 uint8).

- ``batches``: ``cifar-10-batches-py/{data_batch_1..5,test_batch}``, pickled dicts of ``b"data"`` (N, 3072)
  uint8 (1024 red, 1024 green, 1024 blue bytes per image) and ``b"labels"``, as the official files;
- ``png``: ``cifar10/{train,test}/<class>/*.png``;
- ``competition``: ``trainLabels.csv`` (id,label) and ``train/<id>.png`` (as if train.7z were extracted).
"""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, 4, 4, 3))  # smooth colour blobs rather than pixel noise
    return np.kron(coarse, np.ones((1, 8, 8, 1))).astype(np.uint8), rng.integers(0, 10, n)


def write_batches(root: Path, per_batch: int = 48) -> Path:
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        imgs, labels = images(per_batch, seed=i)
        rows = imgs.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # channel planes, each 32x32 row-major
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels.tolist(),
            b"data": rows,
            b"filenames": [f"{name}_{j}.png".encode() for j in range(per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=3)
    return Path(root)


def write_png(root: Path, per_split: int = 20) -> Path:
    from PIL import Image

    for s, split in enumerate(("train", "test")):
        imgs, labels = images(per_split, seed=10 + s)
        for j, (img, label) in enumerate(zip(imgs, labels)):
            d = Path(root) / "cifar10" / split / CLASSES[label]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{j:04d}.png")
    return Path(root)


def write_competition(root: Path, n: int = 20) -> Path:
    from PIL import Image

    imgs, labels = images(n, seed=20)
    (Path(root) / "train").mkdir(parents=True, exist_ok=True)
    with open(Path(root) / "trainLabels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        for j, (img, label) in enumerate(zip(imgs, labels), start=1):
            Image.fromarray(img).save(Path(root) / "train" / f"{j}.png")
            w.writerow([j, CLASSES[label]])
    return Path(root)


WRITERS = {"batches": write_batches, "png": write_png, "competition": write_competition}
