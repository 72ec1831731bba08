"""CIFAR-10 as uint8 arrays, from Kaggle or a folder, in any of the three layouts Kaggle offers: the official
pickled batches (read without running code, see ``batch_pickle``), PNG class folders, or the competition's
``train.7z`` (extracted once beside it) with ``trainLabels.csv``; labels are CIFAR-10's own class numbers in each.
A Kaggle error is one line, with every Kaggle secret this process could know masked."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .batch_pickle import BatchRefused, read_batch
from .files import first_line
from .images import IMAGE_EXTENSIONS, DataError, check_split, read_images

LAYOUTS = ("auto", "batches", "competition", "png")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# Where each CIFAR-10 layout comes from on Kaggle: (kagglehub function, handle).
KAGGLE_SOURCES = {
    "batches": ("dataset", "pankrzysiu/cifar10-python"),  # the official cifar-10-batches-py
    "png": ("dataset", "ayush1220/cifar10"),  # cifar10/{train,test}/<class>/*.png
    "competition": ("competition", "cifar-10"),  # train.7z + trainLabels.csv
}


# --------------------------------------------------------------------------- the pickled batches (batch_pickle)
def _read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: rows of 3072 bytes (1024 R, 1024 G, 1024 B, each 32x32 row-major) -> NHWC."""
    try:
        data, labels = read_batch(file)
    except BatchRefused as e:
        raise DataError(
            f"{file} is not a genuine CIFAR-10 batch: {e}; delete it and download the dataset again"
        ) from None
    except OSError as e:
        raise DataError(
            f"cannot read CIFAR-10 batch {file} ({e.strerror or type(e).__name__}); check its "
            "permissions, or download the dataset again"
        ) from None
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _load_batches(root: Path, split: str):
    numbered = [(int(p.name[11:]), p) for p in root.glob("data_batch_*") if p.name[11:].isdigit()]
    train = [p for _, p in sorted(numbered)]  # data_batch_1 .. data_batch_5, in number order
    files = {"train": train, "test": [root / "test_batch"], "all": [*train, root / "test_batch"]}[split]
    missing = [f.name for f in files if not f.is_file()]
    if not files or missing:
        raise DataError(
            f"CIFAR-10 batches folder {root} lacks {', '.join(missing) or 'data_batch_1..5'}; "
            "download the dataset again"
        )
    images, labels = zip(*(_read_batch(f) for f in files))
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------- the PNG folders, the competition layout
def _class_labels(names: list[str]) -> dict[str, int]:
    """CIFAR-10's own label numbers when the folders are its class names, else sorted order."""
    if set(names) <= set(CIFAR10_CLASSES):
        return {n: CIFAR10_CLASSES.index(n) for n in names}
    return {n: i for i, n in enumerate(sorted(names))}


def _load_png_folders(root: Path, split: str):
    files = []
    for part in ["train", "test"] if split == "all" else [split]:
        if not (root / part).is_dir():
            raise DataError(f"CIFAR-10 PNG folder {root} has no {part}/ folder; download the dataset again")
        files += [f for f in sorted((root / part).glob("*/*")) if f.suffix.lower() in IMAGE_EXTENSIONS]
    names = [f.parent.name for f in files]
    if not files:
        raise DataError(f"CIFAR-10 PNG folder {root} has no <class>/*.png images; download the dataset again")
    to_label = _class_labels(sorted(set(names)))
    return read_images(files, "RGB"), np.array([to_label[n] for n in names], np.int32)


def _extract_7z(archive: Path) -> Path:
    """Extract ``archive`` once into ``<archive>.extracted`` beside it, through a temporary folder renamed when
    complete, so an interrupted extraction is never mistaken for a finished one."""
    dest = archive.with_name(archive.name + ".extracted")
    if dest.is_dir():
        return dest
    try:
        import py7zr
    except ImportError:
        raise DataError("reading the CIFAR-10 competition files needs py7zr: pip install py7zr") from None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=archive.name + ".partial-", dir=archive.parent))
    except OSError as e:
        raise DataError(
            f"cannot write beside {archive} ({type(e).__name__}); extract it yourself so that "
            f"{archive.parent / 'train'}/1.png exists"
        ) from None
    try:
        with py7zr.SevenZipFile(archive, "r") as z:
            z.extractall(tmp)
        os.replace(tmp, dest)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if dest.is_dir():  # another process finished first
            return dest
        raise DataError(
            f"cannot extract {archive} ({type(e).__name__}: {first_line(e, limit=200)}); "
            "delete it and download the dataset again"
        ) from None
    except BaseException:  # Ctrl-C: leave no half-extracted folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _load_competition(root: Path, split: str):
    if split == "test":
        raise DataError(
            "the Kaggle competition layout (cifar-10) has no labelled test split (its test.7z is "
            "unlabelled); use split='train', or layout='batches' which has the official test set"
        )
    train_dir = root / "train"  # already extracted by hand
    if not train_dir.is_dir():
        if not (root / "train.7z").is_file():
            raise DataError(
                f"{root} has trainLabels.csv but neither train.7z nor train/; download the competition again"
            )
        train_dir = _extract_7z(root / "train.7z") / "train"
    labels_csv = root / "trainLabels.csv"
    try:
        with open(labels_csv, newline="") as fh:
            rows = sorted((int(r["id"]), r["label"]) for r in csv.DictReader(fh))
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(
            f"{labels_csv} is not 'id,label' rows ({type(e).__name__}: {first_line(e, limit=200)}); "
            "download the competition again"
        ) from None
    unknown = {label for _, label in rows} - set(CIFAR10_CLASSES)
    if unknown:
        raise DataError(f"{labels_csv} has unknown labels {sorted(unknown)}; download the competition again")
    files = [train_dir / f"{i}.png" for i, _ in rows]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} images listed in trainLabels.csv are missing, e.g. {missing[0]}; "
            f"delete {train_dir.parent} and try again"
        )
    return read_images(files, "RGB"), np.array([CIFAR10_CLASSES.index(label) for _, label in rows], np.int32)


# --------------------------------------------------------------------------- finding the layout, downloading
def find_layouts(root: Path) -> dict[str, Path]:
    """For each layout found under ``root`` (kagglehub versions nest differently), its shallowest folder."""
    hits: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if "data_batch_1" in filenames or "test_batch" in filenames:
            hits.setdefault("batches", []).append(d)
        if "trainLabels.csv" in filenames:
            hits.setdefault("competition", []).append(d)
        if "train" in dirnames and _has_class_pngs(d / "train"):
            hits.setdefault("png", []).append(d)
    return {k: min(v, key=lambda p: (len(p.parts), str(p))) for k, v in hits.items()}


def _has_class_pngs(train: Path) -> bool:
    """Does ``train`` hold class folders of PNGs (``train/<class>/*.png``)?"""
    try:
        return any(any(f.suffix.lower() == ".png" for f in c.iterdir()) for c in train.iterdir() if c.is_dir())
    except OSError:  # unreadable: not ours to load
        return False


KAGGLE_ENV_SECRETS = ("KAGGLE_API_TOKEN", "KAGGLE_KEY")  # the token (Kaggle's current form) and the legacy key
LOCAL_CIFAR10_ENV = "NANODDPM_CIFAR10_DIR"  # a folder that already holds CIFAR-10: read it, download nothing


def _kaggle_secrets() -> list[str]:
    """The Kaggle secrets this process could see (environment, kaggle.json, access_token): to mask, never use."""
    found = [os.environ.get(n, "") for n in KAGGLE_ENV_SECRETS]
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    with contextlib.suppress(Exception):  # absent or unreadable: nothing to mask
        found.append(str(json.loads((config_dir / "kaggle.json").read_text()).get("key", "")))
    for name in ("access_token", "access_token.txt"):
        with contextlib.suppress(Exception):
            found.append((config_dir / name).read_text().strip())
    return [s for s in found if len(s) >= 4]


def _secret_free(text: str) -> str:
    for secret in _kaggle_secrets():
        text = text.replace(secret, "***")
    return text


def _kaggle_download(layout: str) -> Path:
    kind, handle = KAGGLE_SOURCES[layout]
    try:
        import kagglehub

        download = kagglehub.competition_download if kind == "competition" else kagglehub.dataset_download
        return Path(download(handle))
    except Exception as e:
        status = getattr(getattr(e, "response", None), "status_code", None)  # kagglehub wraps requests.HTTPError
        if kind == "competition" and status in (401, 403):
            raise DataError(
                f"Kaggle refused the competition download {handle!r} ({status}): sign in to kaggle.com with "
                f"the account of your credentials, accept the rules at https://www.kaggle.com/competitions/{handle}"
                "/rules, then run again (or use layout='batches', a dataset that needs no rules)"
            ) from None
        reason = first_line(e, limit=200, clean=_secret_free)  # masked before it is cut, so no piece of a key is left
        raise DataError(
            f"could not download CIFAR-10 from Kaggle {kind} {handle!r} ({reason}); check your network, and your "
            "Kaggle credentials: create an API token (kaggle.com > Settings > API > Generate New Token) and, on Colab, "
            "add it as the secret KAGGLE_API_TOKEN in the Secrets panel (key icon) with notebook access, elsewhere "
            "export KAGGLE_API_TOKEN (the legacy pair KAGGLE_USERNAME and KAGGLE_KEY, or ~/.kaggle/kaggle.json with "
            f"chmod 600, work too); or set {LOCAL_CIFAR10_ENV} to a folder that already holds CIFAR-10"
        ) from None


def load_cifar10(split: str = "train", *, layout: str = "auto", path=None, return_labels: bool = False):
    """CIFAR-10 as uint8 ``(N, 32, 32, 3)`` (and int labels). ``path=None`` reads the folder ``NANODDPM_CIFAR10_DIR``
    if set, else downloads with kagglehub ("auto": the pickled batches); in a folder, "auto" finds the layout. The
    competition layout's "all" is its "train"."""
    check_split(split)
    if layout not in LAYOUTS:
        raise DataError(f"unknown CIFAR-10 layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    path = (os.environ.get(LOCAL_CIFAR10_ENV) or None) if path is None else path  # a copy on disk: no download
    if path is None:
        layout = "batches" if layout == "auto" else layout
        root = _kaggle_download(layout)
    else:
        root = Path(path).expanduser()
        if not root.is_dir():
            raise DataError(f"CIFAR-10 folder {root} does not exist; check the path")
    found = find_layouts(root)
    if layout == "auto":
        layout = next((k for k in ("batches", "competition", "png") if k in found), None)
        if layout is None:
            raise DataError(
                f"{root} holds no CIFAR-10 layout (cifar-10-batches-py/, trainLabels.csv with train.7z, "
                "or train/<class>/*.png); point to the folder that holds one"
            )
    if layout not in found:
        raise DataError(f"{root} does not hold the CIFAR-10 {layout!r} layout; pass layout='auto' or the right folder")
    load = {"batches": _load_batches, "competition": _load_competition, "png": _load_png_folders}[layout]
    images, labels = load(found[layout], split)
    return (images, labels) if return_labels else images
