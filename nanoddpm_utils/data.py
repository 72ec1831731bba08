"""Datasets as in-memory uint8 arrays, and batches drawn from them on device.

Every dataset is a NumPy ``uint8`` array of shape ``(N, H, W, C)`` (channels-last,
values 0..255), small enough to live in memory and on the accelerator: CIFAR-10 is
150 MB. The model sees images in [-1, 1]; ``to_model_range`` and ``to_uint8`` convert.

Sources: scikit-learn's 8x8 digits (ships with scikit-learn, no download), CIFAR-10
through ``kagglehub`` in any of three Kaggle layouts (pickled batches, PNG class
folders, the competition's ``train.7z``), or any local folder of PNG/JPEG images.
Every problem a user can fix raises ``DataError`` with one line saying what to do.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .batch_pickle import BatchRefused, read_batch

SPLITS = ("train", "test", "all")
LAYOUTS = ("auto", "batches", "competition", "png")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Where each CIFAR-10 layout comes from on Kaggle: (kagglehub function, handle).
KAGGLE_SOURCES = {
    "batches": ("dataset", "pankrzysiu/cifar10-python"),  # the official cifar-10-batches-py
    "png": ("dataset", "ayush1220/cifar10"),  # cifar10/{train,test}/<class>/*.png
    "competition": ("competition", "cifar-10"),  # train.7z + trainLabels.csv
}


class DataError(ValueError):
    """A data problem the user can fix; the message is one line saying what is wrong and what to do."""


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


# --- scikit-learn digits ---------------------------------------------------------------

def load_digits(split: str = "train", *, return_labels: bool = False):
    """The 1797 8x8 digits of scikit-learn as uint8 ``(N, 8, 8, 1)``; train/test is a fixed 80/20 stratified split."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    _check_split(split)
    digits = sk_load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]  # 0..16 -> 0..255
    labels = digits.target.astype(np.int32)
    if split != "all":
        train_idx, test_idx = train_test_split(
            np.arange(len(labels)), test_size=0.2, random_state=0, stratify=labels)
        idx = np.sort(train_idx if split == "train" else test_idx)  # back in the dataset's own order
        images, labels = images[idx], labels[idx]
    return (images, labels) if return_labels else images


# --- reading image files ---------------------------------------------------------------

def _read_images(files: list[Path], mode: str) -> np.ndarray:
    """Decode ``files`` with Pillow in ``mode`` ("RGB" or "L") into one uint8 ``(N, H, W, C)`` array."""
    from PIL import Image

    if not files:
        raise DataError("no images to read; check the dataset folder")
    out, first = None, None
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert(mode), dtype=np.uint8)
        except Exception as e:  # Pillow raises OSError, ValueError, DecompressionBombError, ...
            raise DataError(f"cannot read image {f} ({type(e).__name__}: {_first_line(e)}); "
                            "delete or replace this file") from None
        arr = arr[..., None] if arr.ndim == 2 else arr
        if out is None:  # allocate once: 50,000 small arrays in a list would double peak memory
            out, first = np.empty((len(files), *arr.shape), np.uint8), f
        elif arr.shape != out.shape[1:]:
            (h, w), (h0, w0) = arr.shape[:2], out.shape[1:3]
            raise DataError(
                f"images have different sizes: {first} is {w0}x{h0} but {f} is {w}x{h}; resize them all to "
                f"one size, e.g. python -c \"import sys; from PIL import Image; [Image.open(p).resize(({w0}, {h0}))"
                f".save(p) for p in sys.argv[1:]]\" {f.parent}/*")
        out[i] = arr
    return out


def load_image_folder(path, *, channels: int = 3, return_labels: bool = False):
    """Every .png/.jpg/.jpeg under ``path`` (recursive, sorted) as uint8 ``(N, H, W, channels)``.

    With ``return_labels`` the folder must hold one sub-folder per class (``path/<class>/...``): the
    labels are the class folders' indices in sorted order (``image_folder_classes`` gives the names).
    """
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; check the path")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no images found in {root}: it reads {', '.join(IMAGE_EXTENSIONS)} files "
                        "(any case, in subfolders too); put your images there or convert them to PNG")
    images = _read_images(files, "RGB" if channels == 3 else "L")
    if not return_labels:
        return images
    loose = [f for f in files if f.parent == root]
    if loose:
        raise DataError(f"{loose[0]} is not in a class folder: for labels, put every image in one sub-folder "
                        f"per class ({root}/<class>/...)")
    classes = image_folder_classes(root)
    index = {name: i for i, name in enumerate(classes)}
    return images, np.array([index[f.relative_to(root).parts[0]] for f in files], np.int32)


def image_folder_classes(path) -> list[str]:
    """The class names of a folder with one sub-folder per class (those that hold images), sorted: label i is
    the i-th name."""
    root = Path(path).expanduser()
    return sorted(d.name for d in root.iterdir() if d.is_dir() and any(
        p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in d.rglob("*")))


# --- CIFAR-10: the pickled batches, read without running code (batch_pickle.py) ------------

def _read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch (see ``batch_pickle``): rows of 3072 bytes (1024 R, 1024 G, 1024 B, each 32x32
    row-major) -> NHWC."""
    try:
        data, labels = read_batch(file)
    except BatchRefused as e:
        raise DataError(f"{file} is not a genuine CIFAR-10 batch: {e}; delete it and download the dataset "
                        "again") from None
    except OSError as e:
        raise DataError(f"cannot read CIFAR-10 batch {file} ({e.strerror or type(e).__name__}); check its "
                        "permissions, or download the dataset again") from None
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _load_batches(root: Path, split: str):
    numbered = [(int(p.name[11:]), p) for p in root.glob("data_batch_*") if p.name[11:].isdigit()]
    train = [p for _, p in sorted(numbered)]  # data_batch_1 .. data_batch_5, in number order
    files = {"train": train, "test": [root / "test_batch"], "all": [*train, root / "test_batch"]}[split]
    missing = [f.name for f in files if not f.is_file()]
    if not files or missing:
        raise DataError(f"CIFAR-10 batches folder {root} lacks {', '.join(missing) or 'data_batch_1..5'}; "
                        "download the dataset again")
    images, labels = zip(*(_read_batch(f) for f in files))
    return np.concatenate(images), np.concatenate(labels)


# --- CIFAR-10: the PNG folders and the competition layout ----------------------------------

def _class_labels(names: list[str]) -> dict[str, int]:
    """CIFAR-10's own label numbers when the folders are its class names, else sorted order."""
    if set(names) <= set(CIFAR10_CLASSES):
        return {n: CIFAR10_CLASSES.index(n) for n in names}
    return {n: i for i, n in enumerate(sorted(names))}


def _load_png_folders(root: Path, split: str):
    parts = ["train", "test"] if split == "all" else [split]
    files, names = [], []
    for part in parts:
        if not (root / part).is_dir():
            raise DataError(f"CIFAR-10 PNG folder {root} has no {part}/ folder; download the dataset again")
        for f in sorted((root / part).glob("*/*")):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(f)
                names.append(f.parent.name)
    if not files:
        raise DataError(f"CIFAR-10 PNG folder {root} has no <class>/*.png images; download the dataset again")
    to_label = _class_labels(sorted(set(names)))
    return _read_images(files, "RGB"), np.array([to_label[n] for n in names], np.int32)


def _extract_7z(archive: Path) -> Path:
    """Extract ``archive`` once into ``<archive>.extracted`` beside it.

    It goes to a temporary folder first and is renamed when complete, so an
    interrupted extraction is never mistaken for a finished one.
    """
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
        raise DataError(f"cannot write beside {archive} ({type(e).__name__}); extract it yourself so that "
                        f"{archive.parent / 'train'}/1.png exists") from None
    try:
        with py7zr.SevenZipFile(archive, "r") as z:
            z.extractall(tmp)
        os.replace(tmp, dest)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if dest.is_dir():  # another process finished first
            return dest
        raise DataError(f"cannot extract {archive} ({type(e).__name__}: {_first_line(e)}); "
                        "delete it and download the dataset again") from None
    except BaseException:  # Ctrl-C: leave no half-extracted folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _load_competition(root: Path, split: str):
    if split == "test":
        raise DataError("the Kaggle competition layout (cifar-10) has no labelled test split (its test.7z is "
                        "unlabelled); use split='train', or layout='batches' which has the official test set")
    train_dir = root / "train"  # already extracted by hand
    if not train_dir.is_dir():
        if not (root / "train.7z").is_file():
            raise DataError(f"{root} has trainLabels.csv but neither train.7z nor train/; "
                            "download the competition again")
        train_dir = _extract_7z(root / "train.7z") / "train"
    labels_csv = root / "trainLabels.csv"
    try:
        with open(labels_csv, newline="") as fh:
            rows = sorted((int(r["id"]), r["label"]) for r in csv.DictReader(fh))
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(f"{labels_csv} is not 'id,label' rows ({type(e).__name__}: {_first_line(e)}); "
                        "download the competition again") from None
    unknown = {label for _, label in rows} - set(CIFAR10_CLASSES)
    if unknown:
        raise DataError(f"{labels_csv} has unknown labels {sorted(unknown)}; download the competition again")
    files = [train_dir / f"{i}.png" for i, _ in rows]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{len(missing)} images listed in trainLabels.csv are missing, e.g. {missing[0]}; "
                        f"delete {train_dir.parent} and try again")
    return _read_images(files, "RGB"), np.array([CIFAR10_CLASSES.index(label) for _, label in rows], np.int32)


# --- CIFAR-10: finding the layout and downloading -------------------------------------------

def _find_layouts(root: Path) -> dict[str, Path]:
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


def _first_line(e: BaseException, clean=str) -> str:
    """The first line of ``e``'s message after ``clean``, cut to 200 characters (its type's name if empty)."""
    text = clean(str(e)).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


KAGGLE_ENV_SECRETS = ("KAGGLE_API_TOKEN", "KAGGLE_KEY")  # the token (Kaggle's current form) and the legacy key
LOCAL_CIFAR10_ENV = "NANODDPM_CIFAR10_DIR"  # a folder that already holds CIFAR-10: read it, download nothing


def _kaggle_secrets() -> list[str]:
    """The Kaggle secrets this process could see: the environment's, kaggle.json's and access_token's (to mask,
    never to use)."""
    found = [os.environ.get(n, "") for n in KAGGLE_ENV_SECRETS]
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    try:
        found.append(str(json.loads((config_dir / "kaggle.json").read_text()).get("key", "")))
    except Exception:  # absent or unreadable: nothing to mask
        pass
    for name in ("access_token", "access_token.txt"):
        try:
            found.append((config_dir / name).read_text().strip())
        except Exception:
            pass
    return [s for s in found if len(s) >= 4]


def _secret_free(text: str) -> str:
    for secret in _kaggle_secrets():
        text = text.replace(secret, "***")
    return text


def _http_status(e: BaseException):
    """The HTTP status of a kagglehub error (it wraps requests.HTTPError), or None."""
    response = getattr(e, "response", None)
    return getattr(response, "status_code", None)


def _kaggle_download(layout: str) -> Path:
    kind, handle = KAGGLE_SOURCES[layout]
    try:
        import kagglehub
        download = kagglehub.competition_download if kind == "competition" else kagglehub.dataset_download
        return Path(download(handle))
    except Exception as e:
        if kind == "competition" and _http_status(e) in (401, 403):
            raise DataError(
                f"Kaggle refused the competition download {handle!r} ({_http_status(e)}): sign in to kaggle.com with "
                f"the account of your credentials, accept the rules at https://www.kaggle.com/competitions/{handle}"
                "/rules, then run again (or use layout='batches', a dataset that needs no rules)") from None
        reason = _first_line(e, clean=_secret_free)  # masked before it is cut, so no piece of a key is left
        raise DataError(
            f"could not download CIFAR-10 from Kaggle {kind} {handle!r} ({reason}); check your network, and your "
            "Kaggle credentials: create an API token (kaggle.com > Settings > API > Generate New Token) and, on "
            "Colab, add it as the secret KAGGLE_API_TOKEN in the Secrets panel (key icon) with notebook access, "
            "elsewhere export KAGGLE_API_TOKEN (the legacy pair KAGGLE_USERNAME and KAGGLE_KEY, or "
            f"~/.kaggle/kaggle.json with chmod 600, work too); or set {LOCAL_CIFAR10_ENV} to a folder that already "
            "holds CIFAR-10") from None


def load_cifar10(split: str = "train", *, layout: str = "auto", path=None, return_labels: bool = False):
    """CIFAR-10 as uint8 ``(N, 32, 32, 3)`` (and int labels with ``return_labels``).

    ``path=None`` reads the folder named by the environment variable ``NANODDPM_CIFAR10_DIR`` if it
    is set, else downloads with kagglehub (``layout`` "auto" means the pickled batches); with a
    folder, "auto" detects which layout it holds. The competition
    layout has labels only for its 50,000 training images: its "all" is "train".
    """
    _check_split(split)
    if layout not in LAYOUTS:
        raise DataError(f"unknown CIFAR-10 layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if path is None and os.environ.get(LOCAL_CIFAR10_ENV):
        path = os.environ[LOCAL_CIFAR10_ENV]  # a copy already on disk (e.g. from another machine): no download
    if path is None:
        layout = "batches" if layout == "auto" else layout
        root = _kaggle_download(layout)
    else:
        root = Path(path).expanduser()
        if not root.is_dir():
            raise DataError(f"CIFAR-10 folder {root} does not exist; check the path")
    found = _find_layouts(root)
    if layout == "auto":
        layout = next((k for k in ("batches", "competition", "png") if k in found), None)
        if layout is None:
            raise DataError(f"{root} holds no CIFAR-10 layout (cifar-10-batches-py/, trainLabels.csv with train.7z, "
                            "or train/<class>/*.png); point to the folder that holds one")
    if layout not in found:
        raise DataError(f"{root} does not hold the CIFAR-10 {layout!r} layout; pass layout='auto' or the right folder")
    load = {"batches": _load_batches, "competition": _load_competition, "png": _load_png_folders}[layout]
    images, labels = load(found[layout], split)
    return (images, labels) if return_labels else images


# --- the entry point used by training ---------------------------------------------------

def load_dataset(spec: str, *, split: str = "train", image_size: int | None = None,
                 channels: int | None = None, return_labels: bool = False):
    """``spec`` is "digits", "cifar10" or a folder (CIFAR-10 in a known layout, else any images).

    ``image_size`` and ``channels`` (the preset's) are checked against the data's shape. With
    ``return_labels`` it returns ``(images, labels)``: the digit, CIFAR-10's class number (in
    every layout), or for a plain folder the index of each image's class sub-folder.
    """
    _check_split(split)
    labels = None
    if spec == "digits":
        images, labels = load_digits(split, return_labels=True)
    elif spec == "cifar10":
        images, labels = load_cifar10(split, return_labels=True)
    else:
        root = Path(spec).expanduser()
        if not root.is_dir():
            raise DataError(f"dataset {spec!r} is neither 'digits', 'cifar10' nor an existing folder; check the path")
        if _find_layouts(root):
            images, labels = load_cifar10(split, path=root, return_labels=True)
        elif split == "test":
            raise DataError(f"image folder {root} has no test split; use split='train' (all its images)")
        elif return_labels:
            images, labels = load_image_folder(root, channels=channels or 3, return_labels=True)
        else:
            images = load_image_folder(root, channels=channels or 3)
    _, h, w, c = images.shape
    if (image_size is not None and (h, w) != (image_size, image_size)) or (channels is not None and c != channels):
        want = f"{image_size or h}x{image_size or w}x{channels or c}"
        raise DataError(f"dataset {spec!r} has images of {h}x{w}x{c} (HxWxC) but the preset expects {want}; pick a "
                        f"preset (or config) with image_size={h} and in_channels={c}, or resize the images")
    return (images, labels) if return_labels else images


# --- pixel ranges and batches -------------------------------------------------------------

def to_model_range(images_uint8):
    """uint8 0..255 -> float32 in [-1, 1] (NumPy in, NumPy out; JAX in, JAX out)."""
    x = images_uint8 if hasattr(images_uint8, "astype") else np.asarray(images_uint8)
    # (x - 127.5) / 127.5, not x / 127.5 - 1: XLA fuses the latter into an FMA that gives 255 -> 1.0000001
    return (x.astype(np.float32) - 127.5) / 127.5


def to_uint8(x) -> np.ndarray:
    """Images as NumPy uint8 0..255: uint8 passes through; floats in [-1, 1] (NumPy or JAX, any float dtype)
    are clipped and rounded. Integers or booleans of another dtype are refused: their scale is unknown."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        raise TypeError(f"images must be uint8 or float in [-1, 1], got {x.dtype}")
    x = x.astype(np.float32)
    return np.rint(np.clip((x + 1.0) * 127.5, 0.0, 255.0)).astype(np.uint8)


def get_batch(key, data, batch_size: int, random_flip: bool, labels=None):
    """``batch_size`` images drawn with replacement from uint8 ``data`` ``(N, H, W, C)``, as float32 in [-1, 1].

    With ``labels`` (N,) it returns ``(images, their labels)``, drawn with the same indices.

    Pure jax.numpy, so it runs inside the jitted training loop (``batch_size`` and
    ``random_flip`` are static). With ``random_flip`` each image is mirrored left-right
    with probability 1/2, the paper's only augmentation for CIFAR-10.
    """
    idx_key, flip_key = jax.random.split(key)
    idx = jax.random.randint(idx_key, (batch_size,), 0, data.shape[0])
    x = to_model_range(jnp.take(jnp.asarray(data), idx, axis=0))  # gather uint8, then convert: 4x less traffic
    if random_flip:  # a static Python bool: decides the traced program, never a traced value
        flip = jax.random.bernoulli(flip_key, 0.5, (batch_size,))
        x = jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
    return x if labels is None else (x, jnp.take(jnp.asarray(labels), idx, axis=0))
