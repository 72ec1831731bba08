"""Tests for nanoddpm_utils.cifar10: every CIFAR-10 layout fabricated in its exact on-disk form, the pickles that
must be refused, the 7z extraction, and Kaggle's failures reported in one line with every secret masked.

kagglehub is monkeypatched to return the fabricated folder, so the real download
code path runs without a network.
"""

import csv
import json
import os
import pickle

import kagglehub
import numpy as np
import pytest
from PIL import Image

from nanoddpm_utils.cifar10 import CIFAR10_CLASSES, load_cifar10
from nanoddpm_utils.data import load_dataset
from nanoddpm_utils.images import DataError

RNG = np.random.default_rng(0)


# --- helpers that write each layout ------------------------------------------------


def _rows(images):
    """(N, 32, 32, 3) -> the official (N, 3072) rows, written index by index from the spec:
    byte c*1024 + y*32 + x holds channel c (R, G, B) of pixel (row y, column x)."""
    n = len(images)
    rows = np.zeros((n, 3072), np.uint8)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                rows[:, c * 1024 + y * 32 + x] = images[:, y, x, c]
    return rows


def _write_batch(file, images, labels, legacy_numpy_name=False):
    batch = {
        b"batch_label": b"training batch",
        b"labels": [int(v) for v in labels],
        b"data": _rows(images),
        b"filenames": [b"img_%d.png" % i for i in range(len(images))],
    }
    payload = pickle.dumps(batch, protocol=3)  # protocol 3: bytes stay bytes, arrays use _reconstruct
    if legacy_numpy_name:  # the real files were written by numpy 1 ("numpy.core")
        payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    file.write_bytes(payload)


@pytest.fixture
def batches_dir(tmp_path):
    """A kagglehub-like download dir: <root>/1/cifar-10-batches-py/{data_batch_1,data_batch_2,test_batch}."""
    root = tmp_path / "kaggle" / "pankrzysiu" / "1"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = RNG.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    images[0] = 0
    images[0, 2, 5] = (200, 100, 50)  # row 2, column 5: R, G, B
    labels = RNG.integers(0, 10, 30)
    _write_batch(folder / "data_batch_1", images[:10], labels[:10], legacy_numpy_name=True)
    _write_batch(folder / "data_batch_2", images[10:20], labels[10:20])
    _write_batch(folder / "test_batch", images[20:], labels[20:])
    (folder / "batches.meta").write_bytes(b"unused")
    return root, images, labels


def _save_png(file, array):
    file.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.squeeze()).save(file)


def _patch_kaggle(monkeypatch, folder, calls):
    def fake(handle, *args, **kwargs):
        calls.append(handle)
        return str(folder)

    monkeypatch.setattr(kagglehub, "dataset_download", fake)
    monkeypatch.setattr(kagglehub, "competition_download", fake)


def _forbid_kaggle(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("kagglehub must not be called for a local path")

    monkeypatch.setattr(kagglehub, "dataset_download", fail)
    monkeypatch.setattr(kagglehub, "competition_download", fail)


# --- CIFAR-10: pickled batches -------------------------------------------------------


def test_cifar_batches_via_kagglehub(monkeypatch, batches_dir):
    root, images, labels = batches_dir
    calls = []
    _patch_kaggle(monkeypatch, root, calls)
    x, y = load_cifar10("train", return_labels=True)
    assert calls == ["pankrzysiu/cifar10-python"]
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    np.testing.assert_array_equal(x, images[:20])
    np.testing.assert_array_equal(y, labels[:20])
    # the planted pixel: R, G, B in that order at row 2, column 5 (and not transposed)
    assert tuple(x[0, 2, 5]) == (200, 100, 50)
    assert tuple(x[0, 5, 2]) == (0, 0, 0)
    xt, yt = load_cifar10("test", return_labels=True)
    np.testing.assert_array_equal(xt, images[20:])
    np.testing.assert_array_equal(yt, labels[20:])
    assert load_cifar10("all").shape == (30, 32, 32, 3)


def test_cifar_batches_local_path_and_load_dataset(monkeypatch, batches_dir):
    root, images, _ = batches_dir
    _forbid_kaggle(monkeypatch)
    np.testing.assert_array_equal(load_cifar10("test", path=root), images[20:])
    np.testing.assert_array_equal(load_dataset(str(root), image_size=32, channels=3), images[:20])
    with pytest.raises(DataError, match=r"32x32x3.*preset expects 8x8x1"):
        load_dataset(str(root), image_size=8, channels=1)
    with pytest.raises(DataError, match="does not hold the CIFAR-10 'png' layout"):
        load_cifar10(path=root, layout="png")


def _py2_pickle(obj) -> bytes:
    """``obj`` pickled as Python 2's cPickle wrote the real batches: protocol 2, every str and bytes a BINSTRING
    (so the reader sees bytes: keys, dtype code, the array's raw data)."""
    import io

    class Py2Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_py2_str(self, text):
            data = text.encode("latin1") if isinstance(text, str) else text
            op = (
                pickle.SHORT_BINSTRING + bytes([len(data)])
                if len(data) < 256
                else pickle.BINSTRING + len(data).to_bytes(4, "little")
            )
            self.write(op + data)
            self.memoize(text)

        dispatch[str] = dispatch[bytes] = save_py2_str

    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


def test_cifar_batch_as_python2_wrote_it(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = RNG.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [3, 0, 9],
        b"data": _rows(images),
        b"filenames": [b"a.png", b"b.png", b"c.png"],
    }
    payload = _py2_pickle(batch)
    assert b"numpy._core" in payload or b"numpy.core" in payload
    assert b"_codecs" not in payload  # no Python 3 bytes encoding: strings are BINSTRINGs as in the real files
    (folder / "data_batch_1").write_bytes(payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    x, y = load_cifar10("train", path=tmp_path, return_labels=True)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, [3, 0, 9])


class _Reduce:
    """Pickles as ``fn(*args)``: how a crafted file names any callable."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class _ArrayWithState:
    """Pickles as numpy does (``_reconstruct(ndarray, (0,), b'b')`` then BUILD), with a state of our choosing."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return np.ndarray.__reduce__(np.zeros(0, np.uint8))[:2] + (self.state,)


def _nested_shared_labels() -> bytes:
    level = list(range(10))
    for _ in range(12):  # 10**13 leaves if expanded, a few hundred bytes pickled: every level is one memo entry
        level = [level] * 10
    return pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": level}, protocol=3)


def _deep_labels(depth: int = 30_000) -> bytes:
    """A dict whose b'labels' is a list nested ``depth`` deep (two bytes a level, written opcode by opcode)."""
    return b"\x80\x03}" + b"C\x06labels" + b"]" * depth + b"a" * (depth - 1) + b"s."


U1 = np.dtype(np.uint8)
ZEROS = np.zeros((2, 3072), np.uint8)
CRAFTED = {  # name: (payload, words the refusal must hold)
    "uninitialised 800 MB array (numpy.ndarray called)": (
        pickle.dumps({b"data": _Reduce(np.ndarray, (260_000, 3072), U1), b"labels": [0]}, protocol=3),
        ["calls numpy.ndarray directly"],
    ),
    "zero-stride view of a million rows": (
        pickle.dumps(
            {b"data": _Reduce(np.ndarray, (1_000_000, 3072), U1, b"\0" * 3072, 0, (0, 1)), b"labels": [0] * 100},
            protocol=3,
        ),
        ["calls numpy.ndarray directly"],
    ),
    "an array state claiming 200,000 rows": (
        pickle.dumps({b"data": _ArrayWithState((1, (200_000, 3072), U1, False, b"")), b"labels": [0]}, protocol=3),
        ["shape (200000, 3072)", "1..10000"],
    ),
    "an array state with too few bytes": (
        pickle.dumps({b"data": _ArrayWithState((1, (10, 3072), U1, False, b"\0" * 3072)), b"labels": [0]}, protocol=3),
        ["holds 3072 bytes", "not exactly 30720"],
    ),
    "a float32 array": (
        pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, protocol=3),
        ["dtype", "uint8"],
    ),
    "a Fortran-order array": (
        pickle.dumps({b"data": np.asfortranarray(ZEROS), b"labels": [0, 1]}, protocol=3),
        ["Fortran order"],
    ),
    "two arrays": (
        pickle.dumps({b"data": ZEROS, b"labels": [0, 1], b"more": ZEROS.copy()}, protocol=3),
        ["more than one array"],
    ),
    "nested shared labels": (_nested_shared_labels(), ["b'labels' holds a list", "ints in 0..9"]),
    "labels nested 30,000 deep": (_deep_labels(), ["not b'data' and b'labels'"]),
    "keys of mixed types": (
        pickle.dumps({b"data": ZEROS, "labels": [0, 1], 1: 2}, protocol=3),
        ["keys of type int, str", "all bytes"],
    ),
    "labels as bytes": (
        pickle.dumps({b"data": ZEROS, b"labels": [b"1", b"2"]}, protocol=3),
        ["b'labels' holds b'1'", "ints in 0..9"],
    ),
    "a label of 10": (pickle.dumps({b"data": ZEROS, b"labels": [0, 10]}, protocol=3), ["holds 10"]),
    "one label too many": (
        pickle.dumps({b"data": ZEROS, b"labels": [0, 1, 2]}, protocol=3),
        ["a list of 3", "not a list of 2 ints"],
    ),
    "wrong keys": (pickle.dumps({b"pixels": ZEROS}, protocol=3), ["keys b'pixels'", "not b'data' and b'labels'"]),
    "rows of 100 bytes": (
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=3),
        ["shape (2, 100)", "(N, 3072)"],
    ),
    "a memo slot of 2**30 (the unpickler would reserve 8 GB)": (
        b"\x80\x03N" + b"r" + (2**30).to_bytes(4, "little") + b".",
        ["memo slot 1073741824"],
    ),
    "bytes claiming 800 MB": (
        b"\x80\x04\x8e" + (800_000_000).to_bytes(8, "little") + b"\0" * 10,
        ["not a complete pickle"],
    ),
    "truncated": (b"\x80\x03C\x10short", ["not a complete pickle"]),
    "not a dict": (pickle.dumps([ZEROS, [0, 1]], protocol=3), ["holds a list, not a dict"]),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_batches_are_refused_small_and_fast(tmp_path, name):
    import time
    import tracemalloc

    payload, words = CRAFTED[name]
    assert len(payload) < 100_000
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(payload)
    start = time.process_time()  # CPU time: the machine may be shared, and this is the loader's own cost
    with pytest.raises(DataError) as refused:
        load_cifar10(path=tmp_path)
    seconds = time.process_time() - start
    tracemalloc.start()  # a second pass for memory: tracing slows Python down several times
    try:
        with pytest.raises(DataError):
            load_cifar10(path=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(refused.value)
    assert "\n" not in message and str(folder / "data_batch_1") in message, message
    assert "is not a genuine CIFAR-10 batch" in message and "download the dataset again" in message
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    assert seconds < 1.0, f"{name}: {seconds:.2f} s of CPU before refusing"
    assert peak < 100e6, f"{name}: {peak / 1e6:.0f} MB before refusing"


def test_the_crafted_arrays_are_live(tmp_path):
    """What the refusals above prevent: an ordinary pickle.load builds these."""
    big = pickle.loads(CRAFTED["uninitialised 800 MB array (numpy.ndarray called)"][0])[b"data"]
    assert big.shape == (260_000, 3072) and big.nbytes > 790e6  # uninitialised: never touched here
    view = pickle.loads(CRAFTED["zero-stride view of a million rows"][0])[b"data"]
    assert view.shape == (1_000_000, 3072) and view.strides == (0, 1)
    labels, depth = pickle.loads(_nested_shared_labels())[b"labels"], 0
    while isinstance(labels, list):  # ten branches a level: np.asarray would try to build 10**13 ints
        assert len(labels) == 10
        labels, depth = labels[0], depth + 1
    assert depth == 13 and len(_nested_shared_labels()) < 32_000  # mostly the 30,720 bytes of b"data"


class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_cifar_pickle_cannot_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    pwned = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Evil(f"touch {pwned}"), b"labels": [0]}, protocol=3)
    (folder / "data_batch_1").write_bytes(payload)
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(
        DataError,
        match=r"data_batch_1 is not a genuine CIFAR-10 batch: it asks for the global "
        r"'(posix|os|nt)'\.'system'",
    ):
        load_cifar10(path=tmp_path)
    assert not pwned.exists()
    # the payload is live: an ordinary pickle.load would have run it
    pickle.loads(payload)
    assert pwned.exists()


# --- CIFAR-10: PNG class folders -----------------------------------------------------


def test_cifar_png_folders(monkeypatch, tmp_path):
    root = tmp_path / "dl" / "versions" / "1"
    imgs = RNG.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    files = {
        ("train", "cat", "0001.png"): 0,
        ("train", "cat", "0002.png"): 1,
        ("train", "ship", "0003.png"): 2,
        ("train", "ship", "0004.PNG"): 3,
        ("test", "cat", "0005.png"): 4,
        ("test", "ship", "0006.png"): 5,
    }
    for (part, cls, name), i in files.items():
        _save_png(root / "cifar10" / part / cls / name, imgs[i])
    calls = []
    _patch_kaggle(monkeypatch, root, calls)
    x, y = load_cifar10("train", layout="png", return_labels=True)
    assert calls == ["ayush1220/cifar10"]
    np.testing.assert_array_equal(x, imgs[:4])  # PNG is lossless
    np.testing.assert_array_equal(y, [3, 3, 8, 8])  # CIFAR-10's own numbers for cat and ship
    np.testing.assert_array_equal(load_cifar10("test", layout="png"), imgs[4:])
    assert load_cifar10("all", layout="png").shape == (6, 32, 32, 3)
    # auto-detection on a local path
    _forbid_kaggle(monkeypatch)
    np.testing.assert_array_equal(load_dataset(str(root), split="test"), imgs[4:])


# --- CIFAR-10: the competition layout --------------------------------------------------


def _make_competition(folder, imgs, names):
    import py7zr

    src = folder / "src"
    for i, img in enumerate(imgs, start=1):
        _save_png(src / "train" / f"{i}.png", img)
    with py7zr.SevenZipFile(folder / "train.7z", "w") as z:
        z.writeall(src / "train", "train")
    with open(folder / "trainLabels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label"])
        order = list(range(1, len(imgs) + 1))[::-1]  # file order must not matter: ids do
        for i in order:
            w.writerow([i, names[i - 1]])
    (folder / "sampleSubmission.csv").write_text("id,label\n")
    for f in sorted(src.rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    src.rmdir()


def test_cifar_competition(monkeypatch, tmp_path):
    import py7zr

    folder = tmp_path / "comp"
    folder.mkdir()
    imgs = RNG.integers(0, 256, (11, 32, 32, 3), dtype=np.uint8)  # 11 ids: "10" sorts before "2" as text
    names = [CIFAR10_CLASSES[i % 10] for i in range(11)]
    _make_competition(folder, imgs, names)
    calls = []
    _patch_kaggle(monkeypatch, folder, calls)
    x, y = load_cifar10(layout="competition", return_labels=True)
    assert calls == ["cifar-10"]
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, [i % 10 for i in range(11)])
    # extracted once, atomically: the final folder and no leftover partial one
    assert (folder / "train.7z.extracted" / "train" / "11.png").is_file()
    assert not list(folder.glob("*.partial-*"))

    def no_second_extraction(*args, **kwargs):
        raise AssertionError("train.7z extracted twice")

    monkeypatch.setattr(py7zr, "SevenZipFile", no_second_extraction)
    np.testing.assert_array_equal(load_cifar10(path=folder), imgs)  # auto-detects the competition layout
    with pytest.raises(DataError, match="no labelled test split"):
        load_cifar10("test", layout="competition")


def test_competition_interrupted_extraction_is_not_kept(monkeypatch, tmp_path):
    import py7zr

    folder = tmp_path / "comp"
    folder.mkdir()
    _make_competition(folder, RNG.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), ["cat", "dog"])

    class Broken:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def extractall(self, dest):
            (dest / "train").mkdir()  # half written, then the archive turns out corrupt
            raise py7zr.exceptions.Bad7zFile("not a 7z file")

    monkeypatch.setattr(py7zr, "SevenZipFile", Broken)
    with pytest.raises(DataError, match=r"cannot extract .*train\.7z .*Bad7zFile"):
        load_cifar10(path=folder)
    assert not (folder / "train.7z.extracted").exists()
    assert not list(folder.glob("*.partial-*"))


# --- kagglehub failures --------------------------------------------------------------


@pytest.mark.parametrize("layout, fn", [("batches", "dataset_download"), ("competition", "competition_download")])
def test_kaggle_failure_explains_credentials(monkeypatch, layout, fn):
    fake_key = "0123fake-kaggle-key-4567"
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", fake_key)

    def fail(handle, *args, **kwargs):
        raise RuntimeError(f"401 Client Error: Unauthorized for user someone key {fake_key}")

    monkeypatch.setattr(kagglehub, fn, fail)
    with pytest.raises(DataError) as info:
        load_cifar10(layout=layout)
    msg = str(info.value)
    assert "401" in msg and "Secrets panel" in msg and "~/.kaggle/kaggle.json" in msg and "chmod 600" in msg
    assert "KAGGLE_USERNAME" in msg and "KAGGLE_KEY" in msg
    assert fake_key not in msg and "\n" not in msg
    # a 401 is about the credentials; the competition's rules page answers a 403 (tests/test_colab_kaggle.py)
    assert ("competition 'cifar-10'" in msg) == (layout == "competition")


def test_kaggle_failure_masks_every_secret_it_could_know(monkeypatch, tmp_path):
    """Keys from KAGGLE_API_TOKEN and kaggle.json are masked too, before the reason is cut to 200 characters."""
    file_key, token = "filekey-0123456789abcdef", "KGAT_token-0123456789abcdef"
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": "someone", "key": file_key}))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KAGGLE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_API_TOKEN", token)

    def fail(handle, *args, **kwargs):  # the second key straddles the 200-character cut
        raise RuntimeError(f"denied for {file_key} and {token}" + " " * 123 + f"{file_key}\nsecond line")

    monkeypatch.setattr(kagglehub, "dataset_download", fail)
    with pytest.raises(DataError) as info:
        load_cifar10()
    msg = str(info.value)
    assert "denied for *** and ***" in msg and "\n" not in msg
    assert all(part not in msg for part in (file_key[:8], token[:10]))


def test_competition_bad_labels(tmp_path):
    _save_png(tmp_path / "train" / "1.png", np.zeros((32, 32, 3), np.uint8))  # already extracted by hand
    (tmp_path / "trainLabels.csv").write_text("name,class\n1,cat\n")
    with pytest.raises(DataError, match=r"trainLabels\.csv is not 'id,label' rows"):
        load_cifar10(path=tmp_path)
    (tmp_path / "trainLabels.csv").write_text("id,label\n1,unicorn\n")
    with pytest.raises(DataError, match=r"unknown labels \['unicorn'\]"):
        load_cifar10(path=tmp_path)
    (tmp_path / "trainLabels.csv").write_text("id,label\n1,cat\n2,dog\n")
    with pytest.raises(DataError, match=r"1 images listed in trainLabels\.csv are missing, e\.g\. .*2\.png"):
        load_cifar10(path=tmp_path)
    (tmp_path / "trainLabels.csv").write_text("id,label\n1,cat\n")
    assert load_cifar10(path=tmp_path).shape == (1, 32, 32, 3)
